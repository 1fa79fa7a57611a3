"""The ``science_actors`` collection: each actor's health per survey, as filters keep theirs.

One document per ``<survey>:<name>``::

    {_id, survey, name, version, disabled, disabled_reason, failures (in a row),
     batches, failed_batches, alerts, results, seconds, last_error: {message, at}}

A batch the actor fails (an exception, over its time budget, a malformed result)
adds one to ``failures``; a good batch sets it back to 0; at ``max_failures`` the
actor is disabled with the reason, and stays so until ``boom science enable``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database

from boom_tasks.science.base import ScienceActor
from boom_tasks.services.mongo import mongo_errors

log = logging.getLogger(__name__)

#: Collection of every survey's science actors' health.
SCIENCE_ACTORS = "science_actors"


def health_id(survey: str, name: str) -> str:
    """Return the ``_id`` of an actor's health document."""
    return f"{survey}:{name}"


def disabled(db: Database, survey: str, names: Sequence[str]) -> dict[str, str]:
    """Return ``{name: reason}`` of the actors among ``names`` disabled on ``survey``."""
    ids = [health_id(survey, n) for n in names]
    with mongo_errors("reading science actors' health"):
        docs = db[SCIENCE_ACTORS].find({"_id": {"$in": ids}, "disabled": True})
        return {d["name"]: d.get("disabled_reason") or "" for d in docs}


def record_success(
    db: Database, survey: str, actor: ScienceActor, alerts: int, results: int, seconds: float
) -> None:
    """Count a good batch and reset the failures in a row."""
    with mongo_errors("recording a science actor's batch"):
        db[SCIENCE_ACTORS].update_one(
            {"_id": health_id(survey, actor.name)},
            {
                "$inc": {"batches": 1, "alerts": alerts, "results": results, "seconds": seconds},
                "$set": {"failures": 0, "version": actor.version},
                "$setOnInsert": {"survey": survey, "name": actor.name, "disabled": False},
            },
            upsert=True,
        )


def record_failure(
    db: Database,
    survey: str,
    actor: ScienceActor,
    message: str,
    max_failures: int,
    now: dt.datetime,
) -> bool:
    """Count a failed batch; at ``max_failures`` in a row disable the actor with the reason.

    Returns True if this failure disabled the actor.
    """
    with mongo_errors("recording a science actor's failure"):
        doc = db[SCIENCE_ACTORS].find_one_and_update(
            {"_id": health_id(survey, actor.name)},
            {
                "$inc": {"batches": 1, "failed_batches": 1, "failures": 1},
                "$set": {"last_error": {"message": message, "at": now}, "version": actor.version},
                "$setOnInsert": {"survey": survey, "name": actor.name, "disabled": False},
            },
            upsert=True,
            projection={"failures": 1},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None or doc["failures"] < max_failures:  # (None: never, it is an upsert)
            return False
        reason = f"failed {doc['failures']} batches in a row; last: {message}"
        db[SCIENCE_ACTORS].update_one(
            {"_id": doc["_id"]}, {"$set": {"disabled": True, "disabled_reason": reason}}
        )
    log.error("science actor %s disabled on %s: %s", actor.name, survey, reason)
    return True


def enable(db: Database, survey: str, name: str) -> bool:
    """Enable a disabled actor again (failures reset); return False if it was not known."""
    with mongo_errors("enabling a science actor"):
        result = db[SCIENCE_ACTORS].update_one(
            {"_id": health_id(survey, name)},
            {"$set": {"disabled": False, "disabled_reason": None, "failures": 0}},
        )
    return result.matched_count == 1


def health(db: Database) -> list[dict[str, Any]]:
    """Return every actor's health document, by survey and name."""
    with mongo_errors("reading science actors' health"):
        return list(db[SCIENCE_ACTORS].find().sort("_id", 1))
