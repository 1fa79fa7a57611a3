"""One slice of a replay: what a worker does with a list of candids.

* ``filter-backfill``: run one filter version on the slice's stored alerts,
  record its passes (``<survey>_filter_passes``, idempotent) and publish them to
  the filter's topic, marked as the replay.
* ``republish``: publish the passes a filter already recorded for the slice's
  alerts, to a topic the user names, marked as the replay.
* ``reprocess`` and ``reingest``: the chain's stages again (:mod:`.chain`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer
from pymongo import UpdateOne
from pymongo.database import Database

from boom_tasks.errors import PermanentError
from boom_tasks.filter.run import pass_documents, run_filter
from boom_tasks.filter.store import ActiveFilter, active_filter, get_filter
from boom_tasks.replays.publish import publish_passes
from boom_tasks.services.mongo import find_in, mongo_errors
from boom_tasks.settings import Settings
from boom_tasks.surveys import Survey


@dataclass(frozen=True)
class Slice:
    """One replay message: which run, what to do, on which alerts, to which topic."""

    run_id: str
    kind: str
    filter_id: str
    fid: str | None
    topic: str
    candids: Sequence[int]
    #: Packets stored in Valkey by the runner (``reingest``), else None.
    batch_key: str | None = None


def filter_version(db: Database, filter_id: str, fid: str | None) -> ActiveFilter:
    """Return a filter's version ``fid`` (its active one by default) as the filter stage runs it.

    Raises
    ------
    FilterNotFound
        If there is no such filter or version.
    """
    return active_filter(get_filter(db, filter_id), fid)


def _store_passes(db: Database, survey: Survey, passes: list[dict[str, Any]]) -> None:
    # Keyed candid:filter:version, as the filter stage writes them: nothing is stored twice.
    ops = [UpdateOne({"_id": p["_id"]}, {"$setOnInsert": p}, upsert=True) for p in passes]
    if ops:
        with mongo_errors(f"recording {survey.name} replayed filter passes"):
            db[survey.filter_passes].bulk_write(ops, ordered=False)


def backfill(
    db: Database, survey: Survey, settings: Settings, order: Slice
) -> tuple[list[dict[str, Any]], int]:
    """Run the slice's filter version on its alerts and record the passes; return them.

    Raises
    ------
    PermanentError
        If the database refused the filter or it ran over its time budget.
    """
    f = filter_version(db, order.filter_id, order.fid)
    outcome = run_filter(db, survey, f, list(order.candids), settings.filters)
    if outcome.error is not None:
        raise PermanentError(f"filter {f.name} ({f.id}) version {f.fid}: {outcome.error}")
    passes = pass_documents(outcome, dt.datetime.now(dt.UTC))
    _store_passes(db, survey, passes)
    return passes, len(order.candids)


def stored_passes(db: Database, survey: Survey, order: Slice) -> list[dict[str, Any]]:
    """Return the passes of the slice's filter (and version, if given) on its alerts."""
    query: dict[str, Any] = {"filter_id": order.filter_id}
    if order.fid:
        query["fid"] = order.fid
    with mongo_errors(f"reading {survey.name} filter passes"):
        return find_in(db[survey.filter_passes], "candid", list(order.candids), query=query)


def run_slice(
    db: Database,
    survey: Survey,
    settings: Settings,
    order: Slice,
    producer: Producer,
    stack: Mapping[str, Any],
) -> dict[str, int]:
    """Do one slice of a replay; return its counts (alerts, passed, published...)."""
    from boom_tasks.replays import chain

    if order.kind == "reprocess":
        args = (db, survey, settings, order.candids, producer, stack, order.run_id)
        return {"alerts": len(order.candids), **chain.reprocess(*args)}
    if order.kind == "reingest" and order.batch_key:
        return chain.reingest(db, survey, settings, order.batch_key, producer, stack, order.run_id)
    if order.kind == "filter-backfill":
        passes, _ = backfill(db, survey, settings, order)
    elif order.kind == "republish":
        passes = stored_passes(db, survey, order)
    else:
        raise PermanentError(f"replay kind {order.kind!r} has no slice worker")
    flush_s = settings.output.flush_timeout_s
    backfill_ = order.kind == "filter-backfill"
    published = publish_passes(
        db,
        survey,
        producer,
        passes,
        order.topic,
        order.run_id,
        stack,
        flush_s,
        as_published=backfill_,
    )
    return {"alerts": len(order.candids), "passed": len(passes), "published": published}
