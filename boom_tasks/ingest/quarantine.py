"""Quarantine: packets that cannot be ingested, kept with their bytes and the reason.

Nothing is lost: an operator can read the reason, fix the cause and replay the
raw bytes. The ``_id`` is the packet's SHA-256, so a replayed night quarantines
each bad packet once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from pymongo import UpdateOne
from pymongo.database import Database

from boom_tasks.services.mongo import mongo_errors
from boom_tasks.surveys import Survey


@dataclass(frozen=True)
class Rejected:
    """A packet that failed to ingest, and why."""

    packet: bytes
    reason: str

    @property
    def digest(self) -> str:
        """SHA-256 of the packet, its quarantine ``_id``."""
        return hashlib.sha256(self.packet).hexdigest()


def quarantine(
    db: Database, survey: Survey, rejected: list[Rejected], batch_key: str, now: dt.datetime
) -> None:
    """Store rejected packets in the survey's quarantine collection (idempotent)."""
    if not rejected:
        return
    ops = [
        UpdateOne(
            {"_id": r.digest},
            {
                "$setOnInsert": {
                    "survey": survey.name,
                    "reason": r.reason,
                    "packet": r.packet,
                    "size": len(r.packet),
                    "batch_key": batch_key,
                    "quarantined_at": now,
                }
            },
            upsert=True,
        )
        for r in rejected
    ]
    with mongo_errors(f"quarantining {survey.name} packets"):
        db[survey.quarantine].bulk_write(ops, ordered=False)
