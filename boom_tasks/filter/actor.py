"""The filter actor of a survey: every active filter on a batch, passes onward."""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

import dramatiq

from boom_tasks.broker import queue_name, stage_actor
from boom_tasks.filter.cache import FilterCache, signal_change
from boom_tasks.filter.run import run_filters
from boom_tasks.messages import check_version, hand_on
from boom_tasks.monitor.stats import record_passes
from boom_tasks.services.mongo import get_db
from boom_tasks.services.valkey import get_client
from boom_tasks.settings import Settings
from boom_tasks.surveys.base import Survey

log = logging.getLogger(__name__)


def declare(
    broker: dramatiq.Broker,
    survey: Survey,
    settings: Settings,
    next_stage: dramatiq.Actor | None,
) -> dramatiq.Actor:
    """Declare the ``<survey>_filter`` actor on its own queue."""
    name = queue_name(survey, "filter")
    # This process's active filters of the survey (loaded on first use, after fork).
    cache = FilterCache(settings.filters.reload_s)
    # Batches this process has filtered: every filters.solo_every-th runs each filter alone.
    batches = itertools.count(1)

    @stage_actor(broker, name, settings.worker)
    def filter_batch(
        candids: list[int], times: dict[str, float], version: int = 1
    ) -> dict[str, Any]:
        check_version(name, version)
        db, valkey = get_db(settings.mongo), get_client(settings.valkey)
        started = time.monotonic()
        filters = cache.get(db, valkey, survey.name)
        every = settings.filters.solo_every
        solo = every > 0 and next(batches) % every == 0
        outcomes, deactivated = run_filters(
            db, survey, filters, candids, settings.filters, solo=solo
        )
        if deactivated:
            signal_change(valkey)
        passed = sorted({p["_id"] for o in outcomes for p in o.passes})
        log.info(
            "%s: %d alerts, %d filters, %d alerts passed in %.2fs",
            name,
            len(candids),
            len(filters),
            len(passed),
            time.monotonic() - started,
        )
        new_passes = {o.filter.id: o.new_passes for o in outcomes}
        hand_on(
            settings, survey.name, "filtered", passed, times, next_stage, len(candids), new_passes
        )
        record_passes(valkey, survey.name, new_passes)
        return {"alerts": len(candids), "passed": len(passed), "filters": len(filters)}

    return filter_batch
