"""End to end on real services: Kafka → bridge → Dramatiq worker (subprocess) → MongoDB."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from boom_tasks.chain import CHAIN
from boom_tasks.replay.producer import produce_packets
from boom_tasks.surveys.ztf import ZTF
from boom_tasks.surveys.ztf.synth import synth_alerts
from tests.alerts import packet_paths, read_packet, reference_record
from tests.chainrun import orphan_batches
from tests.conftest import ROOT, ZTF_DATA

pytestmark = pytest.mark.services

BIN = Path(sys.executable).parent


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


@pytest.fixture(scope="module")
def worker(services, tmp_path_factory):
    """A real ``dramatiq boom_tasks.actors`` worker process on the test configuration.

    Its log goes to a file (``proc.log_path``): a pipe nobody reads would fill and block it.
    """
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(BIN / "dramatiq"), "boom_tasks.actors", "--processes", "1", "--threads", "2"],
            cwd=ROOT,
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    proc.log_path = log_path  # type: ignore[attr-defined]
    yield proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def db(mongo_db):
    return mongo_db


def _bridge(topic: str, *extra: str, group: str | None = None, **env: str) -> subprocess.Popen:
    env = _env(**({"BOOM_KAFKA__GROUP_ID": group} if group else {}), **env)
    return subprocess.Popen(
        [str(BIN / "boom-bridge"), "ZTF", "--topic", topic, *extra],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(db, collection: str, n: int, timeout: float = 180, query=None) -> int:
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        count = db[collection].count_documents(query or {})
        if count >= n:
            return count
        time.sleep(0.25)
    return count


def _run_bridge_to_end(topic: str, group: str | None = None, **env: str) -> str:
    proc = _bridge(topic, "--exit-on-eof", group=group, **env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return err


def test_a_night_flows_from_kafka_to_mongodb_and_replays_without_duplicates(worker, db, unique):
    # Given a night of real alerts, with corrupt packets, produced to Kafka by the replay producer
    date = "20181129"
    topic = f"{ZTF.topic(date)}-{unique}"
    sources = [*packet_paths("fink-20181129"), *packet_paths("kowalski"), *packet_paths("corrupt")]
    packets = [read_packet(p) for p in sources]
    produce_packets(topic=topic, packets=iter(packets), settings=None, progress=False)
    # When the bridge consumes the topic and the worker ingests it
    err = _run_bridge_to_end(topic)
    n_good = len(packets) - 2
    assert _wait_for(db, ZTF.alerts, n_good) == n_good, err
    assert _wait_for(db, ZTF.quarantine, 2) == 2
    # Then every alert is stored field by field as in the Avro input
    for packet in packets[:-2]:
        rec = reference_record(packet)
        doc = db[ZTF.alerts].find_one({"_id": rec["candid"]})
        assert doc is not None and doc["objectId"] == rec["objectId"]
        assert doc["candidate"]["jd"] == rec["candidate"]["jd"]
        assert doc["candidate"]["magpsf"] == rec["candidate"]["magpsf"]
        assert (
            db[ZTF.cutouts].find_one({"_id": rec["candid"]})["cutoutDifference"]
            == rec["cutoutDifference"]["stampData"]
        )
    # And the chain went on: crossmatch (no catalog loaded here: empty matches) then ML
    assert _wait_for(db, ZTF.alerts, n_good, query={"enriched_at": {"$exists": True}}) == n_good
    _wait_idle(db)
    assert db[ZTF.aux].count_documents({"cross_matches": {}}) == db[ZTF.aux].count_documents({})
    enriched = db[ZTF.alerts].find_one({"candidate.drb": {"$exists": True}})
    assert set(enriched["properties"]) >= {"star", "near_brightstar", "rock", "photstats"}
    assert isinstance(enriched["classifications"]["anomaly_score"], float)
    snapshot = {
        c: sorted(db[c].find(), key=lambda d: str(d["_id"]))
        for c in (ZTF.alerts, ZTF.aux, ZTF.cutouts)
    }
    # When the same night is replayed by a fresh consumer group
    _run_bridge_to_end(topic, group=f"replay-{unique}")
    time.sleep(3)  # let the worker finish the replayed batches
    _wait_idle(db)
    # Then nothing changed: no duplicate alert, no duplicate history point
    after = {c: sorted(db[c].find(), key=lambda d: str(d["_id"])) for c in snapshot}
    assert after == snapshot
    assert db[ZTF.quarantine].count_documents({}) == 2


def services_settings():
    from boom_tasks.settings import get_settings

    return get_settings()


def _committed(settings, topic: str) -> int:
    """Offsets the bridge's consumer group has committed on a one-partition topic."""
    from confluent_kafka import Consumer, TopicPartition

    from boom_tasks.services.kafka import consumer_config

    consumer = Consumer(consumer_config(settings.kafka, f"{settings.kafka.group_id}-ztf"))
    [tp] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
    consumer.close()
    return max(tp.offset, 0)


def _wait_idle(db, timeout: float = 60) -> None:
    """Wait until no batch waits for ingest and every stage's queue is empty."""
    import redis

    from boom_tasks.settings import get_settings

    client = redis.Redis.from_url(get_settings().valkey.url)
    # Dramatiq keeps each message in <queue>.msgs until it is acknowledged.
    stages = [f"dramatiq:{ZTF.queue_prefix}_{s}.msgs" for s in (stage.name for stage in CHAIN)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = client.hlen(f"boom:{ZTF.queue_prefix}:pending") + sum(client.hlen(k) for k in stages)
        if not busy:
            return
        time.sleep(0.2)
    raise AssertionError("the pipeline's queues did not drain")


def test_killing_the_bridge_mid_run_loses_nothing(worker, db, unique):
    # Given 1,500 alerts generated from the real ones
    topic = f"kill-{unique}"
    n = 1500
    produce_packets(
        topic=topic,
        packets=synth_alerts(ZTF_DATA / "fink-20181129", n, seed=7),
        settings=None,
        progress=False,
    )
    # (a small backlog limit keeps the bridge from racing to the end before the kill)
    env_small = {
        "BOOM_BRIDGE__BATCH_SIZE": "50",
        "BOOM_BRIDGE__MAX_QUEUED_ALERTS": "200",
        "BOOM_BRIDGE__RESUME_QUEUED_ALERTS": "100",
    }
    # When the bridge is killed (SIGKILL: no clean shutdown) after ingestion has begun
    proc = subprocess.Popen(
        [str(BIN / "boom-bridge"), "ZTF", "--topic", topic],
        cwd=ROOT,
        env=_env(**env_small),
        stderr=subprocess.DEVNULL,
    )
    assert _wait_for(db, ZTF.alerts, 100, timeout=120) >= 100
    proc.kill()
    proc.wait()
    assert 0 < _committed(services_settings(), topic) < n, "the kill should land mid-run"
    # And restarted in the same consumer group until the end of the topic (a batch no
    # message names, older than a second, is an orphan to it)
    _run_bridge_to_end(topic, BOOM_BRIDGE__ORPHAN_AFTER_S="1")
    # Then every alert is in MongoDB exactly once
    assert _wait_for(db, ZTF.alerts, n) == n
    assert len(db[ZTF.alerts].distinct("_id")) == n
    # And no batch is left pending that no message names: a kill between storing a
    # batch and sending it leaves one (its alerts consumed again), which the restarted
    # bridge reaps
    assert orphan_batches(ZTF) == []


def test_sigterm_finishes_the_batch_in_hand_and_exits_0(worker, db, unique):
    topic = f"term-{unique}"
    produce_packets(
        topic=topic,
        packets=synth_alerts(ZTF_DATA / "kowalski", 400, seed=3),
        settings=None,
        progress=False,
    )
    proc = _bridge(topic)
    assert _wait_for(db, ZTF.alerts, 1, timeout=120) >= 1
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "finishing the batch in hand" in err
    # Everything the bridge committed was queued: a restart delivers the rest, nothing lost
    _run_bridge_to_end(topic)
    assert _wait_for(db, ZTF.alerts, 400) == 400


def test_a_message_whose_batch_vanished_is_dead_lettered_loudly(worker, db):
    # Given an ingest message whose batch is not in Valkey (expired or flushed)
    import redis

    from boom_tasks.broker import setup_broker
    from boom_tasks.chain import declare_chain
    from boom_tasks.settings import get_settings

    settings = get_settings()
    client = redis.Redis.from_url(settings.valkey.url)
    ingest = declare_chain(setup_broker(settings), [ZTF], settings)["ZTF"]["ingest"]
    message = ingest.send(f"boom:ztf:batch:vanished-{time.time_ns()}", 5, time.time())
    # When the worker processes it, Then it is not retried but dead-lettered at once
    # (Dramatiq's Redis broker keys its dead letters by its own id for the message)
    dead_id = message.options["redis_message_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if client.zscore("dramatiq:ztf_ingest.XQ", dead_id) is not None:
            break
        time.sleep(0.2)
    assert client.zscore("dramatiq:ztf_ingest.XQ", dead_id) is not None
    # And the worker's log says what was lost and how to recover it
    log = worker.log_path.read_text()
    assert "is gone from Valkey before ingestion" in log and "replay" in log
