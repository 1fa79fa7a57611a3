"""The crossmatch actor of a survey: candids in, new objects matched, candids out."""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq

from boom_tasks.broker import queue_name, stage_actor
from boom_tasks.crossmatch.stage import CatalogPlan, crossmatch_batch, plan_catalogs
from boom_tasks.messages import check_version, hand_on
from boom_tasks.services.mongo import get_catalog_db, get_db
from boom_tasks.settings import Settings
from boom_tasks.surveys.base import Survey

log = logging.getLogger(__name__)

#: Seconds a worker trusts its list of loaded catalogs before looking again, so a
#: catalog loaded while workers run is used within this delay, without a restart.
PLAN_TTL_S = 300.0

_plans: dict[str, tuple[float, list[CatalogPlan]]] = {}


def current_plans(survey: Survey, settings: Settings) -> list[CatalogPlan]:
    """Return the survey's loaded catalogs, looked up at most every :data:`PLAN_TTL_S`."""
    cached = _plans.get(survey.name)
    if cached and time.monotonic() < cached[0]:
        return cached[1]
    specs = settings.crossmatch.get(survey.name, [])
    plans, problems = plan_catalogs(get_catalog_db(settings.mongo), specs)
    for problem in problems:
        log.warning("%s crossmatch skips catalog %s", survey.name, problem)
    _plans[survey.name] = (time.monotonic() + PLAN_TTL_S, plans)
    return plans


def declare(
    broker: dramatiq.Broker,
    survey: Survey,
    settings: Settings,
    next_stage: dramatiq.Actor | None,
) -> dramatiq.Actor:
    """Declare the ``<survey>_crossmatch`` actor on its own queue."""
    name = queue_name(survey, "crossmatch")

    @stage_actor(broker, name, settings.worker)
    def crossmatch(candids: list[int], times: dict[str, float], version: int = 1) -> dict[str, Any]:
        check_version(name, version)
        started = time.monotonic()
        db = get_db(settings.mongo)
        matched = crossmatch_batch(db, survey, current_plans(survey, settings), candids)
        log.info(
            "%s: %d alerts, %d new objects matched in %.2fs",
            name,
            len(candids),
            matched,
            time.monotonic() - started,
        )
        hand_on(settings, survey.name, "crossmatched", candids, times, next_stage)
        return {"alerts": len(candids), "objects_matched": matched}

    return crossmatch
