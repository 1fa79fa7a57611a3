"""Run a filter over stored alerts without publishing: ``boom filters test`` and activation.

A filter runs on stored alerts exactly as the filter stage runs it on a batch (the
same run-time pipeline, the same permissions), ``filters.candids_per_query`` candids
at a time. The candids come from a night or a jd range, from objectIds, or are given.
The command line (``boom filters``) and the HTTP API (``/filters``) both call these
functions, so a trial and the activation guard answer the same wherever they are asked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from astropy.time import Time
from pymongo.database import Database

from boom_tasks.errors import BoomError
from boom_tasks.filter.config import FilterSettings
from boom_tasks.filter.pipeline import chunked_run_pipelines
from boom_tasks.filter.store import stored_programids
from boom_tasks.services.mongo import mongo_errors, user_aggregate
from boom_tasks.surveys import Survey, get_survey

#: A trial may run this many times the stage's per-batch budget on each chunk: a
#: person runs it once and waits for it, where the stage must keep pace with the night.
TRIAL_BUDGET_FACTOR = 10


class MatchRateTooHigh(BoomError):
    """A filter passes more of the reference night than ``filters.max_match_rate``."""


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
        pipeline, candids=candids, programids=programids, survey=survey, step=step
    ):
        passed += user_aggregate(db[survey.alerts], run, budget_ms)
    return TrialReport(tried=len(candids), passed=passed)


def run_trial(
    db: Database,
    survey: Survey,
    pipeline: list[dict[str, Any]],
    programids: Sequence[int],
    candids: Sequence[int],
    filters: FilterSettings,
) -> TrialReport:
    """Run :func:`try_filter` with the stage's chunk size and the trial budget.

    Raises
    ------
    QueryRejected
        If the database refuses the pipeline (QueryTimeout past the budget).
    """
    budget_ms = filters.time_budget_ms * TRIAL_BUDGET_FACTOR
    return try_filter(
        db, survey, pipeline, programids, candids, budget_ms, filters.candids_per_query
    )


@dataclass(frozen=True)
class MatchRateCheck:
    """How a filter fared on its reference night, against ``filters.max_match_rate``.

    ``report`` is None when no alert of that night is stored (nothing to check).
    """

    night: str | None
    report: TrialReport | None
    limit: float

    @property
    def exceeded(self) -> bool:
        """Tell whether the filter passes more of the night than the limit."""
        return self.report is not None and self.report.rate > self.limit

    def summary(self) -> str:
        """Return one line saying what was checked and how it came out."""
        if self.report is None:
            return f"no stored alerts for reference night {self.night}: match rate unchecked"
        report = self.report
        return (
            f"reference night {self.night}: {len(report.passed)} of {report.tried} alerts pass "
            f"({report.rate:.2%}; limit {self.limit:.2%})"
        )

    def require_within_limit(self, name: str, hint: str) -> None:
        """Raise :class:`MatchRateTooHigh` naming filter ``name`` if the limit is exceeded.

        ``hint`` ends the message: what its reader may do about it.
        """
        if self.exceeded:
            assert self.report is not None
            raise MatchRateTooHigh(
                f"filter {name} passes {self.report.rate:.2%} of night {self.night}, more than "
                f"filters.max_match_rate = {self.limit:.2%}: {hint}"
            )


def check_match_rate(
    db: Database,
    doc: Mapping[str, Any],
    pipeline: list[dict[str, Any]],
    filters: FilterSettings,
    night: str | None = None,
) -> MatchRateCheck:
    """Run a version of a stored filter over a reference night before it may run (BOOM's guard).

    Parameters
    ----------
    db
        Where the night's alerts are stored.
    doc
        The stored filter: its survey and programids (:func:`stored_programids`) apply.
    pipeline
        The version to check.
    filters
        The filter settings: ``max_match_rate``, the budget and the chunk size.
    night
        ``YYYYMMDD``; default: the night of the newest stored alert.

    Raises
    ------
    ValueError
        If ``night`` is not a valid ``YYYYMMDD`` date.
    QueryRejected
        If the database refuses the pipeline.
    """
    survey = get_survey(doc["survey"])
    programids = stored_programids(doc)
    night = night or latest_night(db, survey)
    candids = select_candids(db, survey, Selection(jd_range=night_jd_range(night))) if night else []
    if not candids:
        return MatchRateCheck(night, None, filters.max_match_rate)
    report = run_trial(db, survey, pipeline, programids, candids, filters)
    return MatchRateCheck(night, report, filters.max_match_rate)
