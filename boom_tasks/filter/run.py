"""Run every active filter of a survey on one batch of candids.

Filters sharing the broker's stages run together, one aggregation per chunk
(:mod:`boom_tasks.filter.facet`); the others, and every filter on a batch run ``solo``
(every ``filters.solo_every`` batches, to measure each filter's own cost and hold it
to its own budget), run one at a time as follows.

Step 1: for each filter, build its run-time pipeline: the broker's ``$match`` on the
        batch's candids and the filter's permitted programids, the aux ``$lookup``
        only if the filter reads history or cross-matches, then the user's stages
        (:func:`boom_tasks.filter.pipeline.run_pipeline`);
Step 2: run it with the time budget; a filter the database refuses, or one over
        budget, is isolated: its failure is recorded and the other filters run;
Step 3: record every pass (``<survey>_filter_passes``, ``_id`` =
        ``candid:filter:version``: a replay writes nothing new) and each filter's
        health (failures in a row; deactivation with the reason past the limit).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database

from boom_tasks.errors import QueryRejected, QueryTimeout
from boom_tasks.filter.config import FilterSettings
from boom_tasks.filter.facet import plan_groups, run_group
from boom_tasks.filter.pipeline import chunked_run_pipelines
from boom_tasks.filter.store import FILTERS, ActiveFilter
from boom_tasks.services.mongo import insert_new, mongo_errors, user_aggregate
from boom_tasks.surveys import Survey

log = logging.getLogger(__name__)


@dataclass
class FilterOutcome:
    """What one filter did on one batch."""

    filter: ActiveFilter
    passes: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    #: Passes recorded for the first time (a replayed batch's passes are not new).
    new_passes: int = 0


def run_filter(
    db: Database,
    survey: Survey,
    f: ActiveFilter,
    candids: Sequence[int],
    settings: FilterSettings,
    budget_ms: int | None = None,
) -> FilterOutcome:
    """Run one filter on the batch, a chunk of candids at a time; never raises for its faults.

    ``budget_ms`` is ``settings.time_budget_ms`` unless given (what is left of it when a
    group falls back to running its filters one at a time).
    """
    started = time.monotonic()
    outcome = FilterOutcome(f)
    budget_ms = settings.time_budget_ms if budget_ms is None else budget_ms
    pipelines = chunked_run_pipelines(
        f.pipeline,
        candids=candids,
        programids=f.programids,
        survey=survey,
        step=settings.candids_per_query,
    )
    try:
        for pipeline in pipelines:
            # Each chunk gets what is left of the filter's budget for the whole batch.
            left_ms = max(1, budget_ms - int((time.monotonic() - started) * 1000))
            outcome.passes += user_aggregate(db[survey.alerts], pipeline, left_ms)
    except QueryTimeout:  # the filter's fault: isolate it
        outcome.error = f"stopped by the database: over its budget of {budget_ms} ms"
        outcome.passes = []
    except QueryRejected as e:  # an expression the database refuses at run time
        outcome.error = str(e)
        outcome.passes = []
    outcome.seconds = time.monotonic() - started
    if outcome.error is None and outcome.seconds * 1000 > budget_ms:
        outcome.error = f"took {outcome.seconds * 1000:.0f} ms, over its budget of {budget_ms} ms"
    return outcome


def pass_documents(outcome: FilterOutcome, now: dt.datetime) -> list[dict[str, Any]]:
    """Return the pass records of one filter's outcome."""
    f = outcome.filter
    return [
        {
            "_id": f"{doc['_id']}:{f.id}:{f.fid}",
            "candid": doc["_id"],
            "objectId": doc.get("objectId"),
            "filter_id": f.id,
            "filter_name": f.name,
            "fid": f.fid,
            "programids": f.programids,
            "passed_at": now,
            "annotations": doc.get("annotations", {}),
        }
        for doc in outcome.passes
    ]


def _record_failure(
    db: Database, outcome: FilterOutcome, settings: FilterSettings, now: dt.datetime
) -> bool:
    """Count one more failure; past the limit, deactivate the filter with the reason.

    Returns True if the filter was deactivated (the caller signals the change).
    """
    f = outcome.filter
    error = {"message": outcome.error, "fid": f.fid, "at": now}
    doc = db[FILTERS].find_one_and_update(
        {"_id": f.id},
        {"$inc": {"overruns": 1}, "$set": {"last_error": error}},
        projection={"overruns": 1},
        return_document=ReturnDocument.AFTER,
    )
    if doc and doc["overruns"] >= settings.max_failures:
        reason = f"failed {doc['overruns']} batches in a row; last: {outcome.error}"
        db[FILTERS].update_one(
            {"_id": f.id}, {"$set": {"active": False, "disabled_reason": reason, "updated_at": now}}
        )
        log.error("filter %s (%s) deactivated: %s", f.name, f.id, reason)
        return True
    return False


def _count_new(outcomes: Sequence[FilterOutcome], new: list[dict[str, Any]]) -> None:
    by_filter = Counter(p["filter_id"] for p in new)
    for o in outcomes:
        o.new_passes = by_filter.get(o.filter.id, 0)


def record(
    db: Database,
    survey: Survey,
    outcomes: Sequence[FilterOutcome],
    settings: FilterSettings,
    now: dt.datetime,
) -> list[str]:
    """Store the passes and the filters' health; return the filters deactivated."""
    passes = [p for o in outcomes for p in pass_documents(o, now)]
    what = f"recording {survey.name} filter passes"
    with mongo_errors(what):
        if passes:
            new = insert_new(db[survey.filter_passes], passes, what)
            _count_new(outcomes, [passes[i] for i in new])
        healthy = [o.filter.id for o in outcomes if o.error is None]
        if healthy:
            db[FILTERS].update_many(
                {"_id": {"$in": healthy}, "overruns": {"$ne": 0}}, {"$set": {"overruns": 0}}
            )
        deactivated = []
        for o in outcomes:
            if o.error is not None:
                log.warning("%s filter %s failed: %s", survey.name, o.filter.name, o.error)
                if _record_failure(db, o, settings, now):
                    deactivated.append(o.filter.id)
    return deactivated


def run_filters(
    db: Database,
    survey: Survey,
    filters: Sequence[ActiveFilter],
    candids: Sequence[int],
    settings: FilterSettings,
    now: dt.datetime | None = None,
    *,
    solo: bool = False,
) -> tuple[list[FilterOutcome], list[str]]:
    """Run every filter on the batch and record the outcomes (see the module docstring).

    Parameters
    ----------
    db, survey
        The broker's database and the survey of the batch.
    filters
        The survey's active filters.
    candids
        The batch.
    settings
        The filter stage's settings (budgets, chunk size, grouping).
    now
        Time of the passes (default: now).
    solo
        Run every filter alone, as if ``filters.grouped`` were off: each filter's
        time is then its own, and held to its own budget.

    Returns
    -------
    outcomes, deactivated
        Each filter's outcome (in the order of ``filters``), and the ids of filters
        deactivated by this batch.
    """
    now = now or dt.datetime.now(dt.UTC)
    by_id: dict[str, FilterOutcome] = {}
    groups, alone = plan_groups(filters) if settings.grouped and not solo else ([], filters)

    def run_alone(f: ActiveFilter, part: Sequence[int], budget_ms: int) -> FilterOutcome:
        return run_filter(db, survey, f, part, settings, budget_ms)

    for group in groups:
        for o in run_group(db, survey, group, candids, settings, run_alone, FilterOutcome):
            by_id[o.filter.id] = o
    for f in alone:
        by_id[f.id] = run_filter(db, survey, f, candids, settings)
    outcomes = [by_id[f.id] for f in filters]
    return outcomes, record(db, survey, outcomes, settings, now)
