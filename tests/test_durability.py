"""Durable hand-offs on the real servers: no offset commit and no ack before the data is on disk.

Valkey's own command statistics (``INFO commandstats``) and pymongo's command
monitoring show each durability wait; they are read at the moment of each Kafka
commit and of each Dramatiq ack.
"""

from __future__ import annotations

import time

import pymongo
import pytest
from confluent_kafka import Consumer, TopicPartition
from dramatiq import Worker
from dramatiq.middleware import Middleware
from pymongo import monitoring
from pymongo.errors import BulkWriteError

import boom_tasks.bridge.consumer as bridge_module
from boom_tasks.batches import BatchRef, complete_batch
from boom_tasks.bridge.consumer import Bridge
from boom_tasks.broker import setup_broker
from boom_tasks.chain import CHAIN, declare_chain
from boom_tasks.errors import NotDurable
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.replay.producer import produce_packets
from boom_tasks.services import mongo as mongo_service
from boom_tasks.services.mongo import check_durable, get_db
from boom_tasks.services.valkey import get_client, wait_durable
from boom_tasks.surveys.ztf import ZTF
from tests.alerts import packet_paths, read_packet
from tests.test_bridge import run_in_background

pytestmark = pytest.mark.services

WRITE_COMMANDS = {"insert", "update", "delete", "findAndModify"}


def waitaof_calls(client) -> int:
    """Return how many WAITAOF commands the server has run (its own statistics)."""
    return int(client.info("commandstats").get("cmdstat_waitaof", {}).get("calls", 0))


def test_wait_durable_issues_waitaof_and_refuses_what_it_cannot_confirm(services):
    client = get_client(services.valkey)
    # Given the default settings (local AOF fsync), When a hand-off waits
    before = waitaof_calls(client)
    wait_durable(client, services.valkey, "a test write")
    # Then the server ran one WAITAOF
    assert waitaof_calls(client) == before + 1
    # And with durability off, no wait is issued at all
    off = services.valkey.model_copy(update={"durable_local": False})
    wait_durable(client, off, "a test write")
    assert waitaof_calls(client) == before + 1
    # And a replica that does not exist is never confirmed: NotDurable after the timeout
    replica = services.valkey.model_copy(update={"durable_replicas": 1, "durable_timeout_ms": 200})
    started = time.monotonic()
    with pytest.raises(NotDurable, match="0 replica"):
        wait_durable(client, replica, "a test write")
    assert 0.15 < time.monotonic() - started < 5


def test_a_write_concern_failure_is_not_taken_for_done():
    # A bulk write whose documents went in (or were duplicates) but whose write concern
    # failed must be retried: it is not durable
    error = BulkWriteError(
        {
            "writeErrors": [{"index": 0, "code": 11000, "errmsg": "duplicate"}],
            "writeConcernErrors": [{"code": 64, "errmsg": "waiting for replication timed out"}],
        }
    )
    with pytest.raises(NotDurable, match="replication timed out"):
        check_durable(error, "alerts")
    check_durable(BulkWriteError({"writeErrors": [], "writeConcernErrors": []}), "alerts")


class _Recorder(monitoring.CommandListener):
    def __init__(self) -> None:
        self.writes: list[dict] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in WRITE_COMMANDS:
            self.writes.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def test_stage_writes_are_journaled(mongo_db, services):
    # Given the broker's database handle, watched by pymongo's command monitoring
    recorder = _Recorder()
    client = pymongo.MongoClient(services.mongo.uri, event_listeners=[recorder])
    db = client.get_database(
        services.mongo.database, write_concern=mongo_service.write_concern(services.mongo)
    )
    # When a batch of real alerts is ingested
    packets = [read_packet(p) for p in packet_paths("kowalski")]
    ingest_packets(db, ZTF, packets, "durability")
    # Then every write the stage sent asked for the journal (j: true)
    assert len(recorder.writes) >= 3
    assert all(w.get("writeConcern", {}).get("j") is True for w in recorder.writes)
    # And the broker's own handle is configured the same way
    assert get_db(services.mongo).write_concern.document == {"j": True}
    client.close()


class _CommittingConsumer(Consumer):
    """A Kafka consumer that notes Valkey's WAITAOF count at each offset commit."""

    at_commit: list[int] = []
    valkey = None

    def commit(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        type(self).at_commit.append(waitaof_calls(type(self).valkey))
        return super().commit(*args, **kwargs)


def _bridge(settings, topic: str, sent: list[BatchRef]) -> Bridge:
    return Bridge(settings, ZTF, topic, lambda ref, _at: sent.append(ref), exit_on_eof=True)


@pytest.fixture
def sent(services):
    """The batches a test's bridge queued; completed afterwards, so no ingest waits for them."""
    refs: list[BatchRef] = []
    yield refs
    client = get_client(services.valkey)
    for ref in refs:
        complete_batch(client, ZTF, ref.key)


def test_the_bridge_commits_offsets_only_after_valkey_confirms(services, unique, monkeypatch, sent):
    # Given 12 real alerts on a topic, and a bridge batching 5 at a time
    topic = f"durable-{unique}"
    produce_packets(services, topic, [read_packet(p) for p in packet_paths("kowalski")[:12]])
    settings = services.model_copy(
        update={
            "bridge": services.bridge.model_copy(update={"batch_size": 5, "batch_wait_s": 0.2}),
            "kafka": services.kafka.model_copy(update={"group_id": f"g-{unique}"}),
        }
    )
    valkey = get_client(services.valkey)
    _CommittingConsumer.at_commit, _CommittingConsumer.valkey = [], valkey
    monkeypatch.setattr(bridge_module, "Consumer", _CommittingConsumer)
    before = waitaof_calls(valkey)
    # When it runs to the end of the topic
    _bridge(settings, topic, sent).run()
    # Then each of its 3 commits came after one more WAITAOF than the one before
    assert len(sent) == 3 and sum(r.count for r in sent) == 12
    assert [n - before for n in _CommittingConsumer.at_commit] == [1, 2, 3]


def test_the_bridge_never_commits_what_valkey_cannot_confirm(services, unique, sent, caplog):
    # Given a bridge that requires a Valkey replica this deployment does not have
    topic = f"undurable-{unique}"
    produce_packets(services, topic, [read_packet(p) for p in packet_paths("kowalski")[:3]])
    settings = services.model_copy(
        update={
            "valkey": services.valkey.model_copy(
                update={"durable_replicas": 1, "durable_timeout_ms": 100}
            ),
            "bridge": services.bridge.model_copy(
                update={"batch_wait_s": 0.2, "retry_backoff_s": 0.1, "max_backoff_s": 0.2}
            ),
            "kafka": services.kafka.model_copy(update={"group_id": f"g-{unique}"}),
        }
    )
    # When it has retried the confirmation for a while, and is then stopped
    bridge = _bridge(settings, topic, sent)
    thread, errors = run_in_background(bridge)
    time.sleep(4)
    bridge.request_stop()
    thread.join(timeout=30)
    # Then the batch was queued, but its offsets were never committed: Kafka keeps it,
    # and the bridge stopped as asked (no error: nothing is lost), saying so
    assert sent and not errors and not thread.is_alive()
    assert "alerts stay uncommitted in Kafka for the next bridge" in caplog.text
    conf = {"bootstrap.servers": services.kafka.bootstrap_servers, "group.id": f"g-{unique}"}
    probe = Consumer(conf)
    (committed,) = probe.committed([TopicPartition(topic, 0)], timeout=10)
    probe.close()
    assert committed.offset < 0  # no committed offset


class _AckLog(Middleware):
    """Note Valkey's WAITAOF count when each message starts and when it is acked.

    Dramatiq acks a failed message too, once its Retries middleware has enqueued the
    retry: ``succeeded`` tells the acks of work done from those of work to redo.
    """

    def __init__(self, valkey) -> None:
        self.valkey = valkey
        self.started: dict[str, int] = {}
        self.acked: list[tuple[str, int, int]] = []
        self.failed: list[tuple[str, BaseException]] = []
        self.succeeded: set[str] = set()

    def before_process_message(self, broker, message) -> None:  # type: ignore[no-untyped-def]
        self.started[message.message_id] = waitaof_calls(self.valkey)

    def before_ack(self, broker, message) -> None:  # type: ignore[no-untyped-def]
        if message.message_id in self.succeeded:
            start = self.started.get(message.message_id, -1)
            self.acked.append((message.queue_name, start, waitaof_calls(self.valkey)))

    def after_process_message(  # type: ignore[no-untyped-def]
        self, broker, message, *, result=None, exception=None
    ) -> None:
        if exception is not None:
            self.failed.append((message.queue_name, exception))
        else:
            self.succeeded.add(message.message_id)


STAGE_QUEUES = [f"ztf_{stage.name}" for stage in CHAIN]


@pytest.fixture
def in_process(services):
    """Queues left empty after a test that runs stages in this process."""
    yield
    import redis

    client = redis.Redis.from_url(services.valkey.url)
    for queue in STAGE_QUEUES:
        client.delete(*(f"dramatiq:{queue}{s}" for s in ("", ".msgs", ".DQ", ".DQ.msgs", ".XQ")))


def _run_worker(broker, until, timeout: float = 120) -> None:
    worker = Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        worker.stop()


def test_a_stage_acks_only_after_its_next_message_is_durable(
    mongo_db, services, monkeypatch, in_process
):
    # Given the real chain on Valkey in this process, and real alerts ingested
    monkeypatch.setattr(mongo_service, "_client", None)  # a client of this test's own
    broker = setup_broker(services)
    log = _AckLog(get_client(services.valkey))
    broker.add_middleware(log)
    actors = declare_chain(broker, [ZTF], services)["ZTF"]
    for queue in ("ztf_crossmatch", "ztf_ml", "ztf_filter", "ztf_output"):
        broker.flush(queue)
    result = ingest_packets(mongo_db, ZTF, [read_packet(p) for p in packet_paths("kowalski")], "t")
    # When a worker takes the batch from crossmatch through ML and the filter stage
    actors["crossmatch"].send(result.candids, {"received": time.time()})
    _run_worker(broker, lambda: {q for q, *_ in log.acked} >= {"ztf_crossmatch", "ztf_ml"})
    # Then each stage that handed on was acked only after a WAITAOF issued while it ran
    handed_on = [a for a in log.acked if a[0] in ("ztf_crossmatch", "ztf_ml")]
    assert len(handed_on) == 2, log.acked
    for queue, started, at_ack in handed_on:
        assert at_ack > started >= 0, (queue, started, at_ack)
    assert not log.failed


def test_a_stage_whose_hand_off_cannot_be_confirmed_is_retried_not_acked(
    mongo_db, services, monkeypatch, in_process
):
    # Given stages that require a Valkey replica this deployment does not have
    monkeypatch.setattr(mongo_service, "_client", None)
    valkey = services.valkey.model_copy(update={"durable_replicas": 1, "durable_timeout_ms": 100})
    settings = services.model_copy(update={"valkey": valkey})
    broker = setup_broker(settings)
    log = _AckLog(get_client(services.valkey))
    broker.add_middleware(log)
    actors = declare_chain(broker, [ZTF], settings)["ZTF"]
    broker.flush("ztf_crossmatch")
    result = ingest_packets(mongo_db, ZTF, [read_packet(p) for p in packet_paths("kowalski")], "t")
    # When a worker takes a crossmatch message
    actors["crossmatch"].send(result.candids, {"received": time.time()})
    _run_worker(broker, lambda: len(log.failed) >= 2, timeout=60)
    # Then the stage failed with NotDurable and was retried (a redelivered copy failed
    # again), and no attempt was acknowledged as done
    assert len(log.failed) >= 2
    assert all(isinstance(e, NotDurable) for _, e in log.failed)
    assert [a for a in log.acked if a[0] == "ztf_crossmatch"] == []


def test_ingest_whose_writes_mongodb_cannot_confirm_is_not_done(mongo_db, services):
    from pymongo.write_concern import WriteConcern

    # Given a write concern this standalone server cannot satisfy (two data-bearing
    # members, as a replica set would give), with a short timeout
    unconfirmable = mongo_db.client.get_database(
        mongo_db.name, write_concern=WriteConcern(w=2, wtimeout=200)
    )
    packets = [read_packet(p) for p in packet_paths("kowalski")[:5]]
    # When a batch is ingested, Then it is not reported done: NotDurable, to retry
    with pytest.raises(NotDurable, match="not confirm"):
        ingest_packets(unconfirmable, ZTF, packets, "unconfirmed")
    # And the retry, once the server confirms, stores each alert once
    result = ingest_packets(get_db(services.mongo), ZTF, packets, "retried")
    assert len(result.added) + len(result.existing) == 5
    assert mongo_db[ZTF.alerts].count_documents({}) == 5
