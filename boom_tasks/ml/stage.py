"""The ML stage: properties and classifications of a batch of alerts.

Step 1: read the batch's candidates, their objects' light curves (aux) and, if a
        model needs them, their cutouts: three ``$in`` reads for the batch;
Step 2: compute each alert's properties (the survey's ``properties``, e.g.
        :mod:`boom_tasks.surveys.ztf.properties`) from its light curve as of the alert;
Step 3: run every model on the whole batch (:mod:`boom_tasks.ml.predict`);
Step 4: write ``properties``, ``classifications.<model>`` and, for a model that
        skipped an alert, ``classifications_skipped.<model>`` (the reason), in one
        unordered bulk write; rerunning writes the same values (idempotent).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import UpdateOne
from pymongo.database import Database

from boom_tasks.ml.predict import AlertContext, predict
from boom_tasks.ml.registry import LoadedModel
from boom_tasks.services.mongo import find_in, mongo_errors
from boom_tasks.surveys import Survey

#: Time an alert went through the ML stage; alerts that have it are not redone.
ENRICHED_FIELD = "enriched_at"

#: Fields of an alert the ML stage reads.
ALERT_FIELDS = {"objectId": 1, "candidate": 1, "schemavsn": 1}


@dataclass
class MLResult:
    """What the stage did to one batch."""

    alerts: int = 0
    scored: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)


def until(points: list[dict[str, Any]] | None, jd: float) -> list[dict[str, Any]]:
    """Return the points up to and including ``jd`` (the light curve as of an alert)."""
    return [p for p in points or [] if p.get("jd") is not None and p["jd"] <= jd]


def stamps_needed(models: Sequence[LoadedModel]) -> list[str]:
    """Return the cutouts the models' inputs read (none: the stage reads no cutouts)."""
    names = {c for m in models for i in m.spec.inputs if i.kind == "cutouts" for c in i.cutouts}
    return sorted(names)


def _read(
    db: Database, survey: Survey, candids: Sequence[int], cutouts: list[str], redo: bool
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[int, dict[str, Any]]]:
    with mongo_errors(f"reading {survey.name} alerts for ML"):
        # A redelivered batch or a replay finds its alerts already enriched: skip them.
        todo = None if redo else {ENRICHED_FIELD: {"$exists": False}}
        alerts = find_in(db[survey.alerts], "_id", candids, ALERT_FIELDS, query=todo)
        object_ids = sorted({a["objectId"] for a in alerts})
        lists = dict.fromkeys(survey.history_fields, 1)  # the light curve only
        aux = {d["_id"]: d for d in find_in(db[survey.aux], "_id", object_ids, lists)}
        # Only the cutouts of the alerts enriched now (not of those a replay skips), and
        # only the stamps a model reads (each is ~15 KB of the document's ~45).
        ids = [a["_id"] for a in alerts] if cutouts else []
        fields = dict.fromkeys(cutouts, 1)
        stamps = {d["_id"]: d for d in find_in(db[survey.cutouts], "_id", ids, fields)}
    return alerts, aux, stamps


def _contexts(
    survey: Survey,
    alerts: list[dict[str, Any]],
    aux: dict[str, dict[str, Any]],
    stamps: dict[int, Any],
) -> list[tuple[AlertContext, dict[str, Any]]]:
    """Pair each alert's model context with its object's light curve as of the alert."""
    out = []
    for a in alerts:
        jd = a["candidate"]["jd"]
        history = aux.get(a["objectId"], {})
        cutouts = {k: v for k, v in stamps.get(a["_id"], {}).items() if k != "_id"}
        curve = {k: until(history.get(k), jd) for k in survey.history_fields}
        ctx = AlertContext(
            a["_id"],
            a["candidate"],
            curve.get("prv_candidates", []),
            curve.get("prv_nondetections", []),
            cutouts,
            a.get("schemavsn"),
        )
        out.append((ctx, curve))
    return out


def enrich_batch(
    db: Database,
    survey: Survey,
    models: Sequence[LoadedModel],
    candids: Sequence[int],
    now: dt.datetime | None = None,
    *,
    redo: bool = False,
) -> MLResult:
    """Compute and store properties and classifications of a batch of alerts.

    Alerts already enriched are left as they are unless ``redo`` is set.
    """
    now = now or dt.datetime.now(dt.UTC)
    contexts = _contexts(survey, *_read(db, survey, candids, stamps_needed(models), redo))
    updates: dict[int, dict[str, Any]] = {
        ctx.candid: {"properties": survey.properties(ctx.candidate, curve), ENRICHED_FIELD: now}
        for ctx, curve in contexts
    }
    result = MLResult(alerts=len(contexts))
    for model in models:
        name = model.spec.name
        preds = predict(model, [ctx for ctx, _ in contexts])
        for candid, score in preds.scores.items():
            updates[candid][f"classifications.{name}"] = score
        for candid, reason in preds.skipped.items():
            updates[candid][f"classifications_skipped.{name}"] = reason
        result.scored[name], result.skipped[name] = len(preds.scores), len(preds.skipped)
    if updates:
        ops = [UpdateOne({"_id": c}, {"$set": u}) for c, u in updates.items()]
        with mongo_errors(f"storing {survey.name} classifications"):
            db[survey.alerts].bulk_write(ops, ordered=False)
    return result
