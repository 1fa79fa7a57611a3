"""The ``catalogs_meta`` collection: one document per loaded catalog.

It records how the catalog was loaded (source file, coordinate and id columns,
HEALPix order and field), how far the load got (``rows_loaded``, the resume
checkpoint) and its status, so a cone search knows a catalog's pixel order and
``boom catalogs list`` can describe every catalog.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pymongo.database import Database

from boom_tasks.catalogs.errors import CatalogError
from boom_tasks.services.mongo import mongo_errors

#: Collection holding one document per catalog, ``_id`` = catalog name.
META_COLLECTION = "catalogs_meta"

#: Keys of a meta document that must match for a load to resume an earlier one.
IDENTITY_KEYS = ("source", "ra_column", "dec_column", "id_column", "hpx_field", "hpx_order")


@dataclass(frozen=True)
class CatalogInfo:
    """What ``boom catalogs list`` shows of one catalog."""

    name: str
    rows: int
    status: str
    hpx_order: int
    source: str
    indexes: list[str]
    #: Why the load stopped, when ``status`` is ``failed``.
    error: str | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def get_meta(db: Database, name: str) -> dict[str, Any] | None:
    """Return the meta document of catalog ``name``, or None if it was never loaded."""
    with mongo_errors(f"reading the metadata of catalog {name}"):
        return db[META_COLLECTION].find_one({"_id": name})


def describe(meta: dict[str, Any]) -> str:
    """Return how a catalog was loaded, in words, for error messages."""
    source = meta["source"]
    return (
        f"{source['path']} ({source['format']}) with ra={meta['ra_column']!r}, "
        f"dec={meta['dec_column']!r}, id={meta['id_column']!r}, HEALPix order {meta['hpx_order']}"
    )


def refuse_foreign(db: Database, name: str) -> None:
    """Refuse to touch collection ``name`` if it exists and is not a loaded catalog.

    Such a collection belongs to someone else (the broker, another tool): a load
    must neither append to it nor, with ``--replace``, drop it. Even an empty one
    counts, since its indexes or validation may matter to its owner.

    Raises
    ------
    CatalogError
        If ``name`` exists in ``db`` and ``catalogs_meta`` has no entry for it.
    """
    if get_meta(db, name) is not None:
        return
    with mongo_errors(f"checking collection {name}"):
        exists = bool(db.list_collection_names(filter={"name": name}))
    if exists:
        raise CatalogError(
            f"collection {name!r} exists and is not a catalog loaded by boom; "
            "choose another name (--replace never drops it)"
        )


def resume_point(db: Database, name: str, plan: dict[str, Any]) -> int:
    """Return the number of rows already loaded by an identical earlier load.

    Parameters
    ----------
    db
        The database.
    name
        The catalog (collection) name.
    plan
        The meta document this load would write (:data:`IDENTITY_KEYS` compared).

    The caller has refused a collection that is not a catalog
    (:func:`refuse_foreign`) before this.

    Raises
    ------
    CatalogError
        If the catalog was loaded from another file or with other options.
    """
    meta = get_meta(db, name)
    if meta is None:  # (a collection that is not a catalog was refused before)
        return 0
    if any(meta.get(k) != plan[k] for k in IDENTITY_KEYS):
        raise CatalogError(
            f"catalog {name!r} was loaded from {describe(meta)}, not from {describe(plan)}; "
            "pass --replace to reload it"
        )
    return int(meta.get("rows_loaded", 0))


def start(db: Database, name: str, plan: dict[str, Any], rows_loaded: int) -> None:
    """Record that a load of ``name`` starts (or resumes) at ``rows_loaded``."""
    now = _now()
    with mongo_errors(f"writing the metadata of catalog {name}"):
        db[META_COLLECTION].update_one(
            {"_id": name},
            {
                "$set": {
                    **plan,
                    "status": "loading",
                    "rows_loaded": rows_loaded,
                    "updated_at": now,
                },
                "$unset": {"error": ""},
                "$setOnInsert": {"created_at": now},
            },
            upsert=True,
        )


def checkpoint(db: Database, name: str, rows_loaded: int) -> None:
    """Record that the first ``rows_loaded`` rows of the file are in the collection."""
    with mongo_errors(f"writing the metadata of catalog {name}"):
        db[META_COLLECTION].update_one(
            {"_id": name}, {"$set": {"rows_loaded": rows_loaded, "updated_at": _now()}}
        )


def finish(db: Database, name: str, *, complete: bool, rows: int) -> None:
    """Record the end of a load: ``complete`` if every row of the file was loaded."""
    with mongo_errors(f"writing the metadata of catalog {name}"):
        db[META_COLLECTION].update_one(
            {"_id": name},
            {
                "$set": {
                    "status": "complete" if complete else "partial",
                    "rows": rows,
                    "updated_at": _now(),
                }
            },
        )


def fail(db: Database, name: str, reason: str) -> None:
    """Record that the load of ``name`` stopped on an error: status ``failed``, with why.

    Its checkpoint is kept, so the same load resumes there once the cause is fixed
    elsewhere (a catalog is only matched when ``complete``).
    """
    with mongo_errors(f"writing the metadata of catalog {name}"):
        db[META_COLLECTION].update_one(
            {"_id": name},
            {"$set": {"status": "failed", "error": reason, "updated_at": _now()}},
        )


def forget(db: Database, name: str) -> None:
    """Drop catalog ``name`` and its meta document (``--replace``)."""
    with mongo_errors(f"dropping catalog {name}"):
        db.drop_collection(name)
        db[META_COLLECTION].delete_one({"_id": name})


def catalog_order(db: Database, name: str) -> int:
    """Return the HEALPix order of catalog ``name``'s pixel field.

    Raises
    ------
    CatalogError
        If the catalog was never loaded.
    """
    meta = get_meta(db, name)
    if meta is None:
        raise CatalogError(f"no catalog {name!r}; load it with: boom catalogs load {name} FILE")
    return int(meta["hpx_order"])


def list_catalogs(db: Database) -> list[CatalogInfo]:
    """Return every loaded catalog, by name, with its row count and indexes."""
    with mongo_errors("listing catalogs"):
        infos = []
        for meta in db[META_COLLECTION].find().sort("_id", 1):
            coll = db[meta["_id"]]
            infos.append(
                CatalogInfo(
                    name=meta["_id"],
                    rows=coll.estimated_document_count(),
                    status=meta.get("status", "?"),
                    hpx_order=int(meta.get("hpx_order", -1)),
                    source=meta["source"]["path"],
                    indexes=sorted(coll.index_information()),
                    error=meta.get("error"),
                )
            )
    return infos
