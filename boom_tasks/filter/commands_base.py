"""What every filter command needs: who asks, where the filters live, and the shared checks.

The command line and the API both build a :class:`FilterEnv` (the database, the
filter settings, how to tell the filter workers) and a :class:`Caller` (who asks),
then call a command of :mod:`boom_tasks.filter.commands`. The checks here raise the
errors of :mod:`boom_tasks.filter.errors`, so each face reports them the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.database import Database

from boom_tasks.errors import UnknownSurvey
from boom_tasks.filter.config import FilterSettings
from boom_tasks.filter.errors import FilterForbidden, FilterNotFound, FilterRefused
from boom_tasks.filter.store import get_filter
from boom_tasks.filter.testing import MatchRateCheck, check_match_rate, run_trial
from boom_tasks.filter.validate import parse_pipeline, validate_pipeline
from boom_tasks.services.mongo import mongo_errors
from boom_tasks.surveys import Survey, get_survey

#: Largest pipeline, as JSON text. Real filters are a few kB; every version is kept in
#: the filter's document, which MongoDB caps at 16 MiB.
MAX_PIPELINE_CHARS = 100_000


@dataclass(frozen=True)
class FilterEnv:
    """Where filter commands read and write.

    Attributes
    ----------
    db
        The database holding the survey's alerts and the ``filters`` collection.
    settings
        The ``filters`` settings (match-rate limit, per-query budgets).
    signal
        Tells the filter workers to reload (:func:`boom_tasks.filter.cache.signal_change`).
    """

    db: Database
    settings: FilterSettings
    signal: Callable[[], None]


@dataclass(frozen=True)
class Caller:
    """Who runs a command: their name, whether they are an admin, their programids.

    Attributes
    ----------
    name
        Owner recorded on the filters they create.
    admin
        Admins see and change every filter and may skip the match-rate check.
    programids
        Programids their filters may run on; None: any (admins and operators).
    """

    name: str
    admin: bool = False
    programids: tuple[int, ...] | None = None

    def beyond(self, programids: Sequence[int]) -> list[int]:
        """Return those of ``programids`` this caller may not use, sorted."""
        if self.programids is None:
            return []
        return sorted(set(programids) - set(self.programids))


def operator(name: str = "admin") -> Caller:
    """Return the caller of the command line: an operator, with every right."""
    return Caller(name=name, admin=True, programids=None)


def survey_named(name: str) -> Survey:
    """Return the survey ``name`` (raises :class:`FilterRefused` naming the known ones)."""
    try:
        return get_survey(name)
    except UnknownSurvey as e:
        raise FilterRefused(str(e)) from None


def accepted(pipeline: Any, survey: Survey) -> list[dict[str, Any]]:
    """Return the pipeline parsed if a filter may be made of it (raises FilterInvalid)."""
    parsed = validate_pipeline(parse_pipeline(pipeline), aux_collection=survey.aux)
    if len(json.dumps(parsed)) > MAX_PIPELINE_CHARS:
        raise FilterRefused(f"the pipeline is longer than {MAX_PIPELINE_CHARS} characters as JSON")
    return parsed


def owned(env: FilterEnv, caller: Caller, filter_id: str) -> dict[str, Any]:
    """Return filter ``filter_id`` if the caller may see it, else raise FilterNotFound.

    Another user's filter gets the message of a missing one: ids are not revealed.
    """
    doc = get_filter(env.db, filter_id)
    if not (caller.admin or doc.get("user_id") == caller.name):
        raise FilterNotFound(f"filter with id {filter_id} does not exist")
    return doc


def require_programids(caller: Caller, programids: Sequence[int]) -> None:
    """Raise :class:`FilterForbidden` for programids beyond the caller's own."""
    beyond = caller.beyond(programids)
    if beyond:
        raise FilterForbidden(
            f"programids {beyond} are beyond your permissions (programids "
            f"{list(caller.programids or ())}); an administrator may grant them "
            "(boom users add NAME --programids ...)"
        )


def requested_programids(
    caller: Caller, survey: Survey, permissions: Mapping[str, Sequence[int]]
) -> list[int]:
    """Return the programids asked for ``survey`` in BOOM's ``{survey: [...]}`` map."""
    others = sorted(set(permissions) - {survey.name})
    if others:
        raise FilterRefused(f"permissions name {others}, but the filter runs on {survey.name} only")
    programids = sorted(set(permissions.get(survey.name) or ()))
    if not programids and survey.permissions.restricted:
        raise FilterRefused(
            f"filters running on survey {survey.name} must have permissions defined for "
            f'that survey, e.g. {{"{survey.name}": [1]}}'
        )
    require_programids(caller, programids)
    return programids


def dry_run(
    env: FilterEnv, survey: Survey, pipeline: list[dict], programids: Sequence[int] | None
) -> None:
    """Run a pipeline on the newest alert of ``programids`` (None: any), as BOOM does.

    Catches what only the database knows (an operator given the wrong arguments):
    it raises :class:`boom_tasks.errors.QueryRejected` with the database's message.
    The alert is one the caller may see, so even the message reveals nothing else.
    """
    perms = survey.permissions
    query = {} if programids is None else perms.alert_match(programids)
    field = f"candidate.{perms.field}" if perms.field else "_id"
    with mongo_errors("finding the newest alert"):
        newest = env.db[survey.alerts].find_one(query, {field: 1}, sort=[("candidate.jd", -1)])
    if newest is None:
        return
    own = newest.get("candidate", {}).get(perms.field) if perms.field else None
    mine: list[int] = [] if own is None else [int(own)]
    ids = mine if programids is None else programids
    run_trial(env.db, survey, pipeline, ids, [newest["_id"]], env.settings)


def match_rate(
    env: FilterEnv, doc: Mapping[str, Any], pipeline: list[dict], night: str | None, hint: str
) -> MatchRateCheck:
    """Run the activation guard on ``night``; raise MatchRateTooHigh past the limit."""
    check = check_match_rate(env.db, doc, pipeline, env.settings, night)
    check.require_within_limit(doc["name"], hint=hint)
    return check
