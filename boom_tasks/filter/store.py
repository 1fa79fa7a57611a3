"""The ``filters`` collection: users' filters, versioned, in BOOM's and Kowalski's format.

A filter document::

    {_id, name, description, survey, user_id, permissions: {"ZTF": [programids]},
     active, active_fid, fv: [{fid, pipeline (JSON text), changelog, created_at}],
     created_at, updated_at,
     overruns, disabled_reason, last_error}       # written by the broker

Every pipeline is validated when saved (:mod:`boom_tasks.filter.validate`); the
active version is the one that runs. Each change also bumps a counter in Valkey,
which filter workers read once per batch to know when to reload their filters.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.database import Database

from boom_tasks.filter.errors import FilterNotFound
from boom_tasks.filter.validate import parse_pipeline, uses_aux, validate_pipeline
from boom_tasks.services.mongo import mongo_errors

#: Collection of the filters of every survey.
FILTERS = "filters"


@dataclass(frozen=True)
class ActiveFilter:
    """A filter as the filter stage runs it: its active version, parsed once."""

    id: str
    name: str
    fid: str
    programids: list[int]
    pipeline: list[dict[str, Any]]
    uses_aux: bool


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _version(pipeline: Any, changelog: str, aux_collection: str) -> dict[str, Any]:
    parsed = validate_pipeline(parse_pipeline(pipeline), aux_collection=aux_collection)
    return {
        "fid": uuid.uuid4().hex[:12],
        "pipeline": json.dumps(parsed),
        "changelog": changelog,
        "created_at": _now(),
    }


def add_filter(
    db: Database,
    *,
    name: str,
    survey: str,
    pipeline: Any,
    programids: Sequence[int],
    user_id: str = "admin",
    description: str = "",
    aux_collection: str,
) -> str:
    """Validate and store a new (inactive) filter; return its id.

    Raises
    ------
    FilterInvalid
        With every problem of the pipeline.
    """
    version = _version(pipeline, "first version", aux_collection)
    now = _now()
    doc = {
        "_id": uuid.uuid4().hex,
        "name": name,
        "description": description,
        "survey": survey,
        "user_id": user_id,
        "permissions": {survey: sorted({int(p) for p in programids})},
        "active": False,
        "active_fid": version["fid"],
        "fv": [version],
        "created_at": now,
        "updated_at": now,
        "overruns": 0,
    }
    with mongo_errors("storing a filter"):
        db[FILTERS].insert_one(doc)
    return str(doc["_id"])


def get_filter(db: Database, filter_id: str) -> dict[str, Any]:
    """Return a filter document (raises FilterNotFound)."""
    with mongo_errors("reading a filter"):
        doc = db[FILTERS].find_one({"_id": filter_id})
    if doc is None:
        raise FilterNotFound(f"filter with id {filter_id} does not exist")
    return doc


def add_version(
    db: Database,
    filter_id: str,
    pipeline: Any,
    changelog: str,
    aux_collection: str,
    *,
    make_active: bool = True,
) -> str:
    """Validate and append a new version; return its fid.

    With ``make_active`` (the default) it becomes the active version; without,
    it is only stored, for a later activation (BOOM's ``set_as_active: false``).
    """
    get_filter(db, filter_id)
    version = _version(pipeline, changelog, aux_collection)
    update: dict[str, Any] = {"updated_at": _now()}
    if make_active:
        update |= {"active_fid": version["fid"], "overruns": 0}
    with mongo_errors("updating a filter"):
        db[FILTERS].update_one({"_id": filter_id}, {"$push": {"fv": version}, "$set": update})
    return str(version["fid"])


def set_active(
    db: Database, filter_id: str, active: bool, *, fid: str | None = None, reason: str | None = None
) -> None:
    """Activate (optionally a given version) or deactivate a filter, with the reason."""
    doc = get_filter(db, filter_id)
    update: dict[str, Any] = {"active": active, "updated_at": _now()}
    if fid is not None:
        if fid not in {v["fid"] for v in doc["fv"]}:
            raise FilterNotFound(f"filter {filter_id} has no version {fid!r}")
        update["active_fid"] = fid
    if active:
        update |= {"overruns": 0, "disabled_reason": None}
    elif reason:
        update["disabled_reason"] = reason
    with mongo_errors("updating a filter"):
        db[FILTERS].update_one({"_id": filter_id}, {"$set": update})


def stored_programids(doc: Mapping[str, Any]) -> list[int]:
    """Return the programids a stored filter runs on: its permissions for its survey."""
    return list(doc.get("permissions", {}).get(doc["survey"], []))


def version_pipeline(doc: dict[str, Any], fid: str | None = None) -> tuple[str, list[dict]]:
    """Return ``(fid, pipeline)`` of a filter's version (its active one by default)."""
    fid = fid or doc["active_fid"]
    for version in doc["fv"]:
        if version["fid"] == fid:
            return fid, json.loads(version["pipeline"])
    raise FilterNotFound(f"filter {doc['_id']} has no version {fid!r}")


def active_filter(doc: dict[str, Any], fid: str | None = None) -> ActiveFilter:
    """Return a stored filter's version ``fid`` (its active one by default), parsed to run.

    Raises
    ------
    FilterNotFound
        If the filter has no such version.
    """
    fid, pipeline = version_pipeline(doc, fid)
    return ActiveFilter(
        id=str(doc["_id"]),
        name=doc["name"],
        fid=fid,
        programids=stored_programids(doc),
        pipeline=pipeline,
        uses_aux=uses_aux(pipeline),
    )


def load_active(db: Database, survey: str) -> list[ActiveFilter]:
    """Return the active filters of ``survey``, their active version parsed."""
    with mongo_errors("reading active filters"):
        docs = list(db[FILTERS].find({"survey": survey, "active": True}).sort("_id", 1))
    return [active_filter(doc) for doc in docs]


def list_filters(
    db: Database, survey: str | None = None, *, user_id: str | None = None
) -> list[dict[str, Any]]:
    """Return every filter (of ``user_id`` when given), without version bodies, by name."""
    query: dict[str, Any] = {"survey": survey} if survey else {}
    if user_id is not None:
        query["user_id"] = user_id
    with mongo_errors("listing filters"):
        return list(db[FILTERS].find(query, {"fv.pipeline": 0}).sort("name", 1))
