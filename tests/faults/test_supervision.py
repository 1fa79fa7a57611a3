"""Supervised workers on the real servers: a killed worker is replaced, its message comes back.

``boom-workers`` runs each ``dramatiq`` process in a slot of its own; the fault
hooks (``tests/faults/hooks.py``) trace each message's start and end in Valkey
and hold each crossmatch message a few seconds, so the test can SIGKILL the
process that holds it and time its redelivery.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from boom_tasks.broker import setup_broker
from boom_tasks.chain import declare_chain
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.services.valkey import get_client
from boom_tasks.settings import WorkerSettings
from boom_tasks.surveys.ztf import ZTF
from boom_tasks.workers.recovery import requeue_worker
from boom_tasks.workers.supervise import next_backoff
from tests.alerts import packet_paths, read_packet
from tests.chainrun import drained
from tests.faults import procs
from tests.faults.hooks import read_trace

pytestmark = pytest.mark.services

#: Redelivery bound of issue 11 (seconds from a worker's death to its message's restart).
REDELIVERY_BOUND_S = 90


def test_restart_backoff_doubles_on_quick_deaths_and_resets_after_a_stable_run():
    worker = WorkerSettings(restart_backoff_s=1, max_restart_backoff_s=5, stable_after_s=60)
    # Given a first death, Then the base wait; each quick death after it doubles, capped
    assert next_backoff(0, 2, worker) == 1
    assert [next_backoff(b, 2, worker) for b in (1, 2, 4)] == [2, 4, 5]
    # And a process that ran a while starts again from the base wait
    assert next_backoff(5, 61, worker) == 1


def test_requeue_worker_puts_back_only_messages_still_unacknowledged(services, clean_chain):
    client = get_client(services.valkey)
    # Given a dead worker that had fetched two messages, one of them since acknowledged
    acks = "dramatiq:__acks__.dead-test-worker.ztf_ml"
    client.sadd(acks, "m1", "m2")
    client.hset("dramatiq:ztf_ml.msgs", "m1", b"body")
    client.zadd("dramatiq:__heartbeats__", {"dead-test-worker": 1})
    # When its messages are requeued
    moved = requeue_worker(client, "dramatiq", "dead-test-worker")
    # Then the unacknowledged one is first in its queue, and the worker is forgotten
    assert moved == 1
    assert client.lrange("dramatiq:ztf_ml", 0, -1) == [b"m1"]
    assert not client.exists(acks)
    assert client.zscore("dramatiq:__heartbeats__", "dead-test-worker") is None
    # And a second call moves nothing (idempotent)
    assert requeue_worker(client, "dramatiq", "dead-test-worker") == 0


def _send_crossmatch(services, mongo_db, n: int) -> tuple[list[int], object]:
    packets = [read_packet(p) for p in packet_paths("kowalski")[:n]]
    candids = ingest_packets(mongo_db, ZTF, packets, "faults").candids
    broker = setup_broker(services)
    actors = declare_chain(broker, [ZTF], services)["ZTF"]
    return candids, actors["crossmatch"].send(candids, {"received": time.time()})


def _kill_holder_and_time_redelivery(valkey, message_id: str, victim) -> float:  # type: ignore[no-untyped-def]
    """SIGKILL the process ``victim(pid)`` picks while it holds the message; return the delay."""
    start = procs.wait_for(
        "the crossmatch message to start",
        lambda: [r for r in read_trace(valkey) if r["event"] == "start" and r["id"] == message_id],
        timeout=120,
    )
    holder = start[-1]["pid"]  # type: ignore[index]
    killed_at = procs.sigkill(victim(holder))
    again = procs.wait_for(
        "the message's redelivery",
        lambda: [
            r
            for r in read_trace(valkey)
            if r["event"] == "start" and r["id"] == message_id and r["t"] > killed_at
        ],
        timeout=REDELIVERY_BOUND_S,
    )
    return float(again[0]["t"] - killed_at)  # type: ignore[index]


def test_a_killed_worker_is_replaced_and_its_message_redelivered_at_once(
    services, mongo_db, clean_chain, tmp_path
):
    valkey = get_client(services.valkey)
    env = {"BOOM_FAULT_TRACE": "1", "BOOM_FAULT_HOLD": "ztf_crossmatch:3"}
    # Given two supervised worker processes, both booted
    supervisor = procs.start_supervisor(2, env=env, log=tmp_path / "workers.log")
    try:
        procs.wait_for(
            "two worker boots",
            lambda: len([r for r in read_trace(valkey) if r["event"] == "boot"]) >= 2,
            timeout=120,
        )
        before = set(procs.worker_pids(supervisor))
        # When the worker process holding a crossmatch message is SIGKILLed
        candids, message = _send_crossmatch(services, mongo_db, 6)
        delay = _kill_holder_and_time_redelivery(valkey, message.message_id, lambda pid: pid)
        # Then the message starts again on the other worker within seconds (not minutes)
        print(f"redelivery after a worker's SIGKILL: {delay:.1f}s")
        assert delay < 30
        # And the slot is running a new worker process, the other slot never stopped
        procs.wait_for("a replacement worker", lambda: len(procs.worker_pids(supervisor)) == 2, 60)
        after = set(procs.worker_pids(supervisor))
        assert len(after - before) == 1 and len(after & before) == 1
        # When the dramatiq parent of the process holding the next message is SIGKILLed
        # (its worker, orphaned, must not go on with the message)
        candids2, message2 = _send_crossmatch(services, mongo_db, 12)
        parent = {w: p for p in procs.slot_parents(supervisor) for w in procs.children(p)}
        delay2 = _kill_holder_and_time_redelivery(valkey, message2.message_id, parent.get)
        print(f"redelivery after the dramatiq parent's SIGKILL: {delay2:.1f}s")
        assert delay2 < 30
        # Then every alert goes through the whole chain once the queues drain
        drained([ZTF], timeout=240)
        enriched = mongo_db[ZTF.alerts].count_documents(
            {"_id": {"$in": sorted(set(candids) | set(candids2))}, "enriched_at": {"$exists": 1}}
        )
        assert enriched == len(set(candids) | set(candids2))
    finally:
        procs.stop_supervisor(supervisor)
    # And the supervisor stopped every worker it started
    assert supervisor.returncode == 0
    assert not procs.worker_pids(supervisor)


def test_without_supervisor_the_broker_requeues_a_dead_workers_message_within_bound(
    services, mongo_db, clean_chain, tmp_path
):
    # Given two plain dramatiq pools (as two containers), not supervised by us
    env = {"BOOM_FAULT_TRACE": "1", "BOOM_FAULT_HOLD": "ztf_crossmatch:3"}
    dramatiq = str(Path(sys.executable).parent / "dramatiq")
    cmd = [dramatiq, "boom_tasks.actors", "tests.faults.hooks", "--processes", "1"]
    pools = [
        subprocess.Popen(
            [*cmd, "--threads", "1"],
            cwd=procs.ROOT,
            env={**os.environ, **env},
            stdout=(tmp_path / f"pool{i}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    valkey = get_client(services.valkey)
    try:
        procs.wait_for(
            "two worker boots",
            lambda: len([r for r in read_trace(valkey) if r["event"] == "boot"]) >= 2,
            timeout=120,
        )
        # When the worker holding a message is SIGKILLed and nothing requeues explicitly
        _, message = _send_crossmatch(services, mongo_db, 6)
        delay = _kill_holder_and_time_redelivery(valkey, message.message_id, lambda pid: pid)
        # Then the broker's own maintenance requeues it after the heartbeat timeout,
        # within the 90 s bound (Dramatiq's defaults took more than five minutes)
        print(f"redelivery by the broker's maintenance alone: {delay:.1f}s")
        timeout_s = services.worker.heartbeat_timeout_ms / 1000
        assert timeout_s <= delay < REDELIVERY_BOUND_S
    finally:
        for pool in pools:
            pool.terminate()
        for pool in pools:
            try:
                pool.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pool.kill()
                pool.wait()
