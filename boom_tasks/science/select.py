"""Read the alerts a science actor sees: its selection applied, history and matches joined.

Step 1: read the batch's alerts that meet the selection's alert part and have no
        result of the actor's version yet (``$in`` reads, in chunks);
Step 2: read their objects' aux documents that meet the selection's cross-match
        part (an alert whose object does not is dropped);
Step 3: lift the object's history as of the alert (points up to its ``jd``), its
        ``cross_matches`` (``{}`` when none) and ``aliases`` to the alert's root,
        as a filter sees them.

Two queries, no ``$lookup``: each part of the selection runs where its fields live.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo.database import Database

from boom_tasks.ml.stage import until
from boom_tasks.science.base import AUX_SELECTABLE, ScienceActor, split_selection
from boom_tasks.services.mongo import find_in, mongo_errors
from boom_tasks.surveys import Survey


def not_done(actor: ScienceActor) -> dict[str, Any]:
    """Return the condition keeping alerts without a result of the actor's version."""
    return {f"{actor.field}.version": {"$ne": actor.version}}


def select_alerts(
    db: Database,
    survey: Survey,
    actor: ScienceActor,
    candids: Sequence[int],
    *,
    redo: bool = False,
    chunk: int = 100,
) -> list[dict[str, Any]]:
    """Return the alerts of ``candids`` the actor is to run on, as it sees them.

    Parameters
    ----------
    db, survey
        The broker's database and the survey of the alerts.
    actor
        The actor: its selection and version.
    candids
        The batch.
    redo
        Also return alerts that already have a result of this version (a backfill
        run again on purpose).
    chunk
        Candids per ``$in`` read.
    """
    alert_part, aux_part = split_selection(actor.name, actor.selection)
    conditions = [c for c in (alert_part, {} if redo else not_done(actor)) if c]
    query = {"$and": conditions} if len(conditions) > 1 else conditions[0] if conditions else None
    with mongo_errors(f"selecting {survey.name} alerts for {actor.name}"):
        alerts = find_in(db[survey.alerts], "_id", candids, query=query, chunk=chunk)
        if not alerts:
            return []
        object_ids = sorted({a["objectId"] for a in alerts})
        fields = dict.fromkeys([*survey.history_fields, *AUX_SELECTABLE], 1)
        aux = find_in(db[survey.aux], "_id", object_ids, fields, query=aux_part, chunk=chunk)
    by_object = {d["_id"]: d for d in aux}
    if aux_part:  # the objects failing the cross-match part are not in by_object
        alerts = [a for a in alerts if a["objectId"] in by_object]
    return [_joined(survey, a, by_object.get(a["objectId"], {})) for a in alerts]


def _joined(survey: Survey, alert: dict[str, Any], aux: dict[str, Any]) -> dict[str, Any]:
    jd = alert["candidate"]["jd"]
    history = {k: until(aux.get(k), jd) for k in survey.history_fields}
    return {
        **alert,
        **history,
        "cross_matches": aux.get("cross_matches") or {},
        "aliases": aux.get("aliases") or {},
    }
