"""Helpers of the end-to-end tests: wait for the chain to drain, read a topic back."""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis
from confluent_kafka import Consumer

from boom_tasks.chain import CHAIN
from boom_tasks.services.kafka import consumer_config
from boom_tasks.settings import get_settings
from boom_tasks.surveys.base import Survey


def drained(surveys: Iterable[Survey], timeout: float = 240) -> None:
    """Return once no batch awaits ingestion and no message awaits a stage of ``surveys``."""
    client = redis.Redis.from_url(get_settings().valkey.url)
    prefixes = [s.queue_prefix for s in surveys]
    keys = [f"dramatiq:{p}_{stage.name}.msgs" for p in prefixes for stage in CHAIN]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = any(client.hlen(f"boom:{p}:pending") for p in prefixes)
        if not pending and not any(client.hlen(k) for k in keys):
            return
        time.sleep(0.3)
    raise AssertionError("the pipeline did not drain")


def read_topic(topic: str, expect_at_least: int, idle_s: float = 5.0) -> list[bytes]:
    """Read a topic from its start until ``idle_s`` without a message (and at least N)."""
    settings = get_settings()
    group = f"reader-{time.time_ns()}"
    consumer = Consumer(consumer_config(settings.kafka, group, **{"auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    out: list[bytes] = []
    last = time.monotonic()
    while time.monotonic() - last < idle_s or len(out) < expect_at_least:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            out.append(msg.value())
            last = time.monotonic()
        if time.monotonic() - last > 60:
            break
    consumer.close()
    return out


def orphan_batches(survey: Survey) -> list[str]:
    """Return the survey's pending batches that no ingest message names (ready, delayed or dead).

    A bridge killed between storing a batch and sending its ingest message leaves
    one: its alerts are consumed again (the offsets were not committed), and the
    next bridge reaps it (``batches.reap_orphans``). Read here independently of
    the reaper: by decoding every message.
    """
    import dramatiq

    client = redis.Redis.from_url(get_settings().valkey.url)
    queue = f"dramatiq:{survey.queue_prefix}_ingest"
    named = {
        dramatiq.Message.decode(raw).args[0]
        for suffix in (".msgs", ".DQ.msgs", ".XQ.msgs")
        for raw in client.hvals(queue + suffix)
    }
    pending = {k.decode() for k in client.hkeys(f"boom:{survey.queue_prefix}:pending")}
    return sorted(pending - named)
