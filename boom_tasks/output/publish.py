"""The output stage: passing alerts published to Kafka once per (candid, filter version).

Step 1: read the batch's filter passes and drop those already published (the
        ``<survey>_publications`` collection: a replay publishes nothing twice);
Step 2: read the alerts, their objects' aux documents and their cutouts, and build
        one message per alert listing every new pass (:mod:`.message`, :mod:`.schema`);
Step 3: produce each message, keyed by candid, to the survey's results topic (and
        the per-filter topics if configured), wait for Kafka's acknowledgements,
        and record what was delivered. A message Kafka did not acknowledge is not
        recorded, so the retried batch sends it again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from pymongo.database import Database

from boom_tasks.errors import ServiceUnavailable
from boom_tasks.output.config import OutputSettings
from boom_tasks.output.matches import read_matched, survey_matches
from boom_tasks.output.message import build_message
from boom_tasks.output.provenance import LIVE, message_provenance
from boom_tasks.output.schema import carries_matches, encode
from boom_tasks.services.kafka import producer_config
from boom_tasks.services.mongo import find_in, find_in_chunks, insert_new, mongo_errors
from boom_tasks.settings import KafkaSettings
from boom_tasks.surveys import Survey

log = logging.getLogger(__name__)

_producer: tuple[int, Producer] | None = None

#: Cursor batch of a read of passes: a chunk of candids (``services.mongo.IN_CHUNK``) times the
#: filters one alert may pass, so a chunk's passes come in one reply.
PASS_BATCH = 5000


def get_producer(kafka: KafkaSettings) -> Producer:
    """Return this process's producer (idempotent, zstd), created after fork on first use."""
    global _producer
    if _producer is None or _producer[0] != os.getpid():
        _producer = (os.getpid(), Producer(producer_config(kafka, acks="all")))
    return _producer[1]


def flush_producer(timeout_s: float) -> int:
    """Flush this process's producer if it exists; return the messages still queued."""
    if _producer is None or _producer[0] != os.getpid():
        return 0
    return int(_producer[1].flush(timeout_s))


def topic_name(template: str, survey: str, filter_name: str = "") -> str:
    """Return a topic from a template; filter names are reduced to Kafka's topic characters."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", filter_name).strip("_") or "filter"
    return template.format(survey=survey, filter=safe)


def _unpublished(db: Database, survey: Survey, candids: Sequence[int]) -> dict[int, list[dict]]:
    with mongo_errors(f"reading {survey.name} filter passes"):
        # A chunk's passes (~5 per alert) in one reply: no ``getMore`` after the first 101.
        chunks = find_in_chunks(db[survey.filter_passes], "candid", candids, batch_size=PASS_BATCH)
        passes = [p for cursor in chunks for p in cursor]
        # By candid (indexed, ingest/indexes.py), not by pass id: one ``$in`` per chunk of
        # the batch's candids instead of one per chunk of its passes (~5 per alert).
        published = find_in(db[survey.publications], "candid", candids, {"_id": 1})
        done = {d["_id"] for d in published}
    todo: dict[int, list[dict]] = defaultdict(list)
    for p in passes:
        if p["_id"] not in done:
            todo[p["candid"]].append(p)
    return todo


def aux_fields(survey: Survey) -> dict[str, int]:
    """Return the projection of the aux fields a message is built from.

    The light curve, the cross-matches, and the aliases and position other surveys'
    matches need (:mod:`.matches`); not the bookkeeping (``_v``, ``updated_at``...).
    """
    return dict.fromkeys(("cross_matches", "aliases", "coordinates", *survey.history_fields), 1)


def _documents(db: Database, survey: Survey, candids: list[int]) -> tuple[dict, dict, dict]:
    with mongo_errors(f"reading {survey.name} alerts to publish"):
        alerts = {a["_id"]: a for a in find_in(db[survey.alerts], "_id", candids)}
        oids = sorted({a["objectId"] for a in alerts.values()})
        aux_docs = find_in(db[survey.aux], "_id", oids, aux_fields(survey))
        aux = {d["_id"]: d for d in aux_docs}
        stamps = {c["_id"]: c for c in find_in(db[survey.cutouts], "_id", candids)}
    return alerts, aux, stamps


def visible_programids(passes: Sequence[dict[str, Any]]) -> list[int]:
    """Return the programids every filter passed may see: history shown in a message.

    One message lists every filter an alert passed, and everyone reading the topic
    sees it, so private-programme history points appear only if all those filters
    are permitted to see them.
    """
    sets = [set(p.get("programids") or []) for p in passes]
    return sorted(set.intersection(*sets)) if sets else []


def _produce(
    producer: Producer, topics: list[str], candid: int, payload: bytes, delivered: set[int]
) -> None:
    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is None and msg.topic() == topics[0]:
            delivered.add(candid)
        elif err is not None:
            log.error("publishing candid %s to %s failed: %s", candid, msg.topic(), err)

    for topic in topics:
        producer.produce(topic, value=payload, key=str(candid).encode(), on_delivery=on_delivery)
        producer.poll(0)


def publish_batch(
    db: Database,
    survey: Survey,
    producer: Producer,
    candids: Sequence[int],
    times: dict[str, float],
    settings: OutputSettings,
    stack: dict[str, Any] | None = None,
    run: str = LIVE,
    per_filter: Counter[str] | None = None,
) -> int:
    """Publish the batch's unpublished passes; return the number of messages delivered.

    ``stack`` (:func:`~boom_tasks.output.provenance.stack_provenance`) and ``run``
    (``live`` or a replay's id) make each message's provenance; without ``stack``
    messages carry none. ``per_filter``, if given, is incremented by the passes
    delivered, per filter id (the night report's "published per filter").

    Raises
    ------
    ServiceUnavailable
        If Kafka did not acknowledge every message in time (the actor retries;
        delivered messages are recorded and are not sent again).
    """
    todo = _unpublished(db, survey, candids)
    if not todo:
        return 0
    alerts, aux, stamps = _documents(db, survey, sorted(todo))
    joint = carries_matches(survey.name)
    matched = read_matched(db, survey, aux.values()) if joint else {}
    delivered: set[int] = set()
    results_topic = topic_name(settings.results_topic, survey.name)
    for candid, passes in todo.items():
        alert = alerts[candid]
        stamped = {**times, "published": time.time()}
        message = build_message(
            survey,
            alert,
            aux.get(alert["objectId"]),
            stamps.get(candid),
            passes,
            stamped,
            programids=visible_programids(passes),
            survey_matches=survey_matches(
                aux.get(alert["objectId"]), alert["candidate"].get("jd"), matched
            )
            if joint
            else None,
            provenance=None if stack is None else message_provenance(stack, passes, run),
        )
        topics = [results_topic]
        if settings.per_filter_topics:
            topics += [
                topic_name(settings.filter_topic, survey.name, p["filter_name"]) for p in passes
            ]
        _produce(producer, topics, candid, encode(message), delivered)
    left = producer.flush(settings.flush_timeout_s)
    _record(db, survey, {c: todo[c] for c in delivered})
    if per_filter is not None:
        per_filter.update(p["filter_id"] for c in delivered for p in todo[c])
    if left or len(delivered) < len(todo):
        raise ServiceUnavailable(
            f"Kafka acknowledged {len(delivered)} of {len(todo)} {survey.name} messages"
        )
    return len(delivered)


def _record(db: Database, survey: Survey, delivered: dict[int, list[dict[str, Any]]]) -> None:
    # ``_id`` is the pass's: a record already there (a concurrent replay's) is kept as it
    # is, as the ``$setOnInsert`` upsert this replaces did, for an insert's price.
    now = dt.datetime.now(dt.UTC)
    records = [
        {
            "_id": p["_id"],
            "candid": c,
            "filter_id": p["filter_id"],
            "fid": p["fid"],
            "published_at": now,
        }
        for c, passes in delivered.items()
        for p in passes
    ]
    insert_new(db[survey.publications], records, f"recording {survey.name} publications")
