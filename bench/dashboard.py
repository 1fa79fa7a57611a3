"""Cost of monitoring: recording a stage's figures, and serving the page and /metrics.

Step 1: time ``record_stage`` (one Valkey round trip per batch) over many calls;
Step 2: fill a Valkey database of its own with a busy hour: per-minute counters for
        every stage, passes of 25 filters for 24 hours, and D dead letters on
        ``ztf_ingest`` (real Dramatiq messages, nacked as a worker does);
Step 3: time ``GET /``, ``GET /queues/ztf_ingest`` and ``GET /metrics`` on the
        dashboard app (in this process, over the real Valkey, MongoDB and Kafka).
Run with the test services up: ``BOOM_CONFIG=config/test.yaml .venv/bin/python
bench/dashboard.py --dead 1000``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from boom_tasks.dashboard.app import create_app  # noqa: E402
from boom_tasks.monitor import stats  # noqa: E402
from boom_tasks.settings import get_settings  # noqa: E402

#: Valkey database of this bench (flushed before and after).
BENCH_DB = 10


def time_recording(valkey: redis.Redis, calls: int) -> float:
    """Return the mean seconds of one ``record_stage`` call."""
    times = {"received": time.time() - 3.0}
    start = time.perf_counter()
    for _ in range(calls):
        stats.record_stage(valkey, "ZTF", "ingested", 1000, times)
    return (time.perf_counter() - start) / calls


def fill(valkey: redis.Redis, url: str, dead: int) -> None:
    """Write an hour of per-minute figures, 24 h of passes, and ``dead`` dead letters."""
    now = time.time()
    for minute in range(60):
        t = now - minute * 60
        for i, stage in enumerate(stats.STAGES):
            stats.record_stage(valkey, "ZTF", stage, 20_000, {"received": t - 5 * i}, now=t)
    for hour in range(24):
        passes = {f"filter-{k:02d}": 10 * k for k in range(25)}
        stats.record_passes(valkey, "ZTF", passes, now=now - hour * 3600)
    broker = RedisBroker(url=url, namespace="dramatiq")
    for k in range(dead):
        args = (f"boom:ztf:batch:{k}", 1000, now)
        broker.enqueue(Message("ztf_ingest", "ztf_ingest", args, {}, {}))
    consumer = broker.consume("ztf_ingest", prefetch=100, timeout=1000)
    nacked = 0
    for proxy in consumer:
        if proxy is None:
            break
        consumer.nack(proxy)
        nacked += 1
    consumer.close()
    broker.close()
    assert nacked == dead, (nacked, dead)


def time_get(client: TestClient, path: str, repeat: int) -> tuple[float, float, int]:
    """Return median and max seconds of ``GET path``, and the answer's size in bytes."""
    seconds, size = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        answer = client.get(path)
        seconds.append(time.perf_counter() - start)
        assert answer.status_code == 200, answer.text[:200]
        size = len(answer.content)
    return statistics.median(seconds), max(seconds), size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dead", type=int, default=1000, help="dead letters on ztf_ingest")
    p.add_argument("--calls", type=int, default=2000, help="record_stage calls timed")
    p.add_argument("--repeat", type=int, default=20, help="requests per page timed")
    args = p.parse_args()
    base = get_settings()
    settings = base.model_copy(update={"valkey": base.valkey.model_copy(update={"db": BENCH_DB})})
    valkey = redis.Redis.from_url(settings.valkey.url)
    valkey.flushdb()
    try:
        per_call = time_recording(valkey, args.calls)
        print(f"record_stage: {per_call * 1e6:.0f} us per batch ({args.calls} calls)")
        valkey.flushdb()
        fill(valkey, settings.valkey.url, args.dead)
        print(f"filled: 60 min x {len(stats.STAGES)} stages, 24 h x 25 filters, {args.dead} dead")
        with TestClient(create_app(settings)) as client:
            for path in ("/", "/queues/ztf_ingest", "/metrics"):
                median, worst, size = time_get(client, path, args.repeat)
                print(
                    f"GET {path:<20} median {median * 1e3:7.1f} ms  max {worst * 1e3:7.1f} ms"
                    f"  {size / 1024:7.1f} KiB"
                )
    finally:
        valkey.flushdb()


if __name__ == "__main__":
    main()
