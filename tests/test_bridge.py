"""The bridge against real Kafka and Valkey, with a recording sender in place of Dramatiq."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from boom_tasks.batches import BatchRef, complete_batch, load_batch, pending_alerts
from boom_tasks.bridge.consumer import Bridge, TopicMissing
from boom_tasks.services.kafka import consumer_config, ensure_topic, producer_config
from boom_tasks.services.valkey import get_client
from boom_tasks.surveys.base import Survey
from boom_tasks.surveys.ztf import ZTF
from tests.alerts import packet_paths, read_packet

pytestmark = pytest.mark.services


def _survey(unique: str) -> Survey:
    # A private survey name keeps this test's pending counter apart from others'.
    return dataclasses.replace(ZTF, name=f"T{unique}", topic_template="t_{date}")


def _produce(settings, topic: str, packets: list[bytes], partitions: int = 2) -> None:
    ensure_topic(settings.kafka, topic, partitions)
    producer = Producer(producer_config(settings.kafka))
    for i, p in enumerate(packets):
        producer.produce(topic, p, partition=i % partitions)
    assert producer.flush(30) == 0


def _recording_sender(sent: list[BatchRef]):
    def send(ref: BatchRef, received_at: float) -> None:
        assert received_at <= time.time()
        sent.append(ref)

    return send


def run_in_background(bridge: Bridge) -> tuple[threading.Thread, list[BaseException]]:
    """Start ``bridge.run()`` in a daemon thread; return it and the list of what it raised.

    (Daemon: a bridge that never stops, the failure some tests look for, must not
    hold up the test run's end.)
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            bridge.run()
        except BaseException as e:  # the caller checks what it was
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def _with(settings, **bridge):
    return settings.model_copy(update={"bridge": settings.bridge.model_copy(update=bridge)})


def test_bridge_queues_every_packet_once_and_commits(services, unique):
    # Given 150 real packets on a two-partition topic
    packets = [read_packet(p) for p in packet_paths("fink-20181129")[:150]]
    topic = f"bridge-{unique}"
    _produce(services, topic, packets)
    sent: list[BatchRef] = []
    settings = _with(services, batch_size=40, batch_wait_s=0.3)
    survey = _survey(unique)
    # When the bridge runs to the end of the topic
    stats = Bridge(settings, survey, topic, _recording_sender(sent), exit_on_eof=True).run()
    # Then every packet went out exactly once, in batches of at most 40, each stored in Valkey
    valkey = get_client(services.valkey)
    stored = [p for ref in sent for p in load_batch(valkey, ref.key)]
    assert sorted(stored) == sorted(packets)
    assert stats.consumed == 150 and all(ref.count <= 40 for ref in sent)
    assert pending_alerts(valkey, survey) == 150
    # And the group's committed offsets are at the end of both partitions
    consumer = Consumer(
        consumer_config(services.kafka, f"{services.kafka.group_id}-{survey.queue_prefix}")
    )
    committed = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    consumer.close()
    assert sum(tp.offset for tp in committed) == 150
    # And completing the batches empties the backlog and marks them done
    for ref in sent:
        complete_batch(valkey, survey, ref.key)
        assert load_batch(valkey, ref.key) is None
    assert pending_alerts(valkey, survey) == 0


def test_bridge_pauses_under_backpressure_and_resumes(services, unique):
    # Given a backlog limit of 30 alerts and nobody ingesting
    packets = [read_packet(p) for p in packet_paths("fink-20181129")[:120]]
    topic = f"bp-{unique}"
    _produce(services, topic, packets, partitions=1)
    settings = _with(
        services, batch_size=20, batch_wait_s=0.2, max_queued_alerts=30, resume_queued_alerts=10
    )
    survey = _survey(unique)
    sent: list[BatchRef] = []
    bridge = Bridge(settings, survey, topic, _recording_sender(sent), exit_on_eof=True)
    runner = threading.Thread(target=bridge.run)
    runner.start()
    # When the backlog exceeds the limit, Then the bridge pauses and stops queueing
    deadline = time.monotonic() + 30
    while not bridge.paused and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bridge.paused
    time.sleep(1.0)
    queued_while_paused = sum(r.count for r in sent)
    assert queued_while_paused <= 30 + 20 + 20  # at most the limit plus the batches in flight
    # When a consumer drains the backlog, Then it resumes and delivers everything
    valkey = get_client(services.valkey)
    while runner.is_alive():
        for ref in list(sent):
            complete_batch(valkey, survey, ref.key)
        time.sleep(0.1)
    runner.join()
    assert bridge.stats.pauses >= 1
    assert sum(r.count for r in sent) == 120


def test_missing_topic_with_exit_on_eof_is_a_clear_error(services, unique):
    bridge = Bridge(
        services, _survey(unique), f"absent-{unique}", _recording_sender([]), exit_on_eof=True
    )
    with pytest.raises(TopicMissing, match="does not exist"):
        bridge.run()


def test_unreachable_kafka_is_retried_with_clear_messages_and_sigterm_exits_0(services):
    # Given a bridge pointed at a port where no Kafka listens
    env = {
        **os.environ,
        "BOOM_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "BOOM_BRIDGE__RETRY_BACKOFF_S": "0.2",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "boom_tasks.bridge", "ZTF", "--date", "20240617"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    # (read its log as it goes: on a loaded machine a fixed sleep may see one attempt only)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 90
    while sum("attempt" in line for line in lines) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    # When it is asked to stop
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    reader.join(timeout=10)
    err = "".join(lines)
    # Then it logged clear retry lines (no traceback) and exited 0
    assert proc.returncode == 0, err
    assert "connecting to Kafka at 127.0.0.1:1 failed" in err and "retrying in" in err
    assert err.count("attempt") >= 2
    assert "Traceback" not in err


def test_a_bridge_asked_to_stop_while_valkey_is_down_stops_and_loses_nothing(
    services, unique, caplog
):
    # Given alerts on a topic and a bridge whose Valkey does not answer
    packets = [read_packet(p) for p in packet_paths("fink-20181129")[:6]]
    topic = f"novalkey-{unique}"
    _produce(services, topic, packets, partitions=1)
    survey = _survey(unique)
    down = services.model_copy(update={"valkey": services.valkey.model_copy(update={"port": 1})})
    down = _with(down, batch_wait_s=0.2, retry_backoff_s=0.1, max_backoff_s=0.2)
    bridge = Bridge(down, survey, topic, _recording_sender([]))
    thread, errors = run_in_background(bridge)
    deadline = time.monotonic() + 60
    while "storing a batch in Valkey failed" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "storing a batch in Valkey failed" in caplog.text
    # When it is asked to stop while it retries
    bridge.request_stop()
    thread.join(timeout=10)
    # Then it stops at once, without an error, saying its alerts stay in Kafka
    assert not thread.is_alive() and not errors
    assert "alerts stay uncommitted in Kafka for the next bridge" in caplog.text
    # And the next bridge, with Valkey up, gets every alert: nothing was committed
    sent: list[BatchRef] = []
    settings = _with(services, batch_wait_s=0.2)
    Bridge(settings, survey, topic, _recording_sender(sent), exit_on_eof=True).run()
    assert sum(r.count for r in sent) == len(packets)
    for ref in sent:
        complete_batch(get_client(services.valkey), survey, ref.key)
