"""The local servers started by ops/services.py answer real requests.

Each test talks to a server over its socket, as boom-tasks does; the ``services``
fixture (tests/conftest.py) has run ``ops/services.py up`` with config/test.yaml.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import dramatiq
import pymongo
import pytest
import redis
from confluent_kafka import Consumer, Producer
from dramatiq.results import ResultTimeout

from boom_tasks.broker import setup_broker
from tests.conftest import ROOT, TEST_CONFIG

SERVICES = ROOT / "ops" / "services.py"

pytestmark = pytest.mark.services


def run_services(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SERVICES), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "BOOM_CONFIG": str(TEST_CONFIG)},
        timeout=300,
    )


def test_valkey_is_durable_and_never_evicts(services) -> None:
    # Given the Valkey server of the test configuration
    client = redis.Redis.from_url(services.valkey.url, decode_responses=True)

    # When we ask it for its persistence and eviction settings
    pong = client.ping()
    config = client.config_get("appendonly") | client.config_get("maxmemory-policy")

    # Then it answers, journals every write and refuses writes rather than evict keys
    assert pong is True
    assert config == {"appendonly": "yes", "maxmemory-policy": "noeviction"}
    assert client.info("persistence")["aof_enabled"] == 1
    client.close()


def test_kafka_round_trips_a_message(services, unique) -> None:
    # Given a topic nobody has used (auto-created on first write)
    bootstrap = services.kafka.bootstrap_servers
    topic = f"test-services-{unique}"

    # When one message is produced and a new consumer group reads from the start
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=b"k", value=b"hello " + unique.encode())
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-services-{unique}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        msg = None
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                break
    finally:
        consumer.close()

    # Then the consumer gets that message back
    assert msg is not None and msg.error() is None
    assert (msg.key(), msg.value()) == (b"k", b"hello " + unique.encode())


def test_mongo_round_trips_a_document(mongo_db, unique) -> None:
    # Given an empty collection of the test database
    coll = mongo_db[f"test_services_{unique}"]

    # When a document is inserted
    coll.insert_one({"_id": 42, "objectId": "ZTF24aaaaaaa", "mag": [18.5, 18.7]})

    # Then it reads back unchanged, and a second insert of the same _id is refused
    assert coll.find_one({"_id": 42}) == {
        "_id": 42,
        "objectId": "ZTF24aaaaaaa",
        "mag": [18.5, 18.7],
    }
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        coll.insert_one({"_id": 42})


def test_status_lists_every_server_up(services) -> None:
    # When the status of the test configuration's servers is asked
    proc = run_services("status")

    # Then it succeeds with one "up" line per server, with its port
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = {line.split()[0]: line.split() for line in proc.stdout.splitlines()}
    assert set(lines) == {"valkey", "kafka", "mongo"}
    assert all(fields[1] == "up" for fields in lines.values())
    assert lines["valkey"][2].endswith(f":{services.valkey.port}")
    assert lines["kafka"][2] == services.kafka.bootstrap_servers


def test_second_up_reuses_running_servers(services) -> None:
    # Given servers already up (the fixture started or found them)
    before = run_services("status").stdout

    # When `up` runs again
    proc = run_services("up")

    # Then it succeeds, starts nothing and leaves the same processes running
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.count("reusing it") == 3, proc.stderr
    assert "started pid" not in proc.stderr
    assert run_services("status").stdout == before


def test_a_result_is_awaited_past_redis_py_s_default_socket_timeout(services, unique) -> None:
    # Given a message no worker takes (redis-py 8 reads with a 5 s socket timeout)
    broker = setup_broker(services)
    queue = f"probe_{unique}"

    @dramatiq.actor(broker=broker, queue_name=queue, store_results=True)
    def probe() -> int:
        return 1

    message = probe.send()
    # When its result is awaited for 7 s, as a replay awaits a slice's result
    started = time.monotonic()
    with pytest.raises(ResultTimeout):
        message.get_result(block=True, timeout=7000)
    # Then the wait ran its course: no socket timeout cut it short at 5 s
    assert time.monotonic() - started >= 6.5
    broker.client.delete(f"dramatiq:{queue}", f"dramatiq:{queue}.msgs")
