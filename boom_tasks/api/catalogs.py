"""``GET /catalogs``, ``/catalogs/{name}/indexes`` and ``/catalogs/{name}/sample``.

A "catalog" is any collection the user may read: alerts, their history and
cutouts, and the archival catalogs loaded with ``boom catalogs load``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pymongo.database import Database

from boom_tasks.api.context import CtxDep
from boom_tasks.api.encoding import BsonJSONResponse, envelope
from boom_tasks.api.limits import raw
from boom_tasks.catalogs.meta import get_meta
from boom_tasks.services.mongo import mongo_errors, user_query

#: Most documents ``/sample`` returns (BOOM's bound; boom-client checks it too).
MAX_SAMPLE = 1000
#: Keys of a loaded catalog's ``catalogs_meta`` entry shown in its details.
_META_KEYS = ("status", "rows", "hpx_order", "hpx_field", "ra_column", "dec_column", "id_column")

router = APIRouter(prefix="/catalogs", tags=["Catalogs"])


def _details(database: Database, name: str) -> dict[str, Any]:
    """Return storage statistics (``collStats``), plus how a loaded catalog was loaded."""
    with mongo_errors(f"reading statistics of {name}"):
        stats = dict(database.command("collStats", name))
    stats.pop("$clusterTime", None)
    stats.pop("operationTime", None)
    meta = get_meta(database, name)
    if meta is not None:
        stats["catalog"] = {key: meta[key] for key in _META_KEYS if key in meta}
    return stats


@router.get("", summary="The catalogs you may read")
def get_catalogs(ctx: CtxDep, get_details: bool = False) -> BsonJSONResponse:
    """Return ``[{"name"}]`` by name; with ``get_details``, ``collStats`` under ``details``."""
    names = ctx.catalogs.names()
    if get_details:
        catalogs = [{"name": n, "details": _details(ctx.catalogs.database(n), n)} for n in names]
    else:
        catalogs = [{"name": n} for n in names]
    return envelope("success", catalogs)


@router.get("/{catalog_name}/indexes", summary="A catalog's indexes")
def get_indexes(catalog_name: str, ctx: CtxDep) -> BsonJSONResponse:
    """Return the catalog's indexes as ``listIndexes`` describes them (name, key, ...)."""
    collection = ctx.catalogs.collection(catalog_name)
    with mongo_errors(f"listing the indexes of {catalog_name}"):
        indexes = [dict(index) for index in collection.list_indexes()]
    for index in indexes:
        index["key"] = dict(index["key"])
    return envelope("success", indexes)


@router.get("/{catalog_name}/sample", summary="Random documents of a catalog")
def get_sample(
    catalog_name: str,
    ctx: CtxDep,
    size: Annotated[int, Query(ge=1, le=MAX_SAMPLE)] = 1,
) -> BsonJSONResponse:
    """Return ``size`` documents drawn at random (``$sample``), to see a catalog's schema."""
    collection = ctx.catalogs.collection(catalog_name)
    max_time_ms = ctx.limits.default_max_time_ms
    budget = ctx.limits.budget()
    with user_query(max_time_ms):
        cursor = raw(collection).aggregate([{"$sample": {"size": size}}], maxTimeMS=max_time_ms)
        docs = list(budget.read(cursor))
    return envelope("success", docs)
