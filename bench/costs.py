"""The pipeline benchmark's cost account: what each stage costs per 1,000 alerts.

Inside the measured processes (:func:`instrument`, used by ``bench/cost_worker.py``
and ``bench/cost_bridge.py``):

- each Dramatiq message names its stage for the thread handling it; the stage's busy
  seconds (wall) and CPU seconds (``time.thread_time``) are added up per message;
- MongoDB commands, their time, documents and bytes come from the broker's own
  command listener (:mod:`boom_tasks.services.commands`, ``mongo.command_monitoring``);
- Valkey round trips are counted where redis-py sends a packed command (one per
  command, one per pipeline);
- Kafka round trips are librdkafka's own count of requests sent to the brokers
  (``tx`` in its statistics), for the bridge's consumer and the output's producer.

Each process adds its counts to one Valkey hash per stage after every message (and at
exit), on a connection that does not count itself. In the benchmark process
(:func:`collect`, :func:`table`), the servers' CPU seconds come from their pids.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import redis

from boom_tasks.chain import CHAIN
from boom_tasks.services.commands import COMMANDS, UNLABELLED

#: Valkey hash of one stage's counts (``bench:cost:ingest``...).
COST_KEY = "bench:cost:{}"
#: Valkey hash of the latest cumulative Kafka request count of each client.
KAFKA_KEY = "bench:kafka"
#: Rows of the table, in the order an alert meets them (the stages from the chain: a
#: hand-written list once left the science stage out); "dramatiq" is what worker
#: threads do outside messages (fetching, acknowledging, enqueueing delays).
ROWS = ("bridge", *(stage.name for stage in CHAIN), "dramatiq")
COLUMNS = (
    ("busy_s", "busy s", 1),
    ("cpu_s", "CPU s", 1),
    ("commands", "db cmds", 1),
    ("seconds", "db time s", 1),
    ("docs_read", "docs read", 1),
    ("docs_written", "docs written", 1),
    ("bytes_read", "MB read", 1e-6),
    ("bytes_written", "MB written", 1e-6),
    ("valkey", "Valkey RT", 1),
    ("kafka", "Kafka RT", 1),
)

_local = threading.local()
_lock = threading.Lock()
#: Valkey round trips per stage, from every thread of the process.
_valkey: dict[str, int] = {}
_kafka: dict[str, int] = {}


#: Row of the work of threads handling no message ("bridge" in the bridge's process).
_default = ["dramatiq"]


def set_default_stage(stage: str) -> None:
    """Charge the work of threads handling no message to ``stage``."""
    _default[0] = stage


def set_stage(stage: str | None) -> None:
    """Name the stage of this thread's work (for MongoDB and Valkey counts)."""
    _local.stage = stage
    COMMANDS.set_label(stage)


def _count_valkey(send: Any) -> Any:
    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not getattr(self, "_bench_uncounted", False):
            stage = getattr(_local, "stage", None) or _default[0]
            with _lock:
                _valkey[stage] = _valkey.get(stage, 0) + 1
        return send(self, *args, **kwargs)

    return counted


def _with_stats(cls: Any, kind: str) -> Any:
    def build(conf: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        def stats(text: str) -> None:
            _kafka[f"{os.getpid()}:{kind}"] = int(json.loads(text).get("tx", 0))

        return cls({**conf, "statistics.interval.ms": 500, "stats_cb": stats}, *args, **kwargs)

    return build


def instrument() -> None:
    """Count Valkey and Kafka round trips in this process (call before any client is built)."""
    import boom_tasks.bridge.consumer as consumer
    import boom_tasks.output.publish as publish

    connection = redis.connection.AbstractConnection
    connection.send_packed_command = _count_valkey(connection.send_packed_command)  # type: ignore[method-assign]
    publish.Producer = _with_stats(publish.Producer, "producer")  # type: ignore[misc]
    consumer.Consumer = _with_stats(consumer.Consumer, "consumer")  # type: ignore[misc]


def sink(url: str) -> redis.Redis:
    """Return a Valkey client whose own round trips are not counted."""
    client = redis.Redis.from_url(url)
    pool = client.connection_pool
    make = pool.make_connection

    def uncounted() -> Any:
        conn: Any = make()
        conn._bench_uncounted = True
        return conn

    pool.make_connection = uncounted  # type: ignore[method-assign]
    return client


def flush(client: redis.Redis, extra: dict[str, dict[str, float]] | None = None) -> None:
    """Add the process's counts since the last flush (and ``extra``) to the stages' hashes."""
    per_stage: dict[str, dict[str, float]] = {}
    for stage, counts in COMMANDS.take().items():
        per_stage.setdefault(_default[0] if stage == UNLABELLED else stage, {}).update(counts)
    with _lock:
        valkey = dict(_valkey)
        _valkey.clear()
    for stage, n in valkey.items():
        per_stage.setdefault(stage, {})["valkey"] = n
    for stage, counts in (extra or {}).items():
        row = per_stage.setdefault(stage, {})
        for key, value in counts.items():
            row[key] = row.get(key, 0) + value
    pipe = client.pipeline(transaction=False)
    for stage, counts in per_stage.items():
        for key, value in counts.items():
            pipe.hincrbyfloat(COST_KEY.format(stage), key, value)
    if _kafka:
        pipe.hset(KAFKA_KEY, mapping={k: v for k, v in _kafka.items()})
    pipe.execute()


def start_message(stage: str) -> None:
    """Count this thread's work as ``stage``'s from now on."""
    set_stage(stage)
    _local.started = (time.monotonic(), time.thread_time())


def end_message(client: redis.Redis) -> None:
    """Add the message's busy and CPU seconds to its stage, then flush every count."""
    stage = getattr(_local, "stage", None)
    wall, cpu = getattr(_local, "started", (time.monotonic(), time.thread_time()))
    busy = {"busy_s": time.monotonic() - wall, "cpu_s": time.thread_time() - cpu}
    set_stage(None)
    flush(client, {stage: {**busy, "messages": 1}} if stage else None)


def server_cpu(data_dir: Path) -> dict[str, float]:
    """Return the CPU seconds (user + system) so far of each local server with a pid file."""
    out = {}
    for name in ("mongo", "valkey", "kafka"):
        try:
            pid = int((data_dir / f"{name}.pid").read_text().split()[0])
            times = psutil.Process(pid).cpu_times()
            out[name] = times.user + times.system
        except (OSError, ValueError, psutil.Error):
            continue
    return out


def process_cpu(pid: int) -> float:
    """Return the CPU seconds so far of a process and its children."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


def collect(client: redis.Redis) -> dict[str, dict[str, float]]:
    """Return the counts of every stage, Kafka round trips attributed to their stage."""
    out: dict[str, dict[str, float]] = {}
    for stage in ROWS:
        raw: dict[bytes, bytes] = client.hgetall(COST_KEY.format(stage))  # type: ignore[assignment]
        out[stage] = {k.decode(): float(v) for k, v in raw.items()}
    kafka: dict[bytes, bytes] = client.hgetall(KAFKA_KEY)  # type: ignore[assignment]
    for key, tx in kafka.items():
        stage = "bridge" if key.decode().endswith("consumer") else "output"
        out[stage]["kafka"] = out[stage].get("kafka", 0) + int(tx)
    return out


def table(costs: dict[str, dict[str, float]], n: int, servers: dict[str, float]) -> str:
    """Return the cost table per 1,000 alerts, one row per stage, with a total row."""
    scale = 1000 / n
    head = f"{'per 1,000 alerts':<12}" + "".join(f"{label:>13}" for _, label, _ in COLUMNS)
    lines = [head]
    total: dict[str, float] = {}
    for stage in ROWS:
        counts = costs.get(stage, {})
        cells = ""
        for key, _, unit in COLUMNS:
            value = counts.get(key, 0.0)
            total[key] = total.get(key, 0.0) + value
            cells += f"{value * scale * unit:>13.2f}"
        lines.append(f"{stage:<12}{cells}")
    cells = "".join(f"{total[key] * scale * unit:>13.2f}" for key, _, unit in COLUMNS)
    lines.append(f"{'total':<12}{cells}")
    servers_line = ", ".join(f"{k} {v * scale:.2f}" for k, v in servers.items())
    lines.append(f"server CPU s per 1,000 alerts (whole run): {servers_line}")
    return "\n".join(lines)
