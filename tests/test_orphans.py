"""Orphan batches: stored, never sent (their producer died), then reaped (real services)."""

from __future__ import annotations

import dataclasses
import logging
import time

import pytest
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from boom_tasks.batches import BatchRef, batch_queues, pending_alerts, reap_orphans, store_batch
from boom_tasks.bridge.consumer import Bridge
from boom_tasks.broker import NAMESPACE, queue_name
from boom_tasks.services.kafka import ensure_topic
from boom_tasks.services.valkey import get_client
from boom_tasks.surveys.base import Survey
from boom_tasks.surveys.ztf import ZTF
from tests.alerts import packet_paths, read_packet

pytestmark = pytest.mark.services

TTL_S = 3600


def _survey(unique: str) -> Survey:
    # A private survey: its pending hash and ingest queue are this test's alone.
    return dataclasses.replace(ZTF, name=f"O{unique}", topic_template="o_{date}")


def _sender(services, survey: Survey, delay_ms: int | None = None, stage: str = "ingest"):
    """Send each batch as a real Dramatiq message on one of the survey's (unconsumed) queues."""
    broker = RedisBroker(url=services.valkey.url, namespace=NAMESPACE)

    def send(ref: BatchRef, received_at: float = 0.0) -> None:
        queue = queue_name(survey, stage)
        message = Message(
            queue_name=queue, actor_name="ingest", args=(ref.key,), kwargs={}, options={}
        )
        broker.enqueue(message, delay=delay_ms)

    return send


def test_only_old_batches_no_message_names_are_reaped(services, unique, caplog):
    client = get_client(services.valkey)
    survey = _survey(unique)
    send = _sender(services, survey)
    # Given an orphan (stored, never sent), a batch with a ready message, one with a
    # delayed message, one named on the replay queue (a re-ingest's half), and a
    # pending entry whose payload is gone (and no message names)
    orphan = store_batch(client, survey, [b"a", b"b"], TTL_S)
    ready = store_batch(client, survey, [b"c"], TTL_S)
    send(ready)
    delayed = store_batch(client, survey, [b"d"], TTL_S)
    _sender(services, survey, delay_ms=600_000)(delayed)
    replayed = store_batch(client, survey, [b"f"], TTL_S)
    _sender(services, survey, stage="replay")(replayed)
    vanished = store_batch(client, survey, [b"e"], TTL_S)
    client.delete(vanished.key)
    assert pending_alerts(client, survey) == 6
    # When they are looked at while young: only the entry without payload goes (nothing
    # can ever load it; complete_batch removes payload and entry together)
    assert reap_orphans(
        client, survey, older_than_s=60, ttl_s=TTL_S, queues=batch_queues(survey)
    ) == [vanished.key]
    assert pending_alerts(client, survey) == 5
    # And once they are older than the bound
    time.sleep(1.2)
    with caplog.at_level(logging.WARNING, logger="boom_tasks.batches"):
        reaped = reap_orphans(
            client, survey, older_than_s=0.5, ttl_s=TTL_S, queues=batch_queues(survey)
        )
    # Then the orphan is gone, payload and all; the batches messages name stay
    assert reaped == [orphan.key]
    assert not client.exists(orphan.key)
    assert client.exists(ready.key, delayed.key, replayed.key) == 3
    assert pending_alerts(client, survey) == 3
    assert f"reaped orphan batch {orphan.key}" in caplog.text
    # And a second look finds nothing more
    assert (
        reap_orphans(client, survey, older_than_s=0.5, ttl_s=TTL_S, queues=batch_queues(survey))
        == []
    )


def test_the_bridge_reaps_an_orphan_a_killed_bridge_left(services, unique):
    client = get_client(services.valkey)
    survey = _survey(unique)
    # Given an orphan left by a bridge killed between storing a batch and sending it
    orphan = store_batch(client, survey, [b"x"] * 7, TTL_S)
    time.sleep(1.2)
    # And a topic of 30 real packets
    topic = f"orphans-{unique}"
    ensure_topic(services.kafka, topic, 1)
    from confluent_kafka import Producer

    from boom_tasks.services.kafka import producer_config

    producer = Producer(producer_config(services.kafka))
    for path in packet_paths("fink-20181129")[:30]:
        producer.produce(topic, read_packet(path))
    assert producer.flush(30) == 0
    # When the next bridge runs to the end of the topic, sending real messages
    bridge = services.bridge.model_copy(
        update={"batch_size": 10, "batch_wait_s": 0.3, "orphan_after_s": 1.0, "batch_ttl_s": TTL_S}
    )
    settings = services.model_copy(update={"bridge": bridge})
    stats = Bridge(settings, survey, topic, _sender(services, survey), exit_on_eof=True).run()
    # Then the orphan is gone and the bridge's own batches, each named by its message, stay
    assert stats.consumed == 30
    assert not client.exists(orphan.key)
    assert pending_alerts(client, survey) == 30
