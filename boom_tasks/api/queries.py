"""``POST /queries/find``, ``count``, ``estimated_count`` and ``pipeline`` on a readable catalog.

Each answers ``{"message", "data"}``: a list of documents, or a number. The
bounds of :mod:`boom_tasks.api.limits` apply to every one. A find whose filter
is boom-client's ``near_search`` (a ``$nearSphere`` on the position) is answered
as a one-position cone search: nearest first, each with ``distance_arcsec``.
"""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter

from boom_tasks.api.cone import search_cones
from boom_tasks.api.context import CtxDep
from boom_tasks.api.encoding import BsonJSONResponse, envelope, from_extended_json
from boom_tasks.api.find import prepare_find, run_find
from boom_tasks.api.limits import check_pipeline, check_read_only, raw
from boom_tasks.api.models import CountQuery, EstimatedCountQuery, FindQuery, PipelineQuery
from boom_tasks.api.spatial import parse_near
from boom_tasks.services.mongo import user_query

router = APIRouter(prefix="/queries", tags=["Queries"])


@router.post("/find", summary="MongoDB find on a catalog")
def post_find(body: FindQuery, ctx: CtxDep) -> BsonJSONResponse:
    """Return the matching documents (``$nearSphere`` ones nearest first)."""
    options = prepare_find(body, ctx.limits)
    near = parse_near(options.filter)
    if near is not None:
        cone, rest = near
        options = replace(options, filter=rest)
        docs = search_cones(ctx, body.catalog_name, [cone], options)[0]
    else:
        collection = ctx.catalogs.collection(body.catalog_name)
        docs = run_find(collection, options, ctx.limits.budget())
    return envelope(f"{len(docs)} documents found in {body.catalog_name}", docs)


@router.post("/count", summary="Exact count of matching documents")
def post_count(body: CountQuery, ctx: CtxDep) -> BsonJSONResponse:
    """Return the number of documents matching ``filter``."""
    check_read_only(body.filter, "filter")
    max_time_ms = ctx.limits.max_time_ms(body.max_time_ms)
    collection = ctx.catalogs.collection(body.catalog_name)
    with user_query(max_time_ms):
        count = collection.count_documents(from_extended_json(body.filter), maxTimeMS=max_time_ms)
    return envelope(f"count on {body.catalog_name} completed", count)


@router.post("/estimated_count", summary="Document count from the catalog's metadata")
def post_estimated_count(body: EstimatedCountQuery, ctx: CtxDep) -> BsonJSONResponse:
    """Return the collection's size as its metadata records it (no scan)."""
    max_time_ms = ctx.limits.max_time_ms(body.max_time_ms)
    collection = ctx.catalogs.collection(body.catalog_name)
    with user_query(max_time_ms):
        count = collection.estimated_document_count(maxTimeMS=max_time_ms)
    return envelope(f"estimated count on {body.catalog_name} completed", count)


@router.post("/pipeline", summary="Aggregation pipeline on a catalog (read-only)")
def post_pipeline(body: PipelineQuery, ctx: CtxDep) -> BsonJSONResponse:
    """Return the pipeline's output documents."""
    check_pipeline(body.pipeline, ctx.catalogs, body.catalog_name)
    max_time_ms = ctx.limits.max_time_ms(body.max_time_ms)
    collection = ctx.catalogs.collection(body.catalog_name)
    budget = ctx.limits.budget()
    with user_query(max_time_ms):
        cursor = raw(collection).aggregate(from_extended_json(body.pipeline), maxTimeMS=max_time_ms)
        docs = list(budget.read(cursor))
    return envelope(f"pipeline on {body.catalog_name} completed", docs)
