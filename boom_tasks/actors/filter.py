"""The filter actor of each survey: every active filter on a batch, passes onward."""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq

from boom_tasks.actors.messages import check_version, hand_on
from boom_tasks.actors.output import OUTPUT
from boom_tasks.broker import actor_options
from boom_tasks.filter.cache import FilterCache, signal_change
from boom_tasks.filter.run import run_filters
from boom_tasks.monitor.stats import record_passes
from boom_tasks.services.mongo import get_db
from boom_tasks.services.valkey import get_client
from boom_tasks.settings import get_settings
from boom_tasks.surveys import SURVEYS, Survey

log = logging.getLogger(__name__)

#: This process's active filters (loaded on first use, after fork).
_cache = FilterCache(get_settings().filters.reload_s)


def make_filter_actor(survey: Survey) -> dramatiq.Actor:
    """Declare the ``<survey>_filter`` actor on its own queue."""
    name = f"{survey.queue_prefix}_filter"
    next_stage = OUTPUT[survey.name]

    @dramatiq.actor(actor_name=name, queue_name=name, **actor_options(get_settings().worker))
    def filter_batch(
        candids: list[int], times: dict[str, float], version: int = 1
    ) -> dict[str, Any]:
        check_version(name, version)
        settings = get_settings()
        db, valkey = get_db(settings.mongo), get_client(settings.valkey)
        started = time.monotonic()
        filters = _cache.get(db, valkey, survey.name)
        outcomes, deactivated = run_filters(db, survey, filters, candids, settings.filters)
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
        hand_on(survey.name, "filtered", passed, times, next_stage, count=len(candids))
        record_passes(valkey, survey.name, {o.filter.id: o.new_passes for o in outcomes})
        return {"alerts": len(candids), "passed": len(passed), "filters": len(filters)}

    return filter_batch


#: The filter actor of every registered survey, by survey name.
FILTER: dict[str, dramatiq.Actor] = {name: make_filter_actor(s) for name, s in SURVEYS.items()}
