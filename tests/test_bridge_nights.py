"""A long-running bridge follows the nights: one process, night N's topic then night N+1's."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time

import pytest
from confluent_kafka import Producer

from boom_tasks.batches import BatchRef, load_batch
from boom_tasks.bridge.consumer import Bridge
from boom_tasks.bridge.nights import NightFollower, follows_nights, night_of
from boom_tasks.services.kafka import ensure_topic, producer_config
from boom_tasks.services.valkey import get_client
from boom_tasks.surveys.lsst import LSST
from boom_tasks.surveys.ztf import ZTF
from tests.alerts import packet_paths, read_packet


def test_which_bridges_follow_the_nights(settings) -> None:
    assert follows_nights(settings, ZTF, None, None, exit_on_eof=False)
    # A fixed night, a fixed topic or a run to the end of the topic does not move.
    assert not follows_nights(settings, ZTF, "20240617", None, exit_on_eof=False)
    assert not follows_nights(settings, ZTF, None, "my_topic", exit_on_eof=False)
    assert not follows_nights(settings, ZTF, None, None, exit_on_eof=True)
    # One topic for every night: nothing to follow.
    assert not follows_nights(settings, LSST, None, None, exit_on_eof=False)
    assert (
        night_of(dt.datetime(2024, 6, 17, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=-7))))
        == "20240618"
    )


def _produce(settings, topic: str, packets: list[bytes]) -> None:
    producer = Producer(producer_config(settings.kafka))
    for p in packets:
        producer.produce(topic, p)
    assert producer.flush(30) == 0


def _wait(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.services
def test_bridge_moves_to_the_next_nights_topic_and_finishes_the_previous(services, unique) -> None:
    # Given a survey naming a topic per night, both nights' topics, and a clock at 23:59:50
    survey = dataclasses.replace(ZTF, name=f"T{unique}", topic_template=f"n{unique}_{{date}}")
    night1, night2 = survey.topic("20240617"), survey.topic("20240618")
    for topic in (night1, night2):
        ensure_topic(services.kafka, topic, 1)
    packets = [read_packet(p) for p in packet_paths("fink-20181129")[:60]]
    first, late, second = packets[:30], packets[30:35], packets[35:]
    _produce(services, night1, first)
    now = [dt.datetime(2024, 6, 17, 23, 59, 50, tzinfo=dt.UTC)]
    nights = NightFollower(topic_of=survey.topic, grace_s=60.0, clock=lambda: now[0])
    sent: list[BatchRef] = []
    bridge_settings = services.bridge.model_copy(update={"batch_size": 10, "batch_wait_s": 0.2})
    settings = services.model_copy(update={"bridge": bridge_settings})
    bridge = Bridge(settings, survey, night1, lambda ref, _t: sent.append(ref), nights=nights)
    runner = threading.Thread(target=bridge.run)
    runner.start()
    try:
        queued = lambda: sum(ref.count for ref in sent)  # noqa: E731
        # When night 1's alerts are consumed and the clock crosses midnight UTC
        _wait(lambda: queued() == 30)
        now[0] = dt.datetime(2024, 6, 18, 0, 0, 5, tzinfo=dt.UTC)
        _wait(lambda: bridge.topics == [night1, night2])
        # And late packets reach night 1's topic while night 2's arrive on its own
        _produce(services, night1, late)
        _produce(services, night2, second)
        _wait(lambda: queued() == 60)
        # Then night 1 is kept through the grace period, and let go after it
        assert bridge.topics == [night1, night2]
        now[0] += dt.timedelta(seconds=61)
        _wait(lambda: bridge.topics == [night2])
        assert runner.is_alive()
    finally:
        bridge.request_stop()
        runner.join(timeout=60)
    # And every alert of both nights was queued once, by this one bridge
    valkey = get_client(services.valkey)
    stored = [p for ref in sent for p in load_batch(valkey, ref.key)]
    assert sorted(stored) == sorted(packets)
    assert bridge.topic == night2 and bridge.night == "20240618"
