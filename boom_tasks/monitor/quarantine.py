"""Quarantined packets: how many, and the latest ones with their reasons."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database

from boom_tasks.services.mongo import mongo_errors
from boom_tasks.surveys import Survey


@dataclass(frozen=True)
class Quarantined:
    """One rejected packet, as the dashboard lists it (never its bytes)."""

    id: str
    reason: str
    batch: str | None
    size: int | None
    at: dt.datetime | None


def recent_quarantine(db: Database, survey: Survey, limit: int) -> tuple[int, list[Quarantined]]:
    """Return how many packets are quarantined, and the ``limit`` latest, newest first."""
    with mongo_errors(f"reading {survey.name} quarantine"):
        coll = db[survey.quarantine]
        total = coll.estimated_document_count()
        projection: dict[str, Any] = {"reason": 1, "batch_key": 1, "size": 1, "quarantined_at": 1}
        docs = coll.find({}, projection).sort("quarantined_at", DESCENDING).limit(limit)
        latest = [
            Quarantined(
                str(d["_id"]),
                d.get("reason", "?"),
                d.get("batch_key"),
                d.get("size"),
                d.get("quarantined_at"),
            )
            for d in docs
        ]
    return total, latest
