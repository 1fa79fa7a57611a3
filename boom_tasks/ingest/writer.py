"""Bulk, idempotent writes of one batch of alerts to MongoDB.

Step 1: insert alert documents, ``_id`` = candid, unordered; a duplicate key
        means the alert is already stored (a replay), not an error.
Step 2: insert cutout documents the same way.
Step 3: merge each object's history into its aux document with one ``$in``
        read (of the history lists only), one unordered insert of the new objects
        and one bulk write of the others, using compare-and-swap on a version token
        so that two workers updating the same object never lose each other's points.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database

from boom_tasks.alert.base import AlertDocs, radec_geojson
from boom_tasks.errors import TransientError
from boom_tasks.ingest.history import history_changed, merge_history
from boom_tasks.services.mongo import insert_new, mongo_errors
from boom_tasks.surveys import Survey

log = logging.getLogger(__name__)

#: Compare-and-swap rounds before giving up on an object updated concurrently
#: by other workers; each round re-reads only the objects that lost the race.
MAX_CAS_ROUNDS = 10

#: Field of the aux document holding the compare-and-swap version token.
VERSION_FIELD = "_v"


def _aux_write(
    survey: Survey,
    object_id: str,
    stored: dict[str, Any] | None,
    alerts: list[AlertDocs],
    now: dt.datetime,
) -> tuple[UpdateOne | dict[str, Any], str] | None:
    """Return the write of one object's merged history and its new version token.

    A new object's write is its whole document, inserted (a concurrent creator makes
    it a duplicate key: the race is lost); a stored one's, a conditional update.
    Returns None when the merged history equals the stored one.
    """
    merged = merge_history(
        stored, (a.history for a in alerts), survey.history_fields, survey.point_id_fields
    )
    if not history_changed(stored, merged):
        return None
    token = uuid.uuid4().hex
    fields = {**merged, VERSION_FIELD: token, "updated_at": now}
    if stored is None:
        first = alerts[0]
        coordinates = {"radec_geojson": radec_geojson(first.ra, first.dec)}
        return {"_id": object_id, **fields, "coordinates": coordinates, "created_at": now}, token
    filter_ = {"_id": object_id, VERSION_FIELD: stored.get(VERSION_FIELD)}
    return UpdateOne(filter_, {"$set": fields}), token


def aux_fields(survey: Survey) -> dict[str, int]:
    """Return the projection of what merging reads: the history lists and the token."""
    return dict.fromkeys((*survey.history_fields, VERSION_FIELD), 1)


def _updates_lost(aux: Collection, ops: list[UpdateOne], tokens: dict[str, str]) -> set[str]:
    """Apply the conditional updates; return the objects whose update did not match."""
    if not ops:
        return set()
    with mongo_errors("updating aux documents"):
        if aux.bulk_write(ops, ordered=False).matched_count == len(ops):
            return set()  # every compare-and-swap matched: nobody raced us
        # Unordered bulk results do not say which update matched: read the tokens back.
        ids = list(tokens)
        now_tokens = {
            d["_id"]: d.get(VERSION_FIELD)
            for d in aux.find({"_id": {"$in": ids}}, {VERSION_FIELD: 1})
        }
    return {oid for oid, tok in tokens.items() if now_tokens.get(oid) != tok}


def _cas_round(
    survey: Survey, aux: Collection, groups: dict[str, list[AlertDocs]], now: dt.datetime
) -> set[str]:
    """Try to write every object's merged history once; return the objects that lost a race."""
    with mongo_errors("reading aux documents"):
        found = aux.find({"_id": {"$in": list(groups)}}, aux_fields(survey))
        stored = {d["_id"]: d for d in found}
    new: list[dict[str, Any]] = []
    ops: list[UpdateOne] = []
    tokens: dict[str, str] = {}
    for object_id, alerts in groups.items():
        write = _aux_write(survey, object_id, stored.get(object_id), alerts, now)
        if write is None:
            continue
        if isinstance(write[0], dict):
            new.append(write[0])
        else:
            ops.append(write[0])
            tokens[object_id] = write[1]
    # One unordered insert for the new objects instead of an upsert each.
    inserted = set(insert_new(aux, new, "creating aux documents"))
    lost = {d["_id"] for i, d in enumerate(new) if i not in inserted}
    lost |= _updates_lost(aux, ops, tokens)
    log.debug("aux CAS: %d lost the race", len(lost))
    return lost


def update_aux(db: Database, survey: Survey, alerts: Iterable[AlertDocs], now: dt.datetime) -> None:
    """Merge the history of every alert into its object's aux document.

    Raises
    ------
    TransientError
        If some objects are still contended after :data:`MAX_CAS_ROUNDS` rounds
        (the actor retries the batch; writes so far are idempotent).
    """
    groups: dict[str, list[AlertDocs]] = defaultdict(list)
    for alert in alerts:
        groups[alert.object_id].append(alert)
    pending = dict(groups)
    for _ in range(MAX_CAS_ROUNDS):
        lost = _cas_round(survey, db[survey.aux], pending, now)
        if not lost:
            return
        pending = {oid: groups[oid] for oid in lost}
    raise TransientError(
        f"{len(pending)} {survey.name} objects still contended after {MAX_CAS_ROUNDS} rounds"
    )
