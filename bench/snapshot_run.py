"""Drive the broker for ``bench/snapshot.py``: servers, setup and the replays.

Only command lines (``ops/services.py``, ``boom``, ``boom-produce``,
``boom-bridge``, ``dramatiq``) and the servers' own clients are used, never
``boom_tasks``, so the snapshot runs unchanged on both sides of a refactoring.

Step 1: ``services`` starts or stops the configured local services.
Step 2: ``wipe`` empties the database(s), Valkey and Kafka.
Step 3: ``load_catalog`` and ``add_filters`` prepare crossmatch and filtering.
Step 4: ``replay`` produces every packet as one night, runs the workers and the
        bridge, and waits until Valkey holds no message and no batch.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pymongo
import redis
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

logger = logging.getLogger("snapshot")

#: The checkout this file belongs to: its commands and ``.venv`` are the ones run.
ROOT = Path(__file__).resolve().parent.parent

#: The survey replayed.
SURVEY = "ZTF"

#: The one catalog loaded: small (59,099 rows), so crossmatch runs yet stays fast.
CATALOG = "gcvs"

#: Seconds a command may take (services up includes resolving Kafka's jars once).
COMMAND_TIMEOUT_S = 900.0

#: Seconds the bridge may take to read a night's topic to its end.
BRIDGE_TIMEOUT_S = 1800.0

#: Seconds between two looks at the queues, and looks in a row that must find
#: them empty: one empty look can fall between an ack and the next stage's send.
POLL_S = 1.0
EMPTY_LOOKS = 3

#: Seconds between two progress lines while waiting for the workers.
REPORT_S = 30.0

#: Seconds the workers get to finish their batch after SIGTERM, before SIGKILL.
STOP_GRACE_S = 120.0

#: Seconds for one Kafka metadata or admin call.
KAFKA_CALL_S = 30.0

#: A filter to add: name, programids (comma-separated) and aggregation pipeline.
Filter = tuple[str, str, list[dict[str, Any]]]


class SnapshotError(Exception):
    """A step of the snapshot failed; the message says which and why."""


# --- configuration --------------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    """The servers of the configuration in force, read from its YAML file."""

    valkey_host: str
    valkey_port: int
    valkey_db: int
    kafka: str
    mongo_uri: str
    database: str
    catalog_database: str | None


# --- commands -------------------------------------------------------------------------


def bin_path(name: str) -> str:
    """Return the console script ``name`` beside this interpreter (the checkout's .venv)."""
    return str(Path(sys.executable).parent / name)


def run(cmd: list[str], log: TextIO, timeout: float = COMMAND_TIMEOUT_S) -> str:
    """Run a command in the checkout, append its output to ``log`` and return it.

    Raises
    ------
    SnapshotError
        If it fails or overruns ``timeout`` seconds, with the end of its output.
    """
    log.write(f"\n$ {' '.join(cmd)}\n")
    log.flush()
    try:
        done = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise SnapshotError(f"{' '.join(cmd)} did not finish within {timeout:.0f} s") from e
    output = done.stdout + done.stderr
    log.write(output)
    log.flush()
    if done.returncode != 0:
        tail = "\n".join(output.splitlines()[-20:])
        raise SnapshotError(f"{' '.join(cmd)} exited {done.returncode}:\n{tail}")
    return output


def services(action: str, log: TextIO) -> None:
    """Run ``ops/services.py up|down`` for the configuration in force."""
    run([sys.executable, str(ROOT / "ops" / "services.py"), action], log)


# --- wiping ---------------------------------------------------------------------------


def valkey_client(t: Targets) -> redis.Redis:
    """Return a client of the configured Valkey, with bounded timeouts."""
    return redis.Redis(
        host=t.valkey_host,
        port=t.valkey_port,
        db=t.valkey_db,
        socket_timeout=30,
        socket_connect_timeout=10,
    )


def mongo_client(t: Targets) -> pymongo.MongoClient:
    """Return a client of the configured MongoDB server, with bounded timeouts."""
    return pymongo.MongoClient(
        t.mongo_uri, serverSelectionTimeoutMS=10_000, socketTimeoutMS=300_000, tz_aware=True
    )


def kafka_admin(t: Targets) -> AdminClient:
    """Return an admin client of the configured Kafka."""
    return AdminClient({"bootstrap.servers": t.kafka})


def topics(t: Targets) -> set[str]:
    """Return the Kafka topics, without the internal ones (``__consumer_offsets``)."""
    names = kafka_admin(t).list_topics(timeout=KAFKA_CALL_S).topics
    return {name for name in names if not name.startswith("__")}


def wipe(t: Targets) -> None:
    """Empty the database(s), Valkey and Kafka (topics and consumer groups)."""
    client = mongo_client(t)
    try:
        for name in {t.database, t.catalog_database} - {None}:
            client.drop_database(name)
    finally:
        client.close()
    valkey_client(t).flushdb()
    admin = kafka_admin(t)
    doomed = topics(t)
    if doomed:
        for future in admin.delete_topics(sorted(doomed)).values():
            future.result(timeout=KAFKA_CALL_S)
    groups = admin.list_consumer_groups().result(timeout=KAFKA_CALL_S).valid
    if groups:
        ids = [g.group_id for g in groups]
        for future in admin.delete_consumer_groups(ids).values():
            future.result(timeout=KAFKA_CALL_S)
    # Topic deletion completes in the background; recreating a name too early fails.
    deadline = time.monotonic() + KAFKA_CALL_S
    while topics(t) & doomed:
        if time.monotonic() > deadline:
            raise SnapshotError(f"Kafka still lists {sorted(topics(t) & doomed)} after deletion")
        time.sleep(POLL_S)


# --- setup ----------------------------------------------------------------------------


def load_catalog(data: Path, log: TextIO) -> None:
    """Load the catalog the configuration crossmatches with."""
    path = data / "catalogs" / f"{CATALOG}.parquet"
    run(
        [bin_path("boom"), "catalogs", "load", CATALOG, str(path), "--ra", "ra", "--dec", "dec"],
        log,
    )


def add_filters(t: Targets, filters: Sequence[Filter], log: TextIO) -> None:
    """Add filters with ``boom filters add`` and activate each of them.

    Parameters
    ----------
    t
        The servers; the stored filters are read back for their ids.
    filters
        Name, programids and pipeline of each filter.
    log
        Where the commands' output goes.
    """
    for name, programids, pipeline in filters:
        text = json.dumps(pipeline)
        run([bin_path("boom"), "filters", "add", name, text, "--programids", programids], log)
    client = mongo_client(t)
    try:
        stored = {d["name"]: d["_id"] for d in client[t.database]["filters"].find({}, ["name"])}
    finally:
        client.close()
    for name, _, _ in filters:
        if name not in stored:
            raise SnapshotError(f"boom filters add did not store {name!r}")
        run([bin_path("boom"), "filters", "activate", str(stored[name])], log)


# --- replay ---------------------------------------------------------------------------


@dataclass
class Backlog:
    """What Valkey still holds for the workers."""

    #: Messages not yet acknowledged (ready, in flight or delayed), by queue key.
    queued: dict[str, int]
    #: Alerts of stored batches not yet ingested.
    pending: int
    #: Dead-lettered messages, by queue key.
    dead: dict[str, int]

    @property
    def empty(self) -> bool:
        """Return whether nothing awaits any stage."""
        return not any(self.queued.values()) and not self.pending


def backlog(client: redis.Redis) -> Backlog:
    """Read the Dramatiq queues and the pending batches straight from Valkey.

    Dramatiq's Redis broker keeps every message in ``<queue>.msgs`` (delayed ones
    in ``<queue>.DQ.msgs``) until it is acknowledged, and dead letters in
    ``<queue>.XQ.msgs``; the bridge counts stored batches in a ``*:pending`` hash.
    """
    queued: dict[str, int] = {}
    dead: dict[str, int] = {}
    for raw in client.scan_iter(match="*.msgs", count=1000):
        key = raw.decode()
        target = dead if key.endswith(".XQ.msgs") else queued
        target[key] = int(client.hlen(raw))
    pending = 0
    for raw in client.scan_iter(match="*:pending", count=1000):
        if client.type(raw) == b"hash":
            pending += sum(int(v) for v in client.hvals(raw))
    return Backlog(queued, pending, dead)


def wait_drained(client: redis.Redis, workers: subprocess.Popen, timeout: float) -> Backlog:
    """Wait until :data:`EMPTY_LOOKS` looks in a row find nothing queued; return the last.

    Raises
    ------
    SnapshotError
        If the workers exit first, or work remains after ``timeout`` seconds.
    """
    deadline, empty_looks = time.monotonic() + timeout, 0
    last_report = time.monotonic()
    while True:
        if workers.poll() is not None:
            # Something else stopped them: what is left would never drain.
            raise SnapshotError(
                f"the workers exited ({workers.returncode}) with work queued: {backlog(client)}"
            )
        state = backlog(client)
        empty_looks = empty_looks + 1 if state.empty else 0
        if empty_looks >= EMPTY_LOOKS:
            return state
        if time.monotonic() > deadline:
            raise SnapshotError(f"not drained after {timeout:.0f} s: {state}")
        if not state.empty and time.monotonic() - last_report > REPORT_S:
            busy = {k.split(":")[-1]: n for k, n in state.queued.items() if n}
            logger.info("  waiting: %s, %d alerts in stored batches", busy, state.pending)
            last_report = time.monotonic()
        time.sleep(POLL_S)


def start_workers(log_path: Path, processes: int, threads: int) -> subprocess.Popen:
    """Start ``dramatiq boom_tasks.actors`` in its own process group, logging to a file."""
    cmd = [bin_path("dramatiq"), "boom_tasks.actors", "--processes", str(processes)]
    cmd += ["--threads", str(threads)]
    with log_path.open("ab") as out:
        return subprocess.Popen(
            cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_workers(proc: subprocess.Popen) -> None:
    """SIGTERM the workers (they finish the message in hand); SIGKILL their group if they hang."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        logger.warning("workers still running %.0f s after SIGTERM: killing them", STOP_GRACE_S)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@dataclass
class Replay:
    """How one replay went."""

    night: str
    input_topics: set[str]
    produced: int
    seconds: float
    dead: dict[str, int]
    worker_log: Path
    worker_errors: int = 0


def replay(t: Targets, night: str, packets: Path, out: Path, args: argparse.Namespace) -> Replay:
    """Produce every packet as ``night``, run bridge and workers, wait until all is done."""
    started = time.monotonic()
    log_path = out.with_name(f"{out.name}.{night}.log")
    worker_log = out.with_name(f"{out.name}.{night}.workers.log")
    worker_log.unlink(missing_ok=True)
    client = valkey_client(t)
    with log_path.open("w") as log:
        before = topics(t)
        run([bin_path("boom-produce"), SURVEY, "--date", night, "--from", str(packets)], log)
        new = topics(t) - before
        produced = sum(count_messages(t, topic) for topic in new)
        logger.info("replay %s: %d packets produced to %s", night, produced, sorted(new))
        workers = start_workers(worker_log, args.processes, args.threads)
        try:
            bridge = [bin_path("boom-bridge"), SURVEY, "--date", night, "--exit-on-eof"]
            run(bridge, log, timeout=BRIDGE_TIMEOUT_S)
            logger.info("replay %s: bridge done after %.0f s", night, time.monotonic() - started)
            try:
                state = wait_drained(client, workers, args.drain_timeout)
            except SnapshotError as e:
                raise SnapshotError(f"replay {night}: {e} (workers' log {worker_log})") from None
        finally:
            stop_workers(workers)
    seconds = time.monotonic() - started
    text = worker_log.read_text(errors="replace")
    errors = len(re.findall(r"Traceback|\bERROR\b|\bCRITICAL\b", text))
    logger.info("replay %s: drained after %.0f s", night, seconds)
    return Replay(night, new, produced, seconds, state.dead, worker_log, errors)


def count_messages(t: Targets, topic: str) -> int:
    """Return how many messages a topic holds (high minus low watermark, summed)."""
    consumer = Consumer({"bootstrap.servers": t.kafka, "group.id": f"snapshot-{uuid.uuid4().hex}"})
    try:
        meta = consumer.list_topics(topic, timeout=KAFKA_CALL_S).topics[topic]
        total = 0
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=KAFKA_CALL_S
            )
            total += high - low
        return total
    finally:
        consumer.close()
