"""Monitoring figures on real services: stage stats and passes in Valkey, the Dramatiq
queues as its Redis broker lays them out (dead letters requeued and deleted), the
bridge's consumer lag in Kafka, and new-pass counting in MongoDB.

The module uses Valkey database 7 of the test server, which it flushes: no other
test uses it, so the queue counts it checks are its own.
"""

from __future__ import annotations

import math
import time
import uuid

import numpy as np
import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results.backends import RedisBackend

from boom_tasks.monitor import stats
from boom_tasks.monitor.lag import consumer_lag
from boom_tasks.monitor.queues import (
    DeadLetterNotFound,
    dead_letters,
    delete_dead_letter,
    queue_counts,
    ready_messages,
    requeue_all_dead_letters,
    requeue_dead_letter,
)
from boom_tasks.services.kafka import consumer_config, ensure_topic, producer_config

VALKEY_DB = 7
QUEUE = "ztf_ingest"


@pytest.fixture
def valkey(services):
    client = redis.Redis(host=services.valkey.host, port=services.valkey.port, db=VALKEY_DB)
    client.flushdb()
    yield client
    client.flushdb()


# --- latency buckets (pure) ---------------------------------------------------------------


def test_every_latency_lies_in_its_bucket():
    for latency in [0.0, 0.005, 0.01, 0.0100001, 0.3, 1.0, 59.9, 3600.0, 1e6]:
        index = stats.bucket_of(latency)
        assert latency <= stats.bucket_edge(index) * (1 + 1e-12) or index == stats.LAST_BUCKET
        if index > 0 and index < stats.LAST_BUCKET:
            assert latency > stats.bucket_edge(index - 1)


def test_percentiles_from_buckets_are_within_one_bucket_of_the_exact_ones():
    rng = np.random.default_rng(7)
    latencies = rng.lognormal(mean=1.0, sigma=1.2, size=20_000)
    buckets: dict[int, int] = {}
    for x in latencies:
        buckets[stats.bucket_of(float(x))] = buckets.get(stats.bucket_of(float(x)), 0) + 1
    width = 2 ** (1 / stats.BUCKETS_PER_OCTAVE)
    for q in (50, 90, 95, 99):
        exact = float(np.percentile(latencies, q))
        approx = stats.percentile(buckets, q)
        assert approx is not None and exact <= approx * 1.000001 <= exact * width * 1.000001
    assert stats.percentile({}, 50) is None


# --- stage figures and passes in Valkey ----------------------------------------------------


def test_stage_counts_give_rates_and_latencies_per_minute(valkey):
    now = 1_800_000_000.0  # a minute boundary is at a multiple of 60
    start = math.floor(now / 60) * 60 - 5 * 60
    # Given 5 whole minutes with 600 alerts ingested each, 2 s after receipt, and 1 batch
    # of 30 this minute, 100 s after receipt
    for minute in range(5):
        t = start + minute * 60 + 10
        stats.record_stage(valkey, "ZTF", "ingested", 600, {"received": t - 2.0}, now=t)
    stats.record_stage(valkey, "ZTF", "ingested", 30, {"received": now - 100}, now=now)
    stats.record_stage(valkey, "ZTF", "received", 3030, {}, now=now)
    figures = {f.stage: f for f in stats.stage_figures(valkey, "ZTF", minutes=5, now=now)}
    ingested = figures["ingested"]
    # Then the rate over whole minutes is 10 alerts/s, the partial minute left out
    assert ingested.per_minute == [600] * 5 + [30]
    assert ingested.rate() == pytest.approx(10.0) and ingested.rate(1) == pytest.approx(10.0)
    # And the median latency is the 2 s bucket, the 99.5th that of 100 s
    assert 2.0 <= ingested.percentile(50) < 2.0 * 2**0.25
    assert 100.0 <= ingested.percentile(99.5) < 100.0 * 2**0.25
    # And the bridge's count has no latency; later stages with nothing show zeros
    assert figures["received"].per_minute[-1] == 3030 and figures["received"].buckets == {}
    assert figures["published"].per_minute == [0] * 6 and figures["published"].rate() == 0.0
    # And the running totals hold everything, with the sum of latencies
    totals = {t.stage: t for t in stats.stage_totals(valkey, "ZTF")}
    assert totals["ingested"].count == 3030
    assert totals["ingested"].latency_sum == pytest.approx(600 * 5 * 2.0 + 30 * 100.0)


def test_passes_are_counted_per_hour_and_in_total(valkey):
    now = 1_800_003_600.0
    stats.record_passes(valkey, "ZTF", {"f1": 3, "f2": 0}, now=now - 3600)
    stats.record_passes(valkey, "ZTF", {"f1": 2, "f2": 5}, now=now)
    hours = stats.passes_per_hour(valkey, "ZTF", hours=3, now=now)
    assert [h for h, _ in hours] == [now - 7200, now - 3600, now]
    assert [counts for _, counts in hours] == [{}, {"f1": 3}, {"f1": 2, "f2": 5}]
    assert stats.passes_total(valkey, "ZTF") == {"f1": 5, "f2": 5}


def test_recording_on_a_dead_server_does_not_raise(caplog):
    # A stage must go on when its statistics cannot be written (port 1: nothing listens)
    dead = redis.Redis(port=1, socket_connect_timeout=0.5)
    stats.record_stage(dead, "ZTF", "ingested", 10, {"received": time.time()})
    stats.record_passes(dead, "ZTF", {"f": 1})
    # And says so
    assert "could not record ZTF ingested stats" in caplog.text
    assert "could not record ZTF filter pass stats" in caplog.text


# --- the Dramatiq queues -------------------------------------------------------------------


@pytest.fixture
def broker(services, valkey):
    url = f"redis://{services.valkey.host}:{services.valkey.port}/{VALKEY_DB}"
    broker = RedisBroker(url=url, namespace="dramatiq")
    broker.declare_queue(QUEUE)
    yield broker
    broker.close()


def _send(broker, *args, delay=None) -> Message:
    message = Message(queue_name=QUEUE, actor_name=QUEUE, args=args, kwargs={}, options={})
    return broker.enqueue(message, delay=delay)


def _counts(valkey):
    c = queue_counts(valkey, [QUEUE])[0]
    return c.ready, c.in_flight, c.delayed, c.dead


def test_queue_counts_follow_messages_through_their_states(broker, valkey):
    # Given three messages ready and one delayed for a minute
    first = _send(broker, "boom:ztf:batch:a", 3, 1.0)
    _send(broker, "boom:ztf:batch:b", 4, 2.0)
    _send(broker, "boom:ztf:batch:c", 5, 3.0)
    _send(broker, "boom:ztf:batch:d", 6, 4.0, delay=60_000)
    assert _counts(valkey) == (3, 0, 1, 0)
    assert [m.args for m in ready_messages(valkey, QUEUE, 10)] == [
        "('boom:ztf:batch:a', 3, 1.0)",
        "('boom:ztf:batch:b', 4, 2.0)",
        "('boom:ztf:batch:c', 5, 3.0)",
    ]
    # When a worker fetches one, it is in flight
    consumer = broker.consume(QUEUE, prefetch=1, timeout=1000)
    proxy = next(p for p in consumer if p is not None)
    assert proxy.message_id == first.message_id
    assert _counts(valkey) == (2, 1, 1, 0)
    # And when it fails for good, it is dead-lettered with its stored exception
    RedisBackend(client=valkey).store_exception(
        proxy._message, RuntimeError("batch is gone"), 60_000
    )
    consumer.nack(proxy)
    consumer.close()
    assert _counts(valkey) == (2, 0, 1, 1)
    [dead] = dead_letters(valkey, QUEUE, 10)
    assert dead.message_id == first.message_id and dead.actor == QUEUE
    assert dead.error == "RuntimeError: batch is gone"
    assert dead.died_at == pytest.approx(time.time(), abs=30)


def test_a_requeued_dead_letter_runs_again_with_its_retries_reset(broker, valkey):
    message = _send(broker, "boom:ztf:batch:x", 7, 9.0)
    consumer = broker.consume(QUEUE, prefetch=1, timeout=1000)
    proxy = next(p for p in consumer if p is not None)
    # A message that had been retried twice before it died
    proxy._message.options["retries"] = 2
    valkey.hset(
        f"dramatiq:{QUEUE}.msgs", proxy.options["redis_message_id"], proxy._message.encode()
    )
    consumer.nack(proxy)
    consumer.close()
    [dead] = dead_letters(valkey, QUEUE, 10)
    assert dead.retries == 2
    # When the operator requeues it
    new_id = requeue_dead_letter(valkey, QUEUE, dead.redis_id)
    # Then it is ready again, under a new broker id, same message, no retries counted
    assert _counts(valkey) == (1, 0, 0, 0)
    [ready] = ready_messages(valkey, QUEUE, 10)
    assert ready.redis_id == new_id != dead.redis_id
    assert ready.message_id == message.message_id and ready.retries == 0
    consumer = broker.consume(QUEUE, prefetch=1, timeout=1000)
    again = next(p for p in consumer if p is not None)
    consumer.ack(again)
    consumer.close()
    assert again.args == ("boom:ztf:batch:x", 7, 9.0) and "retries" not in again.options
    assert _counts(valkey) == (0, 0, 0, 0)
    # And a second requeue of the same dead letter finds nothing
    with pytest.raises(DeadLetterNotFound):
        requeue_dead_letter(valkey, QUEUE, dead.redis_id)


def test_dead_letters_are_deleted_or_all_requeued(broker, valkey):
    for i in range(3):
        _send(broker, f"boom:ztf:batch:{i}", 1, float(i))
    consumer = broker.consume(QUEUE, prefetch=1, timeout=1000)
    for _ in range(3):
        consumer.nack(next(p for p in consumer if p is not None))
    consumer.close()
    assert _counts(valkey) == (0, 0, 0, 3)
    newest = dead_letters(valkey, QUEUE, 10)[0]
    delete_dead_letter(valkey, QUEUE, newest.redis_id)
    with pytest.raises(DeadLetterNotFound):
        delete_dead_letter(valkey, QUEUE, newest.redis_id)
    assert _counts(valkey) == (0, 0, 0, 2)
    assert requeue_all_dead_letters(valkey, QUEUE) == 2
    assert _counts(valkey) == (2, 0, 0, 0)
    every = {repr((f"boom:ztf:batch:{i}", 1, float(i))) for i in range(3)}
    assert sorted(m.args for m in ready_messages(valkey, QUEUE, 10)) == sorted(
        every - {newest.args}
    )


# --- consumer lag ----------------------------------------------------------------------------


def test_consumer_lag_per_partition(services, unique):
    kafka = services.kafka
    topic, group = f"lag-{unique}", f"lag-group-{unique}"
    ensure_topic(kafka, topic, partitions=2)
    producer = Producer(producer_config(kafka))
    for partition, n in ((0, 5), (1, 3)):
        for i in range(n):
            producer.produce(topic, value=f"{i}".encode(), partition=partition)
    assert producer.flush(30) == 0
    # Given the group committed offset 2 on partition 0 and nothing on partition 1
    consumer = Consumer(consumer_config(kafka, group))
    consumer.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    consumer.close()
    lags = consumer_lag(kafka, group)
    assert [(p.topic, p.partition, p.committed, p.latest, p.lag) for p in lags] == [
        (topic, 0, 2, 5, 3),
        (topic, 1, None, 3, 3),
    ]
    assert consumer_lag(kafka, f"never-{uuid.uuid4().hex}") == []
