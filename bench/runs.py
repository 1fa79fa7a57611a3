"""The broker runs of the pipeline benchmark: K workers and the bridge, timed and priced.

:func:`broker` starts ``dramatiq`` (``boom_tasks.actors``, or ``bench.cost_worker``
with the cost account) and the bridge over a source topic in a fresh database and
Valkey database, waits until every queue is drained, then reads the ``times`` of every
message on the output topic (latency), what the dashboard's counters say, and the cost
table (bench/costs.py). Used by ``bench/pipeline.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import redis
from confluent_kafka import Consumer

from bench import costs
from boom_tasks.chain import CHAIN
from boom_tasks.monitor.stats import percentile, stage_totals
from boom_tasks.output.schema import decode
from boom_tasks.services.kafka import consumer_config
from boom_tasks.settings import Settings
from boom_tasks.surveys.ztf import ZTF

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
#: Every stage queue, from the chain (a hand-written list once missed the science stage).
STAGES = tuple(stage.name for stage in CHAIN)
#: Valkey database of the broker runs (flushed before each): their counters are their own.
BENCH_VALKEY_DB = 9


def read_times(settings: Settings, topic: str, idle_s: float = 5.0) -> list[dict[str, float]]:
    """Return the ``times`` of every message on ``topic`` (read until idle)."""
    conf = consumer_config(settings.kafka, f"bench-{uuid.uuid4().hex[:8]}")
    consumer = Consumer({**conf, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    out, last = [], time.monotonic()
    while time.monotonic() - last < idle_s:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            out.append(decode(msg.value())["times"])
            last = time.monotonic()
    consumer.close()
    return out


def latency(times: list[dict[str, float]]) -> str:
    """Return p50/p95/p99 of published - received, in seconds."""
    if not times:
        return "no message published"
    lat = np.array([t["published"] - t["received"] for t in times])
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    return f"latency p50 {p50:.2f}s p95 {p95:.2f}s p99 {p99:.2f}s ({len(lat)} messages)"


def queued(client: redis.Redis) -> int:
    """Return the batches and stage messages waiting (0: drained)."""
    keys = [f"dramatiq:{ZTF.queue_prefix}_{s}.msgs" for s in STAGES]
    return int(client.hlen(f"boom:{ZTF.queue_prefix}:pending")) + sum(
        int(client.hlen(k)) for k in keys
    )


def drained(client: redis.Redis) -> bool:
    """Return True when no batch or stage message is waiting."""
    return queued(client) == 0


def dashboard_view(valkey: redis.Redis) -> str:
    """Return what the dashboard's counters say: alerts per stage, published percentiles."""
    totals = {t.stage: t for t in stage_totals(valkey, "ZTF")}
    counts = ", ".join(f"{t.stage} {t.count}" for t in totals.values())
    published = totals["published"].buckets
    p50, p95, p99 = (percentile(published, q) or float("nan") for q in (50, 95, 99))
    return (
        f"dashboard counters: {counts}; published p50 {p50:.2f}s p95 {p95:.2f}s "
        f"p99 {p99:.2f}s (bucket upper edges)"
    )


@dataclass
class Run:
    """How one broker run went."""

    rate: float
    summary: str
    times: list[dict[str, float]] = field(default_factory=list)
    #: Queue depth sampled during the run: (seconds since the start, messages waiting).
    depth: list[tuple[float, int]] = field(default_factory=list)
    cost_table: str = ""


@dataclass
class Options:
    """How to run the broker: processes, environment, instrumentation, feeding."""

    k: int
    env: dict[str, str]
    costs: bool = False
    #: Worker threads per process.
    threads: int = 2
    #: Feeds the source topic during the run (paced mode); None: already produced.
    feed: Callable[[], None] | None = None
    #: File receiving the workers' and the bridge's logs (None: discarded).
    log: Path | None = None
    #: Another checkout whose code the workers and the bridge run (the landed code).
    tree: Path | None = None


def _env(settings: Settings, db: Any, out_topic: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "BOOM_VALKEY__DB": str(BENCH_VALKEY_DB),
        "BOOM_MONGO__DATABASE": db.name,
        "BOOM_MONGO__CATALOG_DATABASE": settings.mongo.catalog_database or settings.mongo.database,
        "BOOM_OUTPUT__RESULTS_TOPIC": out_topic,
        "BOOM_KAFKA__GROUP_ID": f"bench-{uuid.uuid4().hex[:8]}",
        **extra,
    }


def broker(settings: Settings, source: str, n: int, db: Any, opts: Options) -> Run:
    """Run K workers and the bridge over the source topic; return how it went."""
    out_topic = f"bench-out-{uuid.uuid4().hex[:8]}"
    valkey = redis.Redis(settings.valkey.host, settings.valkey.port, db=BENCH_VALKEY_DB)
    valkey.flushdb()
    monitoring = {"BOOM_MONGO__COMMAND_MONITORING": "true"} if opts.costs else {}
    env = _env(settings, db, out_topic, {**opts.env, **monitoring})
    cwd = opts.tree or ROOT
    if opts.tree:  # its boom_tasks comes first; the models stay where the data is
        env |= {"PYTHONPATH": str(opts.tree), "BOOM_ML__MODELS_DIR": str(DATA / "models")}
    bin_dir = Path(sys.executable).parent
    module = "bench.cost_worker" if opts.costs else "boom_tasks.actors"
    logs: Any = opts.log.open("ab") if opts.log else subprocess.DEVNULL
    workers = subprocess.Popen(
        [
            str(bin_dir / "dramatiq"),
            module,
            "--processes",
            str(opts.k),
            "--threads",
            str(opts.threads),
        ],
        env=env,
        cwd=cwd,
        stderr=logs,
    )
    time.sleep(8)  # workers boot, ensure indexes and load the models before the clock starts
    bridge_cmd = [str(bin_dir / "boom-bridge")]
    if opts.costs:
        bridge_cmd = [sys.executable, str(ROOT / "bench" / "cost_bridge.py")]
    bridge_cmd += ["ZTF", "--topic", source]
    data_dir = settings.local.path()
    servers, worker_cpu = costs.server_cpu(data_dir), costs.process_cpu(workers.pid)
    clock = time.time()
    depth: list[tuple[float, int]] = []
    if opts.feed is None:
        subprocess.run([*bridge_cmd, "--exit-on-eof"], env=env, cwd=cwd, check=True, stderr=logs)
    else:
        bridge = subprocess.Popen(bridge_cmd, env=env, cwd=cwd, stderr=logs)
        feeder = threading.Thread(target=opts.feed, daemon=True)
        feeder.start()
    feeding = opts.feed is not None
    while feeding or not drained(valkey) or db[ZTF.alerts].estimated_document_count() < n:
        feeding = opts.feed is not None and feeder.is_alive()
        depth.append((time.time() - clock, queued(valkey)))
        time.sleep(0.5)
    end = time.time()
    if opts.feed is not None:
        bridge.send_signal(signal.SIGTERM)
        bridge.wait()
    worker_cpu = costs.process_cpu(workers.pid) - worker_cpu
    servers = {k: v - servers.get(k, 0.0) for k, v in costs.server_cpu(data_dir).items()}
    workers.terminate()
    workers.wait()
    if opts.log:
        logs.close()
    first = db[ZTF.alerts].find_one(sort=[("created_at", 1)])["created_at"].timestamp()
    times = read_times(settings, out_topic)
    start = min([t["received"] for t in times] or [first])
    table = ""
    if opts.costs:
        table = _cost_table(valkey, n, servers, worker_cpu, end - start)
    summary = f"{latency(times)}\n{' ' * 36}{dashboard_view(valkey)}"
    return Run(n / (end - start), summary, times, depth, table)


def _cost_table(
    valkey: redis.Redis, n: int, servers: dict[str, float], worker_cpu: float, wall: float
) -> str:
    """Return the run's cost table; worker CPU outside messages is charged to dramatiq."""
    account = costs.collect(valkey)
    stages_cpu = sum(account[s].get("cpu_s", 0.0) for s in costs.ROWS if s != "bridge")
    account["dramatiq"]["cpu_s"] = max(worker_cpu - stages_cpu, 0.0)
    head = f"wall {wall * 1000 / n:.2f} s per 1,000 alerts; workers' CPU {worker_cpu:.1f} s"
    return f"{head}\n{costs.table(account, n, servers)}"
