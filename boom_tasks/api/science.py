"""``/science/...``: science actors' results and figures (docs/science-actors.md).

Reading them needs read access to the survey's alerts collection, as the alerts
themselves: a user who may not read ``ZTF_alerts`` gets the same 404 as for a
result that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from boom_tasks.api.context import Ctx, CtxDep
from boom_tasks.api.encoding import BsonJSONResponse, envelope
from boom_tasks.api.errors import NotFound
from boom_tasks.api.models import INT64_MAX, INT64_MIN
from boom_tasks.science.store import figure_id, figures_collection
from boom_tasks.services.mongo import mongo_errors
from boom_tasks.surveys import SURVEYS, Survey

router = APIRouter(prefix="/science", tags=["Science"])

#: A path's candid, bounded as BSON's int64.
Candid = Annotated[int, Path(ge=INT64_MIN, le=INT64_MAX)]
#: Actor and figure names (as the actors declare them).
Name = Annotated[str, Path(pattern=r"^[A-Za-z0-9_]{1,64}$")]


def _survey(ctx: Ctx, name: str) -> tuple[Survey, Any]:
    """Return the survey and the database of its alerts, if the user may read them."""
    survey = SURVEYS.get(name.upper())
    if survey is None:
        raise NotFound(f"no survey {name!r}")
    return survey, ctx.catalogs.database(survey.alerts)


@router.get(
    "/{survey}/figures/{candid}/{actor}/{figure}.png",
    summary="A science actor's figure of one alert (PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def get_figure(survey: str, candid: Candid, actor: Name, figure: Name, ctx: CtxDep) -> Response:
    """Return the PNG an actor drew for an alert (the link in its result and messages)."""
    registered, db = _survey(ctx, survey)
    with mongo_errors(f"reading figure {figure} of {candid}"):
        doc = db[figures_collection(registered)].find_one({"_id": figure_id(candid, actor, figure)})
    if doc is None:
        raise NotFound(f"no figure {figure!r} of {actor} for {registered.name} candid {candid}")
    return Response(content=bytes(doc["png"]), media_type="image/png")


@router.get("/{survey}/results/{candid}", summary="Every science actor's result on one alert")
def get_results(survey: str, candid: Candid, ctx: CtxDep) -> BsonJSONResponse:
    """Return ``{"candid", "science", "science_errors"}`` of one alert."""
    registered, db = _survey(ctx, survey)
    with mongo_errors(f"reading the science results of {candid}"):
        doc = db[registered.alerts].find_one({"_id": candid}, {"science": 1, "science_errors": 1})
    if doc is None:
        raise NotFound(f"no {registered.name} alert {candid}")
    data = {
        "candid": candid,
        "science": doc.get("science", {}),
        "science_errors": doc.get("science_errors", {}),
    }
    return envelope(f"science results of candid {candid}", data)
