"""Recompute stored cross-matches, e.g. after a catalog is added or reloaded.

Step 1: resolve the catalogs to redo (all configured ones, or those named);
Step 2: walk the survey's aux documents in ``_id`` order, a batch at a time
        (positions only), optionally restricted to given objects;
Step 3: crossmatch each batch exactly as the stage does and ``$set``
        ``cross_matches.<catalog>`` for the redone catalogs, leaving the others.
Re-running it gives the same result: it is safe to interrupt and restart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from boom_tasks.crossmatch.config import CrossmatchCatalog
from boom_tasks.crossmatch.match import geojson_position
from boom_tasks.crossmatch.stage import CatalogPlan, crossmatch_objects, plan_catalogs
from boom_tasks.errors import ConfigError
from boom_tasks.services.mongo import mongo_errors
from boom_tasks.surveys import Survey

#: Objects crossmatched per batch: as many as the stage gets from a full alert batch.
DEFAULT_BATCH = 1000


@dataclass
class ReprocessReport:
    """What a reprocess did."""

    catalogs: list[str]
    objects: int = 0
    written: int = 0
    problems: list[str] = field(default_factory=list)


def select_specs(
    specs: Sequence[CrossmatchCatalog], names: Sequence[str] | None
) -> list[CrossmatchCatalog]:
    """Return the configured catalogs called ``names`` (all of them if None).

    Raises
    ------
    ConfigError
        If a name is not in the survey's crossmatch configuration.
    """
    if not names:
        return list(specs)
    by_name = {s.catalog: s for s in specs}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ConfigError(
            f"catalog(s) {unknown} not in the crossmatch configuration "
            f"(configured: {sorted(by_name)}); add them to config first"
        )
    return [by_name[n] for n in names]


def _batches(
    db: Database, survey: Survey, size: int, objects: Sequence[str] | None
) -> Iterator[list[dict[str, Any]]]:
    query: dict[str, Any] = {"_id": {"$in": list(objects)}} if objects else {}
    with mongo_errors(f"reading {survey.name} objects"):
        cursor = db[survey.aux].find(query, {"coordinates": 1}).sort("_id", 1).batch_size(size)
        batch: list[dict[str, Any]] = []
        for doc in cursor:
            batch.append(doc)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


def reprocess(
    db: Database,
    survey: Survey,
    specs: Sequence[CrossmatchCatalog],
    *,
    objects: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[int], object] | None = None,
    catalog_db: Database | None = None,
) -> ReprocessReport:
    """Recompute the matches of ``specs`` for every (or the given) object of ``survey``."""
    plans: list[CatalogPlan]
    plans, problems = plan_catalogs(db if catalog_db is None else catalog_db, specs)
    report = ReprocessReport([p.spec.catalog for p in plans], problems=problems)
    if not plans:
        return report
    for batch in _batches(db, survey, batch_size, objects):
        positions = {d["_id"]: geojson_position(d) for d in batch}
        now = dt.datetime.now(dt.UTC)
        report.written += crossmatch_objects(db, survey, plans, positions, now, only_new=False)
        report.objects += len(batch)
        if progress:
            progress(len(batch))
    return report
