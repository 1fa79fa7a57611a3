"""``/filters``: users' filters over HTTP, the operations of ``boom filters`` for their owners.

Request and answer shapes follow BOOM's API (``api/routes/filters.rs``): a filter
is answered with ``id`` for ``_id``; ``POST /filters/{id}/versions`` answers the
new ``fid``; ``POST /filters/test`` answers ``results`` and the ``pipeline``.
Activation and deactivation are routes of their own here (BOOM folds them into a
``PATCH``), so each carries its own check.

Who may do what:

- A filter created here belongs to its creator (``user_id`` = the user name). A
  user sees and changes only their own filters; admins see and change all. Any
  other filter is answered 404, exactly as one that does not exist.
- The programids a filter (or a test) runs on must be within the user's own
  (``boom users add --programids``; public data, programid 1, by default), else
  403. Admins may use any. It is checked again on each activation and test, so
  narrowing a user's programids reaches their existing filters.

Every change follows the command line's steps, through the same functions
(:mod:`boom_tasks.filter.store`, :mod:`boom_tasks.filter.testing`): validate the
pipeline (400 listing every problem), store it, and signal the filter workers
(:func:`boom_tasks.filter.cache.signal_change`). Activation first runs the filter
over a reference night and refuses it past ``filters.max_match_rate`` (400).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter

from boom_tasks.api.context import Ctx, CtxDep
from boom_tasks.api.encoding import BsonJSONResponse, envelope
from boom_tasks.api.errors import ApiError, BadRequest, NotFound
from boom_tasks.api.filter_models import (
    ActivatePost,
    DeactivatePost,
    FilterPost,
    PipelineTrialPost,
    StoredTrialPost,
    TrialPost,
    ValidatePost,
    VersionPost,
)
from boom_tasks.errors import UnknownSurvey
from boom_tasks.filter.cache import signal_change
from boom_tasks.filter.errors import FilterInvalid
from boom_tasks.filter.store import (
    FilterNotFound,
    add_filter,
    add_version,
    get_filter,
    list_filters,
    set_active,
    stored_programids,
    version_pipeline,
)
from boom_tasks.filter.testing import (
    MatchRateCheck,
    MatchRateTooHigh,
    TrialReport,
    check_match_rate,
    latest_night,
    run_trial,
    select_candids,
)
from boom_tasks.filter.validate import parse_pipeline, validate_pipeline
from boom_tasks.services.mongo import mongo_errors
from boom_tasks.services.valkey import get_client
from boom_tasks.surveys import Survey, get_survey

router = APIRouter(prefix="/filters", tags=["Filters"])

#: Largest pipeline, as JSON text. Real filters are a few kB; every version is kept in
#: the filter's document, which MongoDB caps at 16 MiB.
MAX_PIPELINE_CHARS = 100_000


class Forbidden(ApiError):
    """The user may not do this, whatever the filter (403): programids beyond their own."""

    status = 403


# --- translating the filter package's errors, once --------------------------------------


@contextmanager
def _filter_errors() -> Iterator[None]:
    """Answer the filter package's refusals as 400s and 404s with their messages."""
    try:
        yield
    except FilterInvalid as e:
        raise BadRequest("invalid filter pipeline: " + "; ".join(e.problems)) from None
    except MatchRateTooHigh as e:
        raise BadRequest(str(e)) from None
    except FilterNotFound as e:
        raise NotFound(str(e)) from None
    except UnknownSurvey as e:
        raise BadRequest(str(e)) from None


def _survey(name: str) -> Survey:
    with _filter_errors():
        return get_survey(name)


def _accepted(pipeline: Any, survey: Survey) -> list[dict[str, Any]]:
    """Return the pipeline parsed if a filter may be made of it (400 with every problem)."""
    with _filter_errors():
        parsed = validate_pipeline(parse_pipeline(pipeline), aux_collection=survey.aux)
    if len(json.dumps(parsed)) > MAX_PIPELINE_CHARS:
        raise BadRequest(f"the pipeline is longer than {MAX_PIPELINE_CHARS} characters as JSON")
    return parsed


# --- ownership and permissions ----------------------------------------------------------


def _owned(ctx: Ctx, filter_id: str) -> dict[str, Any]:
    """Return filter ``filter_id`` if the user may see it; 404 if absent or another's."""
    try:
        doc = get_filter(ctx.state.db(), filter_id)
    except FilterNotFound:
        doc = None
    if doc is None or not (ctx.user.admin or doc.get("user_id") == ctx.user.name):
        # The same answer either way: another user's filter ids are not revealed.
        raise NotFound(f"filter with id {filter_id} does not exist")
    return doc


def _require_programids(ctx: Ctx, programids: Sequence[int]) -> None:
    """Refuse (403) programids beyond the user's own."""
    beyond = ctx.user.programids_beyond(programids)
    if beyond:
        allowed = list(ctx.user.allowed_programids() or ())
        raise Forbidden(
            f"programids {beyond} are beyond your permissions (programids {allowed}); "
            "an administrator may grant them (boom users add NAME --programids ...)"
        )


def _requested_programids(
    ctx: Ctx, survey: Survey, permissions: Mapping[str, Sequence[int]]
) -> list[int]:
    """Return the programids asked for ``survey`` in BOOM's ``{survey: [...]}`` map."""
    others = sorted(set(permissions) - {survey.name})
    if others:
        raise BadRequest(f"permissions name {others}, but the filter runs on {survey.name} only")
    programids = sorted(set(permissions.get(survey.name) or ()))
    if not programids and survey.permissions.restricted:
        raise BadRequest(
            f"filters running on survey {survey.name} must have permissions defined for "
            f'that survey, e.g. {{"{survey.name}": [1]}}'
        )
    _require_programids(ctx, programids)
    return programids


# --- running pipelines on stored alerts -------------------------------------------------


def _dry_run(
    ctx: Ctx, survey: Survey, pipeline: list[dict], programids: Sequence[int] | None
) -> None:
    """Run a pipeline on the newest alert of ``programids`` (None: any), as BOOM does.

    Catches what only the database knows (an operator given the wrong arguments):
    the database's message is answered as a 400. The result is discarded, and the
    alert is one the user may see, so even the message reveals nothing else.
    """
    db = ctx.state.db()
    perms = survey.permissions
    query = {} if programids is None else perms.alert_match(programids)
    field = f"candidate.{perms.field}" if perms.field else "_id"
    with mongo_errors("finding the newest alert"):
        newest = db[survey.alerts].find_one(query, {field: 1}, sort=[("candidate.jd", -1)])
    if newest is None:
        return
    own = newest.get("candidate", {}).get(perms.field) if perms.field else None
    mine: list[int] = [] if own is None else [int(own)]
    ids = mine if programids is None else programids
    run_trial(db, survey, pipeline, ids, [newest["_id"]], ctx.state.settings.filters)


def _match_rate(ctx: Ctx, doc: Mapping[str, Any], pipeline: list[dict], night: str | None) -> dict:
    """Run the activation guard (as ``boom filters activate``); 400 past the limit."""
    with _filter_errors():
        check = check_match_rate(ctx.state.db(), doc, pipeline, ctx.state.settings.filters, night)
        check.require_within_limit(doc["name"], hint="tighten it")
    return _check_answer(check)


def _check_answer(check: MatchRateCheck) -> dict[str, Any]:
    report = check.report
    return {
        "checked": report is not None,
        "reference_night": check.night,
        "tried": report.tried if report else 0,
        "passed": len(report.passed) if report else 0,
        "rate": report.rate if report else None,
        "max_match_rate": check.limit,
        "summary": check.summary(),
    }


def _trial(
    ctx: Ctx,
    survey: Survey,
    pipeline: list[dict],
    programids: list[int],
    body: TrialPost,
) -> dict[str, Any]:
    """Run a pipeline over the stored alerts ``body`` selects (as ``boom filters test``)."""
    db = ctx.state.db()
    latest = latest_night(db, survey) if body.selects_nothing else None
    selection, what = body.selection(latest)
    candids = select_candids(db, survey, selection) if selection else []
    report = run_trial(db, survey, pipeline, programids, candids, ctx.state.settings.filters)
    return _trial_answer(report, body.limit, what, programids, pipeline)


def _trial_answer(
    report: TrialReport, limit: int, what: str, programids: list[int], pipeline: list[dict]
) -> dict[str, Any]:
    return {
        "selection": what,
        "programids": programids,
        "tried": report.tried,
        "passed": len(report.passed),
        "rate": report.rate,
        "results": report.passed[:limit],
        "pipeline": pipeline,
    }


def _signal(ctx: Ctx) -> None:
    """Tell the filter workers to reload, as every ``boom filters`` change does."""
    signal_change(get_client(ctx.state.settings.valkey))


def _public(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Return a filter document as BOOM answers it: ``id`` in place of ``_id``."""
    return {"id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}


# --- routes -----------------------------------------------------------------------------


@router.post("", summary="Create a filter (stored inactive)")
def post_filter(body: FilterPost, ctx: CtxDep) -> BsonJSONResponse:
    """Validate and store a new filter owned by the user; answer it."""
    survey = _survey(body.survey)
    programids = _requested_programids(ctx, survey, body.permissions)
    pipeline = _accepted(body.pipeline, survey)
    _dry_run(ctx, survey, pipeline, programids)
    db = ctx.state.db()
    with _filter_errors():
        filter_id = add_filter(
            db,
            name=body.name,
            survey=survey.name,
            pipeline=pipeline,
            programids=programids,
            user_id=ctx.user.name,
            description=body.description,
            aux_collection=survey.aux,
        )
    _signal(ctx)
    return envelope("successfully created new filter", _public(get_filter(db, filter_id)))


@router.get("", summary="List your filters (admins: all)")
def get_filters(ctx: CtxDep, survey: str | None = None) -> BsonJSONResponse:
    """Answer the user's filters by name, without version pipelines (``GET /filters/{id}``)."""
    owner = None if ctx.user.admin else ctx.user.name
    name = _survey(survey).name if survey else None
    docs = list_filters(ctx.state.db(), name, user_id=owner)
    return envelope("retrieved filters successfully", [_public(d) for d in docs])


@router.post("/validate", summary="Check a pipeline without storing it")
def post_validate(body: ValidatePost, ctx: CtxDep) -> BsonJSONResponse:
    """Answer the pipeline as it would be stored, or 400 listing every problem."""
    survey = _survey(body.survey)
    pipeline = _accepted(body.pipeline, survey)
    _dry_run(ctx, survey, pipeline, ctx.user.allowed_programids())
    return envelope("the pipeline is a valid filter", {"valid": True, "pipeline": pipeline})


@router.post("/test", summary="Run a pipeline over stored alerts (nothing stored)")
def post_test_pipeline(body: PipelineTrialPost, ctx: CtxDep) -> BsonJSONResponse:
    """Answer how many of the selected stored alerts pass, and which (up to ``limit``)."""
    survey = _survey(body.survey)
    programids = _requested_programids(ctx, survey, body.permissions)
    pipeline = _accepted(body.pipeline, survey)
    answer = _trial(ctx, survey, pipeline, programids, body)
    return envelope(f"{answer['passed']} of {answer['tried']} alerts pass", answer)


@router.get("/{filter_id}", summary="One of your filters, with its versions")
def get_one_filter(filter_id: str, ctx: CtxDep) -> BsonJSONResponse:
    """Answer the filter, each version's pipeline included (as JSON text)."""
    return envelope("retrieved filter successfully", _public(_owned(ctx, filter_id)))


@router.post("/{filter_id}/versions", summary="Add a version")
def post_version(filter_id: str, body: VersionPost, ctx: CtxDep) -> BsonJSONResponse:
    """Store a new version; with ``set_as_active``, it is the one that runs.

    A version replacing the running pipeline of an active filter passes the
    match-rate check first, as an activation does (BOOM does the same).
    """
    doc = _owned(ctx, filter_id)
    survey = _survey(doc["survey"])
    programids = stored_programids(doc)
    _require_programids(ctx, programids)
    pipeline = _accepted(body.pipeline, survey)
    _dry_run(ctx, survey, pipeline, programids)
    check = None
    if body.set_as_active and doc.get("active"):
        check = _match_rate(ctx, doc, pipeline, None)
    with _filter_errors():
        fid = add_version(
            ctx.state.db(),
            filter_id,
            pipeline,
            body.changelog,
            survey.aux,
            make_active=body.set_as_active,
        )
    _signal(ctx)
    active_fid = fid if body.set_as_active else doc["active_fid"]
    data = {"fid": fid, "active_fid": active_fid, "match_rate": check}
    return envelope(f"successfully added new version {fid} to filter id: {filter_id}", data)


@router.post("/{filter_id}/activate", summary="Activate (after the match-rate check)")
def post_activate(
    filter_id: str, ctx: CtxDep, body: ActivatePost | None = None
) -> BsonJSONResponse:
    """Run a version (default: the active_fid) if it passes few enough of a reference night."""
    body = body or ActivatePost()
    doc = _owned(ctx, filter_id)
    with _filter_errors():
        fid, pipeline = version_pipeline(doc, body.fid)
    _require_programids(ctx, stored_programids(doc))
    if body.force and not ctx.user.admin:
        raise Forbidden("only an administrator may skip the match-rate check (force)")
    check = None if body.force else _match_rate(ctx, doc, pipeline, body.reference_night)
    with _filter_errors():
        set_active(ctx.state.db(), filter_id, True, fid=fid)
    _signal(ctx)
    data = {"id": filter_id, "active": True, "active_fid": fid, "match_rate": check}
    return envelope(f"filter {doc['name']} active, version {fid}", data)


@router.post("/{filter_id}/deactivate", summary="Deactivate, recording why")
def post_deactivate(
    filter_id: str, ctx: CtxDep, body: DeactivatePost | None = None
) -> BsonJSONResponse:
    """Stop running the filter; its ``disabled_reason`` records ``reason``."""
    body = body or DeactivatePost()
    doc = _owned(ctx, filter_id)
    reason = body.reason or f"deactivated by {ctx.user.name} through the API"
    with _filter_errors():
        set_active(ctx.state.db(), filter_id, False, reason=reason)
    _signal(ctx)
    data = {"id": filter_id, "active": False, "disabled_reason": reason}
    return envelope(f"filter {doc['name']} inactive", data)


@router.post("/{filter_id}/test", summary="Run a stored filter over stored alerts")
def post_test_stored(
    filter_id: str, ctx: CtxDep, body: StoredTrialPost | None = None
) -> BsonJSONResponse:
    """Answer how many of the selected stored alerts a version (default: active_fid) passes."""
    body = body or StoredTrialPost()
    doc = _owned(ctx, filter_id)
    with _filter_errors():
        fid, pipeline = version_pipeline(doc, body.fid)
    programids = stored_programids(doc)
    _require_programids(ctx, programids)
    answer = _trial(ctx, _survey(doc["survey"]), pipeline, programids, body)
    answer["filter"] = {"id": filter_id, "name": doc["name"], "fid": fid}
    return envelope(f"{answer['passed']} of {answer['tried']} alerts pass", answer)
