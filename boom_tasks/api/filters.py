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

Each route parses its body, calls the command of :mod:`boom_tasks.filter.commands`
that ``boom filters`` calls too, and serialises the result: the checks, the steps
(validate with every problem listed, store, signal the filter workers, the
match-rate guard before a version runs) and the error messages are the command
line's. :mod:`boom_tasks.api.errors` gives each filter error its status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter

from boom_tasks.api.context import Ctx, CtxDep
from boom_tasks.api.encoding import BsonJSONResponse, envelope
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
from boom_tasks.filter import commands, commands_trial
from boom_tasks.filter.cache import signal_change
from boom_tasks.filter.commands_base import Caller, FilterEnv, requested_programids, survey_named
from boom_tasks.filter.commands_trial import Chosen, TrialResult
from boom_tasks.filter.testing import MatchRateCheck
from boom_tasks.services.valkey import get_client

router = APIRouter(prefix="/filters", tags=["Filters"])


def _env(ctx: Ctx) -> FilterEnv:
    settings = ctx.state.settings
    return FilterEnv(
        ctx.state.db(), settings.filters, lambda: signal_change(get_client(settings.valkey))
    )


def _caller(ctx: Ctx) -> Caller:
    user = ctx.user
    return Caller(name=user.name, admin=user.admin, programids=user.allowed_programids())


def _chosen(body: TrialPost) -> Chosen | None:
    """Return the alerts a test body selects; None: the newest stored night."""
    if body.selects_nothing:
        return None
    selection, what = body.selection(None)
    assert selection is not None  # a selection given is never empty
    return Chosen(selection, what)


def _check_answer(check: MatchRateCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
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


def _trial_answer(result: TrialResult, limit: int) -> dict[str, Any]:
    answer = {
        "selection": result.selection,
        "programids": result.programids,
        "tried": result.tried,
        "passed": len(result.passed),
        "rate": result.rate,
        "results": result.passed[:limit],
        "pipeline": result.pipeline,
    }
    if result.filter is not None:
        answer["filter"] = result.filter
    return answer


def _public(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Return a filter document as BOOM answers it: ``id`` in place of ``_id``."""
    return {"id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}


# --- routes -----------------------------------------------------------------------------


@router.post("", summary="Create a filter (stored inactive)")
def post_filter(body: FilterPost, ctx: CtxDep) -> BsonJSONResponse:
    """Validate and store a new filter owned by the user; answer it."""
    caller = _caller(ctx)
    programids = requested_programids(caller, survey_named(body.survey), body.permissions)
    doc = commands.add(
        _env(ctx),
        caller,
        name=body.name,
        survey=body.survey,
        pipeline=body.pipeline,
        programids=programids,
        description=body.description,
    )
    return envelope("successfully created new filter", _public(doc))


@router.get("", summary="List your filters (admins: all)")
def get_filters(ctx: CtxDep, survey: str | None = None) -> BsonJSONResponse:
    """Answer the user's filters by name, without version pipelines (``GET /filters/{id}``)."""
    docs = commands.list_(_env(ctx), _caller(ctx), survey)
    return envelope("retrieved filters successfully", [_public(d) for d in docs])


@router.post("/validate", summary="Check a pipeline without storing it")
def post_validate(body: ValidatePost, ctx: CtxDep) -> BsonJSONResponse:
    """Answer the pipeline as it would be stored, or 400 listing every problem."""
    pipeline = commands.validate(_env(ctx), _caller(ctx), body.pipeline, body.survey)
    return envelope("the pipeline is a valid filter", {"valid": True, "pipeline": pipeline})


@router.post("/test", summary="Run a pipeline over stored alerts (nothing stored)")
def post_test_pipeline(body: PipelineTrialPost, ctx: CtxDep) -> BsonJSONResponse:
    """Answer how many of the selected stored alerts pass, and which (up to ``limit``)."""
    caller = _caller(ctx)
    programids = requested_programids(caller, survey_named(body.survey), body.permissions)
    result = commands_trial.test_pipeline(
        _env(ctx),
        caller,
        body.pipeline,
        survey=body.survey,
        programids=programids,
        chosen=_chosen(body),
    )
    answer = _trial_answer(result, body.limit)
    return envelope(f"{answer['passed']} of {answer['tried']} alerts pass", answer)


@router.get("/{filter_id}", summary="One of your filters, with its versions")
def get_one_filter(filter_id: str, ctx: CtxDep) -> BsonJSONResponse:
    """Answer the filter, each version's pipeline included (as JSON text)."""
    doc = commands.show(_env(ctx), _caller(ctx), filter_id)
    return envelope("retrieved filter successfully", _public(doc))


@router.post("/{filter_id}/versions", summary="Add a version")
def post_version(filter_id: str, body: VersionPost, ctx: CtxDep) -> BsonJSONResponse:
    """Store a new version; with ``set_as_active``, it is the one that runs.

    A version replacing the running pipeline of an active filter passes the
    match-rate check first, as an activation does (BOOM does the same).
    """
    added = commands.update(
        _env(ctx),
        _caller(ctx),
        filter_id,
        body.pipeline,
        changelog=body.changelog,
        make_active=body.set_as_active,
    )
    data = {
        "fid": added.fid,
        "active_fid": added.active_fid,
        "match_rate": _check_answer(added.check),
    }
    return envelope(f"successfully added new version {added.fid} to filter id: {filter_id}", data)


@router.post("/{filter_id}/activate", summary="Activate (after the match-rate check)")
def post_activate(
    filter_id: str, ctx: CtxDep, body: ActivatePost | None = None
) -> BsonJSONResponse:
    """Run a version (default: the active_fid) if it passes few enough of a reference night."""
    body = body or ActivatePost()
    done = commands.activate(
        _env(ctx),
        _caller(ctx),
        filter_id,
        fid=body.fid,
        reference_night=body.reference_night,
        force=body.force,
    )
    data = {
        "id": filter_id,
        "active": True,
        "active_fid": done.fid,
        "match_rate": _check_answer(done.check),
    }
    return envelope(f"filter {done.name} active, version {done.fid}", data)


@router.post("/{filter_id}/deactivate", summary="Deactivate, recording why")
def post_deactivate(
    filter_id: str, ctx: CtxDep, body: DeactivatePost | None = None
) -> BsonJSONResponse:
    """Stop running the filter; its ``disabled_reason`` records ``reason``."""
    body = body or DeactivatePost()
    reason = body.reason or f"deactivated by {ctx.user.name} through the API"
    done = commands.deactivate(_env(ctx), _caller(ctx), filter_id, reason)
    data = {"id": filter_id, "active": False, "disabled_reason": done.reason}
    return envelope(f"filter {done.name} inactive", data)


@router.post("/{filter_id}/test", summary="Run a stored filter over stored alerts")
def post_test_stored(
    filter_id: str, ctx: CtxDep, body: StoredTrialPost | None = None
) -> BsonJSONResponse:
    """Answer how many of the selected stored alerts a version (default: active_fid) passes."""
    body = body or StoredTrialPost()
    result = commands_trial.test_stored(
        _env(ctx), _caller(ctx), filter_id, fid=body.fid, chosen=_chosen(body)
    )
    answer = _trial_answer(result, body.limit)
    return envelope(f"{answer['passed']} of {answer['tried']} alerts pass", answer)
