"""Filter commands that run a pipeline over stored alerts and publish nothing.

``boom filters test`` and ``POST /filters/test``, ``POST /filters/{id}/test`` call
these (see :mod:`boom_tasks.filter.commands` for the pattern). A selection is one
of a night, a jd range, objectIds or candids; none means the newest stored night.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from boom_tasks.filter.commands_base import (
    Caller,
    FilterEnv,
    accepted,
    owned,
    require_programids,
    survey_named,
)
from boom_tasks.filter.store import stored_programids, version_pipeline
from boom_tasks.filter.testing import (
    Selection,
    latest_night,
    night_jd_range,
    run_trial,
    select_candids,
)
from boom_tasks.surveys import Survey


@dataclass(frozen=True)
class Chosen:
    """A selection of stored alerts and the words that describe it (``night 20181129``)."""

    selection: Selection
    description: str


@dataclass(frozen=True)
class TrialResult:
    """What a test ran on and which alerts passed, with their annotations.

    ``filter`` is ``{"id", "name", "fid"}`` for a stored filter, None for a pipeline.
    """

    selection: str
    programids: list[int]
    tried: int
    passed: list[dict[str, Any]]
    rate: float
    pipeline: list[dict[str, Any]]
    filter: dict[str, str] | None = None


def _run(
    env: FilterEnv,
    survey: Survey,
    pipeline: list[dict[str, Any]],
    programids: list[int],
    chosen: Chosen | None,
) -> TrialResult:
    """Run ``pipeline`` over the chosen alerts (None: the newest stored night)."""
    if chosen is None:
        night = latest_night(env.db, survey)
        if night is None:
            chosen = Chosen(Selection(candids=[]), "no stored alerts")
        else:
            chosen = Chosen(Selection(jd_range=night_jd_range(night)), f"night {night}")
    selection = chosen.selection
    empty = not (selection.candids or selection.object_ids or selection.jd_range)
    candids = [] if empty else select_candids(env.db, survey, selection)
    report = run_trial(env.db, survey, pipeline, programids, candids, env.settings)
    return TrialResult(
        chosen.description,
        programids,
        report.tried,
        report.passed,
        report.rate,
        pipeline,
    )


def test_pipeline(
    env: FilterEnv,
    caller: Caller,
    pipeline: Any,
    *,
    survey: str,
    programids: Sequence[int],
    chosen: Chosen | None = None,
) -> TrialResult:
    """Run a pipeline, not stored, over stored alerts with ``programids``.

    Raises
    ------
    FilterInvalid, FilterRefused, FilterForbidden
        A bad pipeline, an unknown survey, programids beyond the caller's.
    """
    known = survey_named(survey)
    require_programids(caller, programids)
    parsed = accepted(pipeline, known)
    return _run(env, known, parsed, sorted(set(programids)), chosen)


def test_stored(
    env: FilterEnv,
    caller: Caller,
    filter_id: str,
    *,
    fid: str | None = None,
    chosen: Chosen | None = None,
) -> TrialResult:
    """Run a stored filter's version (default: the active one) over stored alerts."""
    doc = owned(env, caller, filter_id)
    fid, pipeline = version_pipeline(doc, fid)
    programids = stored_programids(doc)
    require_programids(caller, programids)
    result = _run(env, survey_named(doc["survey"]), pipeline, programids, chosen)
    info = {"id": filter_id, "name": str(doc["name"]), "fid": fid}
    return dataclasses.replace(result, filter=info)
