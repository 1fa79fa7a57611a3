"""Publish a replay's passes to one topic, each message marked with the replay's id.

Step 1: drop the passes this run already published (``replay_publications``,
        ``_id`` = run:pass): a retried slice sends nothing twice.
Step 2: read the alerts, their objects and cutouts; build one message per alert
        listing its passes, with the run's provenance (``replay: true``).
Step 3: produce them keyed by candid, wait for Kafka's acknowledgements, and
        record what was delivered.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from pymongo import UpdateOne
from pymongo.database import Database

from boom_tasks.errors import ServiceUnavailable
from boom_tasks.output.matches import read_matched, survey_matches
from boom_tasks.output.message import build_message
from boom_tasks.output.provenance import message_provenance
from boom_tasks.output.publish import visible_programids
from boom_tasks.output.schema import carries_matches, encode
from boom_tasks.services.mongo import find_in, mongo_errors
from boom_tasks.surveys import Survey

log = logging.getLogger(__name__)

#: Collection recording what each replay run published: ``_id`` = ``<run>:<pass id>``.
PUBLICATIONS = "replay_publications"


def _unpublished(db: Database, run_id: str, passes: Sequence[Mapping[str, Any]]) -> list[Mapping]:
    ids = [f"{run_id}:{p['_id']}" for p in passes]
    with mongo_errors("reading a replay's publications"):
        done = {d["_id"] for d in find_in(db[PUBLICATIONS], "_id", ids, {"_id": 1})}
    return [p for p, key in zip(passes, ids, strict=True) if key not in done]


def _documents(db: Database, survey: Survey, candids: list[int]) -> tuple[dict, dict, dict]:
    with mongo_errors(f"reading {survey.name} alerts to replay"):
        alerts = {a["_id"]: a for a in find_in(db[survey.alerts], "_id", candids)}
        oids = sorted({a["objectId"] for a in alerts.values()})
        aux = {d["_id"]: d for d in find_in(db[survey.aux], "_id", oids)}
        stamps = {c["_id"]: c for c in find_in(db[survey.cutouts], "_id", candids)}
    return alerts, aux, stamps


def publish_passes(
    db: Database,
    survey: Survey,
    producer: Producer,
    passes: Sequence[Mapping[str, Any]],
    topic: str,
    run_id: str,
    stack: Mapping[str, Any],
    flush_timeout_s: float,
    *,
    as_published: bool = False,
) -> int:
    """Publish ``passes`` (pass documents) to ``topic`` as replay ``run_id``; return how many.

    With ``as_published`` the passes also count as published for the live output
    (``<survey>_publications``): a backfilled filter's passes have been sent to
    its topic, and a later reprocess must not send them to the results topic.

    Raises
    ------
    ServiceUnavailable
        If Kafka did not acknowledge every message in time (the slice is retried;
        what was delivered is recorded and not sent again).
    """
    todo: dict[int, list[Mapping]] = defaultdict(list)
    for p in _unpublished(db, run_id, passes):
        todo[p["candid"]].append(p)
    if not todo:
        return 0
    delivered: set[int] = set()
    sent = 0
    for candid, payload in _messages(db, survey, todo, run_id, stack):
        _produce(producer, topic, candid, payload, delivered)
        sent += 1
    left = producer.flush(flush_timeout_s)
    _record(db, run_id, {c: todo[c] for c in delivered})
    if as_published:
        _record_published(db, survey, [p for c in delivered for p in todo[c]])
    if left or len(delivered) < sent:
        raise ServiceUnavailable(f"Kafka acknowledged {len(delivered)} of {sent} messages")
    return len(delivered)


def _messages(
    db: Database,
    survey: Survey,
    todo: Mapping[int, list[Mapping[str, Any]]],
    run_id: str,
    stack: Mapping[str, Any],
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(candid, encoded message)`` for each alert to publish, with its provenance."""
    alerts, aux, stamps = _documents(db, survey, sorted(todo))
    matched = read_matched(db, survey, aux.values()) if carries_matches(survey.name) else None
    for candid, its in todo.items():
        alert = alerts.get(candid)
        if alert is None:
            # Deleted since the pass was recorded: nothing to show; the others go on.
            log.warning("replay %s: alert %s is no longer stored; skipped", run_id, candid)
            continue
        obj, plain = aux.get(alert["objectId"]), [dict(p) for p in its]
        jd = alert["candidate"].get("jd")
        message = build_message(
            survey,
            alert,
            obj,
            stamps.get(candid),
            plain,
            {"published": time.time()},
            programids=visible_programids(plain),
            survey_matches=None if matched is None else survey_matches(obj, jd, matched),
            provenance=message_provenance(stack, its, run_id),
        )
        yield candid, encode(message)


def _produce(producer: Producer, topic: str, candid: int, payload: bytes, done: set[int]) -> None:
    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            done.add(candid)
        else:
            log.error("replay: publishing candid %s to %s failed: %s", candid, topic, err)

    producer.produce(topic, value=payload, key=str(candid).encode(), on_delivery=on_delivery)
    producer.poll(0)


def _record(db: Database, run_id: str, delivered: Mapping[int, list[Mapping]]) -> None:
    now = dt.datetime.now(dt.UTC)
    ops = [
        UpdateOne(
            {"_id": f"{run_id}:{p['_id']}"},
            {"$setOnInsert": {"run": run_id, "candid": c, "published_at": now}},
            upsert=True,
        )
        for c, passes in delivered.items()
        for p in passes
    ]
    if ops:
        with mongo_errors("recording a replay's publications"):
            db[PUBLICATIONS].bulk_write(ops, ordered=False)


def _record_published(db: Database, survey: Survey, passes: Sequence[Mapping[str, Any]]) -> None:
    # The output stage's record (output/publish.py), so it never publishes these again.
    now = dt.datetime.now(dt.UTC)
    fields = ("candid", "filter_id", "fid")
    ops = [
        UpdateOne(
            {"_id": p["_id"]},
            {"$setOnInsert": {**{k: p[k] for k in fields}, "published_at": now}},
            upsert=True,
        )
        for p in passes
    ]
    if ops:
        with mongo_errors(f"recording {survey.name} publications"):
            db[survey.publications].bulk_write(ops, ordered=False)
