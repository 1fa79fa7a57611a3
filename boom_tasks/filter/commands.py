"""The filter commands: one typed function per operation, for the CLI and the API alike.

``boom filters ...`` (:mod:`boom_tasks.filter.cli`) and the ``/filters`` routes
(:mod:`boom_tasks.api.filters`) only parse their input, call one of these and
print or serialise the result. Each command takes a :class:`FilterEnv` (where)
and a :class:`Caller` (who), returns a dataclass and raises the errors of
:mod:`boom_tasks.filter.errors` (or :mod:`boom_tasks.errors`), so a refusal reads
the same on both faces. Running filters over stored alerts is in
:mod:`boom_tasks.filter.commands_trial`.

Every change follows the same steps: validate the pipeline (every problem at
once), store it, and signal the filter workers, which reload before their next
batch. A version about to run passes the match-rate check first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from boom_tasks.filter.commands_base import (
    Caller,
    FilterEnv,
    accepted,
    dry_run,
    match_rate,
    owned,
    require_programids,
    survey_named,
)
from boom_tasks.filter.errors import FilterForbidden, FilterRefused
from boom_tasks.filter.store import (
    add_filter,
    add_version,
    get_filter,
    list_filters,
    set_active,
    stored_programids,
    version_pipeline,
)
from boom_tasks.filter.testing import MatchRateCheck

__all__ = [
    "Activated",
    "Caller",
    "Deactivated",
    "FilterEnv",
    "VersionAdded",
    "activate",
    "add",
    "deactivate",
    "list_",
    "show",
    "update",
    "validate",
]

#: The end of a refused version's message: what its author may do about it.
UPDATE_HINT = "tighten it, or deactivate the filter first"
#: The end of a refused activation's message (admins may force it on either face).
ACTIVATE_HINT = "tighten it, or have an administrator force it"


#: Longest filter name: names head log lines, listings and per-filter topic names.
MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class VersionAdded:
    """A new version: its ``fid``, the filter's ``active_fid`` and the check it passed."""

    filter_id: str
    fid: str
    active_fid: str
    check: MatchRateCheck | None


@dataclass(frozen=True)
class Activated:
    """A filter made active: which version, and the check it passed (None if forced)."""

    filter_id: str
    name: str
    fid: str
    check: MatchRateCheck | None


@dataclass(frozen=True)
class Deactivated:
    """A filter stopped, with the reason recorded."""

    filter_id: str
    name: str
    reason: str


def add(
    env: FilterEnv,
    caller: Caller,
    *,
    name: str,
    survey: str,
    pipeline: Any,
    programids: Sequence[int],
    description: str = "",
) -> dict[str, Any]:
    """Validate and store a new filter owned by ``caller``, inactive; return its document.

    Raises
    ------
    FilterInvalid, FilterRefused, FilterForbidden, QueryRejected
        A bad pipeline (every problem), an unknown survey, programids beyond the
        caller's, or a pipeline the database refuses when run on the newest alert.
    """
    known = survey_named(survey)
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise FilterRefused(f"a filter name has 1 to {MAX_NAME_LENGTH} characters, not {len(name)}")
    require_programids(caller, programids)
    parsed = accepted(pipeline, known)
    dry_run(env, known, parsed, programids)
    filter_id = add_filter(
        env.db,
        name=name,
        survey=known.name,
        pipeline=parsed,
        programids=programids,
        user_id=caller.name,
        description=description,
        aux_collection=known.aux,
    )
    env.signal()
    return get_filter(env.db, filter_id)


def list_(env: FilterEnv, caller: Caller, survey: str | None = None) -> list[dict[str, Any]]:
    """Return the filters ``caller`` may see (of ``survey``), by name, without pipelines."""
    name = survey_named(survey).name if survey else None
    return list_filters(env.db, name, user_id=None if caller.admin else caller.name)


def show(env: FilterEnv, caller: Caller, filter_id: str) -> dict[str, Any]:
    """Return one filter with every version's pipeline (raises FilterNotFound)."""
    return owned(env, caller, filter_id)


def validate(env: FilterEnv, caller: Caller, pipeline: Any, survey: str) -> list[dict[str, Any]]:
    """Return the pipeline as it would be stored (raises FilterInvalid with every problem)."""
    known = survey_named(survey)
    parsed = accepted(pipeline, known)
    dry_run(env, known, parsed, caller.programids)
    return parsed


def update(
    env: FilterEnv,
    caller: Caller,
    filter_id: str,
    pipeline: Any,
    *,
    changelog: str = "",
    make_active: bool = True,
) -> VersionAdded:
    """Add a version; with ``make_active``, it is the one that runs.

    A version replacing the running pipeline of an active filter passes the
    match-rate check first, as an activation does (raises MatchRateTooHigh).
    """
    doc = owned(env, caller, filter_id)
    survey = survey_named(doc["survey"])
    programids = stored_programids(doc)
    require_programids(caller, programids)
    parsed = accepted(pipeline, survey)
    dry_run(env, survey, parsed, programids)
    check = None
    if make_active and doc.get("active"):
        check = match_rate(env, doc, parsed, None, UPDATE_HINT)
    fid = add_version(env.db, filter_id, parsed, changelog, survey.aux, make_active=make_active)
    env.signal()
    return VersionAdded(filter_id, fid, fid if make_active else doc["active_fid"], check)


def activate(
    env: FilterEnv,
    caller: Caller,
    filter_id: str,
    *,
    fid: str | None = None,
    reference_night: str | None = None,
    force: bool = False,
) -> Activated:
    """Run a version (default: the active one) if it passes few enough of a reference night.

    Raises
    ------
    MatchRateTooHigh
        Past ``filters.max_match_rate`` on ``reference_night`` (default: the newest).
    FilterForbidden
        ``force`` asked by a caller who is not an administrator.
    """
    doc = owned(env, caller, filter_id)
    fid, pipeline = version_pipeline(doc, fid)
    require_programids(caller, stored_programids(doc))
    if force and not caller.admin:
        raise FilterForbidden("only an administrator may skip the match-rate check (force)")
    check = None if force else match_rate(env, doc, pipeline, reference_night, ACTIVATE_HINT)
    set_active(env.db, filter_id, True, fid=fid)
    env.signal()
    return Activated(filter_id, doc["name"], fid, check)


def deactivate(env: FilterEnv, caller: Caller, filter_id: str, reason: str) -> Deactivated:
    """Stop running a filter; its ``disabled_reason`` records ``reason``."""
    doc = owned(env, caller, filter_id)
    set_active(env.db, filter_id, False, reason=reason)
    env.signal()
    return Deactivated(filter_id, doc["name"], reason)
