"""The crossmatch stage: archival catalogs matched once per object, per batch.

Step 1: resolve the survey's configured catalogs against ``catalogs_meta``
        (HEALPix order; a catalog not loaded, or still loading, is skipped with a
        warning: ``boom crossmatch reprocess`` fills it in once it is loaded);
Step 2: find the batch's objects that have no ``cross_matches`` yet (new objects);
Step 3: per catalog, cover every object's cone with HEALPix pixels and fetch the
        candidate rows with one ``$in`` query for the whole batch, then keep the
        rows inside each cone, nearest first (:mod:`boom_tasks.crossmatch.match`);
Step 4: store ``cross_matches.<catalog>`` in the objects' aux documents, only where
        still absent, so a redelivered batch or a concurrent worker changes nothing;
Step 5: associate the new objects with the other surveys' objects within 2″
        (``aliases.<SURVEY>``, :mod:`boom_tasks.crossmatch.aliases`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database

from boom_tasks.catalogs.meta import get_meta
from boom_tasks.crossmatch.aliases import associate
from boom_tasks.crossmatch.config import CrossmatchCatalog
from boom_tasks.crossmatch.match import geojson_position, match_rows
from boom_tasks.services.mongo import find_in, mongo_errors
from boom_tasks.sky.cone import fetch_pixels
from boom_tasks.sky.healpix import cones_pixels
from boom_tasks.surveys import SURVEYS, Survey

log = logging.getLogger(__name__)

#: Field of the aux document holding every catalog's matches.
MATCHES_FIELD = "cross_matches"


@dataclass(frozen=True)
class CatalogPlan:
    """A configured catalog that is loaded, with its HEALPix order and collection."""

    spec: CrossmatchCatalog
    order: int
    collection: Collection


def plan_catalogs(
    db: Database, specs: Sequence[CrossmatchCatalog]
) -> tuple[list[CatalogPlan], list[str]]:
    """Return the configured catalogs ready to match, and why the others are not.

    ``db`` is the database holding the catalogs (``mongo.catalog_database``).
    """
    plans: list[CatalogPlan] = []
    problems: list[str] = []
    for spec in specs:
        meta = get_meta(db, spec.catalog)
        if meta is None:
            problems.append(f"{spec.catalog}: not loaded (boom catalogs load {spec.catalog} FILE)")
        elif meta.get("status") != "complete":
            problems.append(f"{spec.catalog}: load is {meta.get('status')}, not complete")
        else:
            plans.append(CatalogPlan(spec, int(meta["hpx_order"]), db[spec.catalog]))
    return plans, problems


def crossmatch_positions(
    plans: Sequence[CatalogPlan], ra: Sequence[float], dec: Sequence[float]
) -> list[dict[str, list[dict[str, Any]]]]:
    """Return, for each position, its matches in every planned catalog.

    One ``$in`` query (in chunks, see :data:`boom_tasks.sky.cone.IN_CHUNK`) per
    catalog for all positions: never one geo query per position.
    """
    ra_arr = np.asarray(ra, dtype=np.float64)
    dec_arr = np.asarray(dec, dtype=np.float64)
    out: list[dict[str, list[dict[str, Any]]]] = [{} for _ in range(len(ra_arr))]
    if not len(ra_arr):
        return out
    for plan in plans:
        cover = cones_pixels(ra_arr, dec_arr, plan.spec.radius, plan.order)
        rows = fetch_pixels(plan.collection, cover[0], fields=plan.spec.fields())
        for k, matches in enumerate(match_rows(plan.spec, ra_arr, dec_arr, cover, rows)):
            out[k][plan.spec.catalog] = matches
    return out


def object_positions(
    db: Database, survey: Survey, candids: Iterable[int], *, only_new: bool = False
) -> dict[str, tuple[float, float]]:
    """Return the position of each object of these alerts (``only_new``: not matched yet)."""
    with mongo_errors("reading the batch's objects"):
        alerts = find_in(db[survey.alerts], "_id", list(candids), {"objectId": 1})
        object_ids = sorted({d["objectId"] for d in alerts})
        new = {MATCHES_FIELD: {"$exists": False}} if only_new else None
        docs = find_in(db[survey.aux], "_id", object_ids, {"coordinates": 1}, query=new)
        return {d["_id"]: geojson_position(d) for d in docs}


def _write(
    db: Database,
    survey: Survey,
    results: dict[str, dict[str, list[dict[str, Any]]]],
    now: dt.datetime,
    *,
    only_new: bool,
) -> int:
    """Store each object's matches; return how many aux documents changed."""
    ops = []
    for object_id, matches in results.items():
        if only_new:
            query: dict[str, Any] = {"_id": object_id, MATCHES_FIELD: {"$exists": False}}
            update: dict[str, Any] = {MATCHES_FIELD: matches}
        else:  # reprocess: replace the given catalogs' matches, keep the others
            query = {"_id": object_id}
            update = {f"{MATCHES_FIELD}.{cat}": m for cat, m in matches.items()}
        ops.append(UpdateOne(query, {"$set": {**update, "cross_matched_at": now}}))
    if not ops:
        return 0
    with mongo_errors(f"storing {survey.name} cross-matches"):
        return db[survey.aux].bulk_write(ops, ordered=False).modified_count


def crossmatch_objects(
    db: Database,
    survey: Survey,
    plans: Sequence[CatalogPlan],
    positions: dict[str, tuple[float, float]],
    now: dt.datetime,
    *,
    only_new: bool = True,
) -> int:
    """Crossmatch objects at their positions and store the matches; return objects written."""
    ids = list(positions)
    ra = [positions[i][0] for i in ids]
    dec = [positions[i][1] for i in ids]
    matches = crossmatch_positions(plans, ra, dec)
    return _write(db, survey, dict(zip(ids, matches, strict=True)), now, only_new=only_new)


def crossmatch_batch(
    db: Database,
    survey: Survey,
    plans: Sequence[CatalogPlan],
    candids: Sequence[int],
    now: dt.datetime | None = None,
) -> int:
    """Crossmatch the new objects of a batch of alerts; return how many were matched.

    The new objects are also associated with the other registered surveys' objects.
    """
    positions = object_positions(db, survey, candids, only_new=True)
    if not positions:
        return 0
    matched = crossmatch_objects(db, survey, plans, positions, now or dt.datetime.now(dt.UTC))
    associate(db, survey, SURVEYS.values(), positions)
    return matched
