"""``GET`` and ``POST /surveys/{survey}/cutouts``: an alert's three image stamps.

One alert is named by its ``candid``, or by ``objectId`` and ``which`` of its
alerts (``brightest`` by default, as BOOM; optionally in one ``band``). The
answer holds ``candid`` and ``cutoutScience``, ``cutoutTemplate``,
``cutoutDifference`` in base64 (gzipped FITS for ZTF), which boom-client decodes.
The batch form takes ``{"candids": [...]}`` and answers ``{"cutouts": [...],
"missing": [...]}``. Reading them needs read access to the survey's alerts and
cutouts collections.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from boom_tasks.api.context import Ctx, CtxDep
from boom_tasks.api.encoding import BsonJSONResponse, envelope
from boom_tasks.api.errors import BadRequest, NotFound
from boom_tasks.api.models import INT64_MAX, INT64_MIN, Int64
from boom_tasks.services.mongo import mongo_errors
from boom_tasks.surveys import SURVEYS

#: The three stamps of an alert, as stored and as answered.
CUTOUT_FIELDS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
#: Most candids per batch request (BOOM's bound; boom-client splits larger batches).
MAX_BATCH_CUTOUTS = 100
#: Sort picking the alert of an object for each ``which``: magnitudes grow fainter.
WHICH_SORT = {
    "first": ("candidate.jd", 1),
    "last": ("candidate.jd", -1),
    "brightest": ("candidate.magpsf", 1),
    "faintest": ("candidate.magpsf", -1),
}

router = APIRouter(prefix="/surveys", tags=["Surveys"])


class BatchCutoutQuery(BaseModel):
    """Body of the batch form."""

    model_config = ConfigDict(extra="forbid")

    candids: list[Int64] = Field(min_length=1, max_length=MAX_BATCH_CUTOUTS)


def _band_filter(survey: str, band: str) -> dict[str, Any]:
    # A survey whose alerts carry a filter id instead of a band name says which.
    registered = SURVEYS.get(survey)
    band_field = registered.band_field if registered else None
    field, ids = band_field or ("candidate.band", {})
    if not ids:
        return {field: band}
    if band not in ids:
        raise BadRequest(f"unknown {survey} band {band!r}; known: {', '.join(ids)}")
    return {field: ids[band]}


def _encode(doc: dict[str, Any]) -> dict[str, Any]:
    """Return a cutouts document as answered: candid and the stamps in base64."""
    out: dict[str, Any] = {"candid": doc["_id"]}
    for field in CUTOUT_FIELDS:
        stamp = doc.get(field)
        out[field] = base64.b64encode(stamp).decode() if isinstance(stamp, bytes) else None
    return out


def _pick_candid(ctx: Ctx, survey: str, object_id: str, which: str, band: str | None) -> int:
    query: dict[str, Any] = {"objectId": object_id}
    if band:
        query.update(_band_filter(survey, band))
    alerts = ctx.catalogs.collection(f"{survey}_alerts")
    with mongo_errors(f"finding the alerts of {object_id}"):
        alert = alerts.find_one(query, {"_id": 1}, sort=[WHICH_SORT[which]])
    if alert is None:
        in_band = f" in band {band}" if band else ""
        raise NotFound(f"no {survey} alert of object {object_id!r}{in_band}")
    return int(alert["_id"])


@router.get("/{survey}/cutouts", summary="Cutouts of one alert, by candid or objectId")
def get_cutouts(
    survey: str,
    ctx: CtxDep,
    candid: Annotated[int | None, Query(ge=INT64_MIN, le=INT64_MAX)] = None,
    object_id: Annotated[str | None, Query(alias="objectId")] = None,
    which: Literal["first", "last", "brightest", "faintest"] = "brightest",
    band: str | None = None,
) -> BsonJSONResponse:
    """Return ``{"candid", "cutoutScience", "cutoutTemplate", "cutoutDifference"}``."""
    survey = survey.upper()
    if (candid is None) == (object_id is None):
        raise BadRequest("give exactly one of candid or objectId")
    cutouts = ctx.catalogs.collection(f"{survey}_alerts_cutouts")
    if candid is None:
        assert object_id is not None
        candid = _pick_candid(ctx, survey, object_id, which, band)
    with mongo_errors(f"reading the cutouts of {candid}"):
        doc = cutouts.find_one({"_id": candid})
    if doc is None:
        raise NotFound(f"no cutouts for {survey} candid {candid}")
    return envelope(f"cutouts found for candid {candid}", _encode(doc))


@router.post("/{survey}/cutouts", summary="Cutouts of up to 100 alerts")
def post_cutouts(survey: str, body: BatchCutoutQuery, ctx: CtxDep) -> BsonJSONResponse:
    """Return ``{"cutouts": [{candid, jd, stamps}], "missing": [candids]}`` in request order."""
    survey = survey.upper()
    alerts = ctx.catalogs.collection(f"{survey}_alerts")
    cutouts = ctx.catalogs.collection(f"{survey}_alerts_cutouts")
    wanted = list(dict.fromkeys(body.candids))
    with mongo_errors("reading cutouts"):
        jds = {
            a["_id"]: a["candidate"]["jd"]
            for a in alerts.find({"_id": {"$in": wanted}}, {"candidate.jd": 1})
        }
        stamps = {d["_id"]: d for d in cutouts.find({"_id": {"$in": wanted}})}
    found = [{**_encode(stamps[c]), "jd": jds.get(c)} for c in wanted if c in stamps]
    missing = [c for c in wanted if c not in stamps]
    data = {"cutouts": found, "missing": missing}
    return envelope(f"cutouts retrieved for {len(wanted)} candids", data)
