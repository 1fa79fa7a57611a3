"""A fault run: a night through the whole chain while workers, bridge and servers are killed.

Shared by the CI-sized ``tests/faults/test_chaos.py`` and the full ``bench/faults.py``.

Step 1: make real alerts (``synth_alerts`` from the real ZTF packets) and, if asked,
        malformed packets; produce them, shuffled, to a fresh topic; a fresh MongoDB
        database with active filters, a Valkey database of the run's own, a fresh
        output topic;
Step 2: start ``boom-workers`` (with the fault hooks' trace) and ``boom-bridge``
        (restarted whenever it dies, until it reaches the end of the topic);
Step 3: inject the faults when the given fractions of the alerts have been ingested:
        SIGKILL of a worker process or of its dramatiq parent, SIGKILL of the bridge,
        Valkey SIGKILLed and restarted (AOF on), Kafka and the MongoDB server
        restarted; time the recovery after each;
Step 4: once the bridge is done and no queue holds work, stop the workers, read the
        output topic and count what issue 11 asks (:mod:`tests.faults.checks`).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pymongo
import redis
from dramatiq import Message

from bench.filters import bench_filters
from boom_tasks.chain import CHAIN
from boom_tasks.filter.store import add_filter, set_active
from boom_tasks.ingest.indexes import ensure_indexes
from boom_tasks.monitor.stats import stage_totals
from boom_tasks.replay.producer import produce_packets
from boom_tasks.settings import Settings, WorkerSettings
from boom_tasks.surveys.ztf import ZTF
from boom_tasks.surveys.ztf.synth import synth_alerts
from tests.chainrun import read_topic
from tests.faults import procs
from tests.faults.checks import Figures, candid_of, check_run, malformed
from tests.faults.hooks import read_trace

#: Valkey database of a fault run (flushed first): its queues and counters are its own.
RUN_VALKEY_DB = 6
#: The kinds of fault.
WORKER, PARENT, BRIDGE, VALKEY, KAFKA, MONGO = (
    "worker",
    "parent",
    "bridge",
    "valkey",
    "kafka",
    "mongo",
)


@dataclass
class Fault:
    """One fault, when it struck and how long the broker took to recover."""

    kind: str
    #: Fraction of the alerts ingested when it strikes.
    at: float
    struck: float | None = None
    recovered_s: float | None = None
    note: str = ""
    #: Counter (ingested, or every stage) and its value when it struck.
    counter: str = "total"
    base: int = 0
    #: Worker faults: the messages the dead process held; their redelivery delay.
    held: list[str] = field(default_factory=list)
    redelivered_s: float | None = None
    #: Server faults: when the server answered again.
    back: float | None = None


@dataclass
class RunConfig:
    """The size and the faults of one run."""

    alerts: int
    faults: list[tuple[str, float]]
    malformed: int = 0
    processes: int = 2
    threads: int = 2
    filters: int = 5
    seed: int = 11
    #: Bridge batches and backpressure: small enough that the bridge lives through the run.
    batch_size: int = 50
    max_queued: int = 150
    timeout_s: float = 900.0
    source: Path = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ztf"


@dataclass
class RunResult:
    """What a run did and left."""

    figures: Figures
    faults: list[Fault]
    seconds: float
    worker_exits: int
    bridge_starts: int


class ChaosRun:
    """One fault run on the local servers of ``settings`` (see the module's docstring)."""

    def __init__(self, settings: Settings, config: RunConfig, logs: Path) -> None:
        self.settings, self.config, self.logs = settings, config, logs
        uid = uuid.uuid4().hex[:8]
        self.db_name, self.topic, self.out = (
            f"faults_{uid}",
            f"faults-in-{uid}",
            f"faults-out-{uid}",
        )
        self.env = {
            "BOOM_VALKEY__DB": str(RUN_VALKEY_DB),
            "BOOM_MONGO__DATABASE": self.db_name,
            "BOOM_MONGO__CATALOG_DATABASE": settings.mongo.catalog_database
            or settings.mongo.database,
            "BOOM_OUTPUT__RESULTS_TOPIC": self.out,
            "BOOM_KAFKA__GROUP_ID": f"faults-{uid}",
            # The bridge stays alive through the run (and can be killed mid-run).
            "BOOM_BRIDGE__BATCH_SIZE": str(config.batch_size),
            "BOOM_BRIDGE__MAX_QUEUED_ALERTS": str(config.max_queued),
            "BOOM_BRIDGE__RESUME_QUEUED_ALERTS": str(config.max_queued // 2),
            # The restarted bridge reaps the orphan batch a kill may leave while it runs.
            "BOOM_BRIDGE__ORPHAN_AFTER_S": "2",
            "BOOM_WORKER__RESTART_BACKOFF_S": "0.5",
            # The production retry policy (the test configuration's is short): a stage
            # must ride out a MongoDB restart by retrying, not dead-letter its batch.
            "BOOM_WORKER__MAX_RETRIES": str(WorkerSettings().max_retries),
            "BOOM_WORKER__MIN_BACKOFF_MS": str(WorkerSettings().min_backoff_ms),
            "BOOM_WORKER__MAX_BACKOFF_MS": str(WorkerSettings().max_backoff_ms),
            "BOOM_FAULT_TRACE": "1",
        }
        self.valkey = redis.Redis(
            settings.valkey.host, settings.valkey.port, db=RUN_VALKEY_DB, socket_timeout=5
        )
        self.mongo = pymongo.MongoClient(settings.mongo.uri, serverSelectionTimeoutMS=60_000)
        self.real: list[int] = []
        self.bad: list[tuple[str, bytes]] = []
        self.bridge: subprocess.Popen | None = None
        self.bridge_starts, self.bridge_done = 0, False
        self.rng = random.Random(config.seed)

    # Step 1 -----------------------------------------------------------------
    def prepare(self) -> None:
        """Make and produce the packets; a fresh database with active filters."""
        self.valkey.flushdb()
        db = self.mongo[self.db_name]
        ensure_indexes(db, ZTF)
        for name, pipeline in bench_filters()[: self.config.filters]:
            fid = add_filter(
                db,
                name=name,
                survey="ZTF",
                pipeline=json.dumps(pipeline),
                programids=[0, 1],
                aux_collection=ZTF.aux,
            )
            set_active(db, fid, True)
        real = list(
            synth_alerts(
                self.config.source, self.config.alerts, seed=self.config.seed, alerts_per_object=3
            )
        )
        self.real = [candid_of(p) for p in real]
        self.bad = malformed(real[:50], self.config.malformed, self.config.seed)
        packets = real + [p for _, p in self.bad]
        self.rng.shuffle(packets)
        produce_packets(self.settings, self.topic, packets, progress=False)

    # Step 2 -----------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def _start_bridge(self) -> None:
        cmd = [str(procs.BIN / "boom-bridge"), "ZTF", "--topic", self.topic, "--exit-on-eof"]
        out = (self.logs / "bridge.log").open("ab")
        self.bridge = subprocess.Popen(
            cmd, cwd=procs.ROOT, env=self._env(), stdout=out, stderr=subprocess.STDOUT
        )
        self.bridge_starts += 1

    def _tend_bridge(self) -> None:
        """Restart the bridge whenever it died; note when it reached the end of the topic."""
        if self.bridge_done or self.bridge is None or self.bridge.poll() is None:
            return
        if self.bridge.returncode == 0:
            self.bridge_done = True
        else:
            self._start_bridge()

    def run(self) -> RunResult:
        """Run the night with its faults; check what it left (the servers stay up)."""
        self.prepare()
        supervisor = procs.start_supervisor(
            self.config.processes, self.config.threads, env=self.env, log=self.logs / "workers.log"
        )
        faults = [Fault(kind, at) for kind, at in sorted(self.config.faults, key=lambda f: f[1])]
        started = time.monotonic()
        try:
            procs.wait_for("the workers' boot", lambda: self._boots() >= self.config.processes, 180)
            self._start_bridge()
            self._loop(supervisor, faults, started)
        finally:
            procs.stop_supervisor(supervisor)
            if self.bridge is not None and self.bridge.poll() is None:
                self.bridge.kill()
                self.bridge.wait()
        seconds = time.monotonic() - started
        messages = read_topic(self.out, 0, idle_s=5.0)
        figures = check_run(
            self.settings, self.mongo[self.db_name], self.valkey, self.real, self.bad, messages
        )
        exits = (self.logs / "workers.log").read_text(errors="replace").count("exited with code")
        return RunResult(figures, faults, seconds, exits, self.bridge_starts)

    def _boots(self) -> int:
        try:
            return sum(1 for r in read_trace(self.valkey) if r["event"] == "boot")
        except redis.RedisError:
            return 0

    def _counter(self, name: str) -> int | None:
        try:
            totals = {t.stage: t.count for t in stage_totals(self.valkey, "ZTF")}
        except redis.RedisError:
            return None
        return totals.get("ingested", 0) if name == "ingested" else sum(totals.values())

    def _drained(self) -> bool:
        """Tell whether no stage has work left (a dead-lettered batch is no work: it is lost)."""
        # Every stage of the chain: a list written out here once missed the science stage
        # added later, and a run could end with batches still on their way to the filters.
        keys = [
            f"dramatiq:{ZTF.queue_prefix}_{stage.name}{x}.msgs"
            for stage in CHAIN
            for x in ("", ".DQ")
        ]
        try:
            if any(self.valkey.hlen(k) for k in keys):
                return False
            pending = {k.decode() for k in self.valkey.hkeys("boom:ztf:pending")}
            dead = self.valkey.hvals("dramatiq:ztf_ingest.XQ.msgs")
        except redis.RedisError:
            return False
        # A batch whose ingest message was dead-lettered stays pending for ever: the
        # checks then count its alerts lost and its dead letter, instead of a hang.
        return pending <= {Message.decode(raw).args[0] for raw in dead}

    # Step 3 -----------------------------------------------------------------
    def _loop(self, supervisor: subprocess.Popen, faults: list[Fault], started: float) -> None:
        threads: list[threading.Thread] = []
        n = len(self.real)
        while True:
            if time.monotonic() - started > self.config.timeout_s:
                raise AssertionError(f"the run did not finish within {self.config.timeout_s:.0f}s")
            self._tend_bridge()
            ingested = self._counter("ingested")
            for fault in faults:
                if fault.struck is None and ingested is not None and ingested >= fault.at * n:
                    threads += self._strike(fault, supervisor)
                    break  # one fault per round: the next sees its effect
            self._watch_recovery(faults)
            pending = [f for f in faults if f.struck is None or f.recovered_s is None]
            alive = [t for t in threads if t.is_alive()]
            if self.bridge_done and not alive and self._drained():
                for fault in pending:
                    fault.note = fault.note or "the run ended first"
                return
            time.sleep(0.2)

    def _strike(self, fault: Fault, supervisor: subprocess.Popen) -> list[threading.Thread]:
        kind = fault.kind
        if kind == BRIDGE and (self.bridge_done or self.bridge is None):
            kind = fault.kind = WORKER  # the bridge already reached the end of the topic
            fault.note = "(the bridge had finished: a worker instead)"
        fault.counter = "ingested" if kind == BRIDGE else "total"
        fault.base = self._counter(fault.counter) or 0
        fault.struck = time.time()
        if kind in (WORKER, PARENT):
            self._kill_worker(fault, supervisor)
        elif kind == BRIDGE:
            assert self.bridge is not None
            procs.sigkill(self.bridge.pid)
        else:
            thread = threading.Thread(target=self._restart_server, args=(fault,), daemon=True)
            thread.start()
            return [thread]
        return []

    def _kill_worker(self, fault: Fault, supervisor: subprocess.Popen) -> None:
        parents = procs.slot_parents(supervisor)
        pairs = [(p, w) for p in parents for w in procs.children(p)]
        if not pairs:
            fault.note = "no worker process was running"
            return
        parent, worker = self.rng.choice(pairs)
        trace = read_trace(self.valkey)
        ended = {r["id"] for r in trace if r["event"] == "end"}
        fault.held = [
            r["id"]
            for r in trace
            if r["event"] == "start" and r["pid"] == worker and r["id"] not in ended
        ]
        fault.struck = procs.sigkill(parent if fault.kind == PARENT else worker)
        # A message that ended between that read and the kill was acknowledged (its "end"
        # is traced before its ack) and never comes back: it was not held.
        ended = {
            r["id"] for r in read_trace(self.valkey) if r["event"] == "end" and r["pid"] == worker
        }
        fault.held = [i for i in fault.held if i not in ended]

    def _restart_server(self, fault: Fault) -> None:
        """Kill (Valkey) or stop (Kafka, MongoDB) a server, start it again, note when it is back."""
        services = [sys.executable, str(procs.ROOT / "ops" / "services.py")]
        if fault.kind == VALKEY:  # killed outright: AOF must bring every acknowledged write back
            pidfile = self.settings.local.path() / "valkey.pid"
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
            time.sleep(1)
        else:
            self._stop_server(fault.kind)
        up = subprocess.run([*services, "up", "--only", fault.kind], capture_output=True)
        # "back" means answering: ask until it does (a slow start may outlast ``up``'s wait)
        deadline = time.monotonic() + 180
        status = [*services, "status", "--only", fault.kind]
        while subprocess.run(status, capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                fault.note = f"{fault.kind} did not come back: {up.stderr.decode()[-200:]}"
                return
            subprocess.run([*services, "up", "--only", fault.kind], capture_output=True)
            time.sleep(1)
        fault.base = self._counter(fault.counter) or 0
        fault.back = time.time()

    def _stop_server(self, kind: str) -> None:
        """SIGTERM our Kafka or MongoDB server and wait until it is gone (SIGKILL after 60 s).

        Found by its command line (marker and data folder), not only by its pid file:
        a server restarted by ``up`` after a failed start may have none.
        """
        home, marker = str(self.settings.local.path()), {KAFKA: "kafka.Kafka", MONGO: "secantus"}
        victims = [
            p
            for p in psutil.process_iter(["cmdline"])
            if marker[kind].lower() in " ".join(p.info["cmdline"] or []).lower()
            and home in " ".join(p.info["cmdline"] or [])
        ]
        if not victims:
            raise AssertionError(f"no {kind} server of {home} to restart")
        for p in victims:
            p.terminate()
        _, alive = psutil.wait_procs(victims, timeout=60)
        for p in alive:
            p.kill()
        psutil.wait_procs(alive, timeout=10)

    def _watch_recovery(self, faults: list[Fault]) -> None:
        now = time.time()
        trace: list[dict[str, Any]] | None = None
        for f in faults:
            if f.struck is None or f.recovered_s is not None:
                continue
            value = self._counter(f.counter)
            if f.kind in (WORKER, PARENT):
                trace = trace if trace is not None else self._trace()
                self._watch_worker(f, trace, now)
            elif f.kind == BRIDGE and value is not None and value > f.base:
                f.recovered_s = now - f.struck
            elif f.back is not None and value is not None and value > f.base:
                # Back and processing again (not merely work that went on without it)
                f.recovered_s = now - f.struck

    def _trace(self) -> list[dict[str, Any]]:
        try:
            return read_trace(self.valkey)
        except redis.RedisError:
            return []

    def _watch_worker(self, f: Fault, trace: list[dict[str, Any]], now: float) -> None:
        """A worker fault is over when a new worker booted and what it held started again."""
        assert f.struck is not None
        boots = [r["t"] for r in trace if r["event"] == "boot" and r["t"] > f.struck]
        again = [
            r["t"]
            for r in trace
            if r["event"] == "start" and r["id"] in f.held and r["t"] > f.struck
        ]
        if f.held and len(
            {
                r["id"]
                for r in trace
                if r["event"] == "start" and r["id"] in f.held and r["t"] > f.struck
            }
        ) == len(set(f.held)):
            f.redelivered_s = max(again) - f.struck
        if boots and (not f.held or f.redelivered_s is not None):
            f.recovered_s = max(min(boots), max(again, default=0)) - f.struck


def format_faults(faults: list[Fault]) -> str:
    """One line per fault: what, when, recovery."""
    lines = []
    for f in faults:
        rec = "n/a" if f.recovered_s is None else f"{f.recovered_s:.1f}s"
        red = (
            ""
            if f.redelivered_s is None
            else f", {len(set(f.held))} held messages redelivered after {f.redelivered_s:.1f}s"
        )
        lines.append(
            f"  {f.kind:<7} at {f.at:.0%} ingested: recovered in {rec}{red} {f.note}".rstrip()
        )
    return "\n".join(lines)
