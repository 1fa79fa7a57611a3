"""Run a filter over stored alerts without publishing: ``boom filters test`` and activation.

A filter runs on stored alerts exactly as the filter stage runs it on a batch (the
same run-time pipeline, the same permissions), a thousand candids at a time. The
candids come from a night or a jd range, from objectIds, or are given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from astropy.time import Time
from pymongo.database import Database

from boom_tasks.filter.pipeline import chunked_run_pipelines
from boom_tasks.services.mongo import mongo_errors, user_aggregate
from boom_tasks.surveys import Survey


@dataclass
class Selection:
    """Which stored alerts to run a filter on (one of the three ways)."""

    jd_range: tuple[float, float] | None = None
    object_ids: list[str] = field(default_factory=list)
    candids: list[int] = field(default_factory=list)


@dataclass
class TrialReport:
    """How many alerts were tried and which passed, with their annotations."""

    tried: int
    passed: list[dict[str, Any]]

    @property
    def rate(self) -> float:
        """Fraction of the tried alerts that passed (0 when none was tried)."""
        return len(self.passed) / self.tried if self.tried else 0.0


def night_jd_range(night: str) -> tuple[float, float]:
    """Return the jd range of a UTC date ``YYYYMMDD`` (a ZTF night fits in one UTC date)."""
    day = dt.datetime.strptime(night, "%Y%m%d").replace(tzinfo=dt.UTC)
    start = float(Time(day).jd)
    return start, start + 1.0


def latest_night(db: Database, survey: Survey) -> str | None:
    """Return the UTC date of the newest stored alert, or None if there is none."""
    with mongo_errors("finding the latest night"):
        doc = db[survey.alerts].find_one({}, {"candidate.jd": 1}, sort=[("candidate.jd", -1)])
    if doc is None:
        return None
    return str(Time(doc["candidate"]["jd"], format="jd").datetime.strftime("%Y%m%d"))


def select_candids(db: Database, survey: Survey, selection: Selection) -> list[int]:
    """Return the stored candids of a selection, sorted."""
    if selection.candids:
        query: dict[str, Any] = {"_id": {"$in": list(selection.candids)}}
    elif selection.object_ids:
        query = {"objectId": {"$in": list(selection.object_ids)}}
    elif selection.jd_range:
        lo, hi = selection.jd_range
        query = {"candidate.jd": {"$gte": lo, "$lt": hi}}
    else:
        query = {}
    with mongo_errors("selecting stored alerts"):
        return sorted(d["_id"] for d in db[survey.alerts].find(query, {"_id": 1}))


def try_filter(
    db: Database,
    survey: Survey,
    pipeline: list[dict[str, Any]],
    programids: Sequence[int],
    candids: Sequence[int],
    budget_ms: int,
    step: int,
) -> TrialReport:
    """Run a filter on stored candids, ``step`` at a time; nothing is recorded or published.

    Raises
    ------
    QueryRejected
        If the database refuses the pipeline (QueryTimeout past ``budget_ms`` per chunk).
    """
    passed: list[dict[str, Any]] = []
    for run in chunked_run_pipelines(
        pipeline, candids=candids, programids=programids, aux_collection=survey.aux, step=step
    ):
        passed += user_aggregate(db[survey.alerts], run, budget_ms)
    return TrialReport(tried=len(candids), passed=passed)
