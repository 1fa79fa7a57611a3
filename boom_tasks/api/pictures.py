"""``GET /surveys/{survey}/alerts/{candid}/picture``: one alert's picture, as PNG.

The three stamps and the object's light curve, as ``boom-print --stamps`` writes
them (:mod:`boom_tasks.pictures`). Permissions are those of the alert and cutout
routes: the user must be able to read the survey's alerts, cutouts and aux
collections (404 otherwise, as for a catalog one may not read). An alias in
another survey is drawn only if the user may read that survey's aux collection.
The filters listed are those the user may see: every filter for an admin, the
user's own otherwise (filter passes are the broker's bookkeeping).

Pictures are cached per process (:class:`~boom_tasks.pictures.cache.PictureCache`)
by survey, candid and what the reader may see, and sent with ``Cache-Control:
private`` and an ``ETag``, so a browser asks again only after ``max-age`` and
then gets a 304 if nothing changed.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from boom_tasks.api.context import Ctx, CtxDep
from boom_tasks.api.errors import NotFound
from boom_tasks.api.models import INT64_MAX, INT64_MIN
from boom_tasks.filter.store import FILTERS
from boom_tasks.pictures import render_png
from boom_tasks.pictures.cache import DEFAULT_TTL_S, PictureCache
from boom_tasks.pictures.documents import AlertNotFound, read_view
from boom_tasks.services.mongo import mongo_errors
from boom_tasks.surveys import SURVEYS
from boom_tasks.surveys.base import Survey

#: Media type of the answer.
PNG = "image/png"

router = APIRouter(prefix="/surveys", tags=["Surveys"])


def picture_cache(request: Request) -> PictureCache:
    """Return this process's picture cache (created with the first picture asked for)."""
    state = request.app.state
    if getattr(state, "pictures", None) is None:
        state.pictures = PictureCache()
    cache: PictureCache = state.pictures
    return cache


def _survey(name: str) -> Survey:
    survey = SURVEYS.get(name.upper())
    if survey is None:
        raise NotFound(f"unknown survey {name!r}; known: {', '.join(sorted(SURVEYS))}")
    return survey


def _readable(ctx: Ctx, name: str) -> bool:
    try:
        ctx.catalogs.database(name)
    except NotFound:
        return False
    return True


def _own_filters(ctx: Ctx) -> dict[str, object]:
    """Return the filter-pass query terms of the filters ``ctx.user`` may see."""
    if ctx.user.admin:
        return {}
    with mongo_errors("reading your filters"):
        ids = [
            d["_id"] for d in ctx.state.db()[FILTERS].find({"user_id": ctx.user.name}, {"_id": 1})
        ]
    return {"filter_id": {"$in": ids}}


def _etag(png: bytes) -> str:
    return '"' + hashlib.sha256(png).hexdigest()[:32] + '"'


@router.get(
    "/{survey}/alerts/{candid}/picture",
    summary="Picture of one alert: stamps and light curve (PNG)",
    response_class=Response,
    responses={200: {"content": {PNG: {}}, "description": "the picture"}},
)
def get_picture(
    survey: str,
    candid: Annotated[int, Path(ge=INT64_MIN, le=INT64_MAX)],
    ctx: CtxDep,
    request: Request,
) -> Response:
    """Return the alert's picture (``image/png``); 404 if absent or not readable."""
    registered = _survey(survey)
    # The alert, cutout and history routes' rule: each collection must be readable.
    db = ctx.catalogs.database(registered.alerts)
    for name in (registered.cutouts, registered.aux):
        ctx.catalogs.database(name)
    aliases = tuple(
        s.name for s in SURVEYS.values() if s is not registered and _readable(ctx, s.aux)
    )
    viewer = "*" if ctx.user.admin else ctx.user.name

    def draw() -> bytes:
        try:
            view = read_view(
                db, registered, candid, passes=_own_filters(ctx), alias_surveys=aliases
            )
        except AlertNotFound as e:
            raise NotFound(str(e)) from None
        return render_png(view)

    png = picture_cache(request).get_or_draw((registered.name, candid, viewer, aliases), draw)
    etag = _etag(png)
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={int(DEFAULT_TTL_S)}"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(png, media_type=PNG, headers=headers)
