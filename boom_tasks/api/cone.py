"""``POST /queries/cone_search``: everything within a radius of many positions, at once.

Step 1: find the ids and exact distances of the documents in every cone
        (:func:`boom_tasks.api.spatial.cone_hits`: HEALPix where the collection
        has pixels, one query for all positions).
Step 2: fetch those documents with the user's filter and projection, a few
        ``$in`` queries on ``_id`` for the whole request.
Step 3: per position, order them (nearest first, or by the user's ``sort``),
        apply ``skip``/``limit`` per position as BOOM does, and add each one's
        ``distance_arcsec``.

Answers are ``{name: [documents]}``, under the names the positions were sent
with (boom-client numbers unnamed ones "0", "1", ...).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from fastapi import APIRouter
from pymongo.collection import Collection

from boom_tasks.api.context import Ctx, CtxDep
from boom_tasks.api.encoding import BsonJSONResponse, envelope
from boom_tasks.api.errors import BadRequest
from boom_tasks.api.find import FindOptions, keep_id, prepare_find
from boom_tasks.api.limits import AnswerBudget, raw
from boom_tasks.api.models import ConeSearchQuery
from boom_tasks.api.ordering import sort_documents
from boom_tasks.api.spatial import MAX_RADIUS_ARCSEC, Cone, Hits, cone_hits
from boom_tasks.services.mongo import find_in_chunks, user_query
from boom_tasks.sky.healpix import cover_cells

router = APIRouter(tags=["Queries"])


def _key(value: Any) -> Hashable:
    """Return a dict key for an ``_id`` (compound ids are dicts, which do not hash)."""
    return value if isinstance(value, Hashable) else repr(value)


def _fetch(
    collection: Collection, ids: list[Any], options: FindOptions, budget: AnswerBudget
) -> tuple[dict[Hashable, dict[str, Any]], bool]:
    """Return the documents among ``ids`` passing the user's filter, keyed by ``_id``."""
    projection, strip_id = keep_id(options.projection)
    docs: dict[Hashable, dict[str, Any]] = {}
    chunks = find_in_chunks(
        raw(collection),
        "_id",
        ids,
        projection,
        query=options.filter or None,
        max_time_ms=options.max_time_ms,
    )
    with user_query(options.max_time_ms):
        for cursor in chunks:
            docs.update((_key(d["_id"]), d) for d in budget.read(cursor))
    return docs, strip_id


def _per_cone(
    hits: list[tuple[Any, float]], docs: dict[Hashable, dict[str, Any]], options: FindOptions
) -> list[dict[str, Any]]:
    found = [
        {**docs[_key(i)], "distance_arcsec": distance} for i, distance in hits if _key(i) in docs
    ]
    if options.sort:
        found = sort_documents(found, options.sort)
    end = options.skip + options.limit if options.limit else None
    return found[options.skip : end]


def search_cones(
    ctx: Ctx, catalog_name: str, cones: Sequence[Cone], options: FindOptions
) -> list[list[dict[str, Any]]]:
    """Return, per cone, the documents of ``catalog_name`` inside it (see the module steps).

    Raises
    ------
    NotFound
        If the user may not read the catalog.
    BadRequest, QueryRejected, QueryTimeout
        For a refused filter or an answer over the size limit.
    """
    collection = ctx.catalogs.collection(catalog_name)
    pixel_index = ctx.catalogs.pixel_index(catalog_name)
    if pixel_index is not None:
        _check_cover(cones, pixel_index[1], ctx.limits.max_cone_cells)
    hits: Hits = cone_hits(collection, cones, pixel_index, options.max_time_ms)
    ids = list({_key(i): i for cone in hits for i, _ in cone}.values())
    docs, strip_id = _fetch(collection, ids, options, ctx.limits.budget())
    answers = [_per_cone(cone, docs, options) for cone in hits]
    if strip_id:
        answers = [[{k: v for k, v in d.items() if k != "_id"} for d in a] for a in answers]
    return answers


def _check_cover(cones: Sequence[Cone], order: int, max_cells: int) -> None:
    """Refuse cones whose HEALPix cover would hold the database for minutes (400)."""
    cells = cover_cells([c.radius_arcsec for c in cones], order)
    if cells > max_cells:
        raise BadRequest(
            f"these cones cover about {cells:,.0f} HEALPix cells of the catalog's index, "
            f"more than the {max_cells:,} one request may: use smaller radii or fewer positions"
        )


def _cones(body: ConeSearchQuery, max_positions: int) -> list[Cone]:
    positions = body.object_coordinates
    if len(positions) > max_positions:
        raise BadRequest(
            f"{len(positions)} positions in one cone search; at most {max_positions} per request"
        )
    radius = body.radius_arcsec()
    if radius > MAX_RADIUS_ARCSEC:
        raise BadRequest("the radius may be at most 180 degrees")
    for name, (ra, dec) in positions.items():
        if not (0.0 <= ra <= 360.0 and -90.0 <= dec <= 90.0):
            raise BadRequest(
                f"position {name!r}: ra must be in [0, 360] and dec in [-90, 90] degrees"
            )
    return [Cone(ra % 360.0, dec, radius) for ra, dec in positions.values()]


@router.post("/queries/cone_search", summary="Documents within a radius of many positions")
@router.post("/queries/cone-search", include_in_schema=False)
def post_cone_search(body: ConeSearchQuery, ctx: CtxDep) -> BsonJSONResponse:
    """Return ``{name: [documents nearest first, each with distance_arcsec]}``."""
    cones = _cones(body, ctx.limits.max_cone_positions)
    options = prepare_find(body, ctx.limits)
    answers = search_cones(ctx, body.catalog_name, cones, options)
    data = dict(zip(body.object_coordinates, answers, strict=True))
    return envelope(f"cone search on {body.catalog_name} completed", data)
