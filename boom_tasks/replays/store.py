"""Replay runs in MongoDB (``replays``): one document per run, ``_id`` = the run id.

A run has a kind, its parameters, a state (``queued`` → ``running`` → ``done`` or
``failed``, with the error), progress (alerts done / total) and the counts its
slices returned (passed, published).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from pymongo.database import Database

from boom_tasks.errors import BoomError
from boom_tasks.services.mongo import mongo_errors
from boom_tasks.settings import Settings

#: The kinds of replay, as ``boom replays`` names them.
KINDS = ("filter-backfill", "republish", "reprocess", "reingest")

#: A run's states, in order.
STATES = ("queued", "running", "done", "failed")


class ReplayNotFound(BoomError):
    """No replay run with that id."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_run_id(kind: str) -> str:
    """Return a new run id: kind, UTC time and a random suffix (sortable, unique)."""
    return f"{kind}-{_now().strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


def _runs(db: Database, settings: Settings) -> Any:
    return db[settings.replays.collection]


def create_run(
    db: Database, settings: Settings, kind: str, survey: str, params: dict[str, Any]
) -> str:
    """Record a new queued run; return its id."""
    if kind not in KINDS:
        raise ValueError(f"unknown replay kind {kind!r}; known: {KINDS}")
    run_id = new_run_id(kind)
    doc = {
        "_id": run_id,
        "kind": kind,
        "survey": survey,
        "params": params,
        "state": "queued",
        "progress": {"done": 0, "total": None},
        "counts": {},
        "created_at": _now(),
    }
    with mongo_errors("recording a replay run"):
        _runs(db, settings).insert_one(doc)
    return run_id


def update_run(db: Database, settings: Settings, run_id: str, **fields: Any) -> None:
    """Set fields of a run (``state``, ``progress``, ``counts``, ``error``...)."""
    if "state" in fields:
        fields.setdefault(f"{fields['state']}_at", _now())
    with mongo_errors(f"updating replay {run_id}"):
        _runs(db, settings).update_one({"_id": run_id}, {"$set": fields})


def get_run(db: Database, settings: Settings, run_id: str) -> dict[str, Any]:
    """Return one run.

    Raises
    ------
    ReplayNotFound
        If there is no run ``run_id``.
    """
    with mongo_errors(f"reading replay {run_id}"):
        doc = _runs(db, settings).find_one({"_id": run_id})
    if doc is None:
        raise ReplayNotFound(f"no replay {run_id!r} (see `boom replays list`)")
    return dict(doc)


def list_runs(db: Database, settings: Settings, limit: int = 20) -> list[dict[str, Any]]:
    """Return the newest ``limit`` runs, newest first."""
    with mongo_errors("listing replays"):
        return list(_runs(db, settings).find().sort("created_at", -1).limit(limit))
