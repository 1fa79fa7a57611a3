"""Ingestion benchmark: the broker (bridge + K workers) against a naive loop, same alerts.

For each survey (ZTF and LSST by default, side by side in one run):
Step 1: generate N alerts from the survey's real packets (new ids and positions,
        same structure, cutouts included) and produce them to a fresh Kafka topic.
Step 2: naive baseline, one process: consume → decode → insert_one per alert
        (alert, cutouts, and a $addToSet upsert of the object's history).
Step 3: the broker: K ``dramatiq boom_tasks.actors`` processes (started and warm
        before the clock starts) and the bridge, in a fresh database.
Rates are alerts/s from the first packet consumed to the last document written.
Run: ``BOOM_CONFIG=config/test.yaml .venv/bin/python bench/ingest.py --n 10000 [--surveys LSST]``
(services up with ``ops/services.py up``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pymongo
from confluent_kafka import Consumer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from boom_tasks.batches import BatchRef  # noqa: E402
from boom_tasks.errors import AlertRejected  # noqa: E402
from boom_tasks.ingest.indexes import ensure_indexes  # noqa: E402
from boom_tasks.replay.producer import produce_packets  # noqa: E402
from boom_tasks.services.kafka import consumer_config  # noqa: E402
from boom_tasks.settings import Settings, get_settings  # noqa: E402
from boom_tasks.surveys import SURVEYS, Survey  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
#: Real packets each survey's synthetic alerts are made from.
SOURCES = {"ZTF": DATA / "ztf" / "fink-20181129", "LSST": DATA / "lsst"}


def naive(
    settings: Settings, survey: Survey, topic: str, n: int, db: pymongo.database.Database
) -> float:
    """Consume → decode → insert_one, one alert at a time; return alerts/s."""
    consumer = Consumer(consumer_config(settings.kafka, f"naive-{uuid.uuid4().hex[:8]}"))
    consumer.subscribe([topic])
    done, start = 0, None
    while done < n:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        start = start or time.perf_counter()
        try:
            docs = survey.parse_packet(msg.value(), dt.datetime.now(dt.UTC))
        except AlertRejected:
            done += 1
            continue
        db[survey.alerts].insert_one(docs.alert)
        db[survey.cutouts].insert_one({"_id": docs.candid, **docs.cutouts})
        h = docs.history
        db[survey.aux].update_one(
            {"_id": docs.object_id},
            {
                "$addToSet": {
                    "prv_candidates": {"$each": h.prv_candidates},
                    "prv_nondetections": {"$each": h.prv_nondetections},
                    "fp_hists": {"$each": h.fp_hists},
                }
            },
            upsert=True,
        )
        done += 1
    consumer.close()
    return n / (time.perf_counter() - (start or 0))


def _start_workers(k: int, env: dict[str, str]) -> subprocess.Popen:
    cmd = [str(Path(sys.executable).parent / "dramatiq"), "boom_tasks.actors"]
    return subprocess.Popen(
        [*cmd, "--processes", str(k), "--threads", "2"],
        env=env,
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )


def broker(
    settings: Settings,
    survey: Survey,
    topic: str,
    n: int,
    k: int,
    db: pymongo.database.Database,
) -> float:
    """Run K workers and the bridge; return alerts/s from first consume to last write."""
    from boom_tasks.bridge.consumer import Bridge
    from boom_tasks.broker import setup_broker
    from boom_tasks.chain import declare_chain

    env = {**os.environ, "BOOM_MONGO__DATABASE": db.name}
    workers = _start_workers(k, env)
    time.sleep(4)  # workers boot and ensure indexes before the clock starts
    first: list[float] = []
    actor = declare_chain(setup_broker(settings), [survey], settings)[survey.name]["ingest"]

    def send(ref: BatchRef, received_at: float) -> None:
        first.append(received_at)
        actor.send(ref.key, ref.count, received_at)

    group = settings.kafka.model_copy(update={"group_id": f"bench-{uuid.uuid4().hex[:8]}"})
    bridge = Bridge(
        settings.model_copy(update={"kafka": group}), survey, topic, send, exit_on_eof=True
    )
    threading.Thread(target=bridge.run, daemon=True).start()
    while db[survey.alerts].estimated_document_count() < n:
        time.sleep(0.05)
    end = time.time()
    workers.terminate()
    workers.wait()
    return n / (end - min(first))


def bench_survey(
    settings: Settings, client: pymongo.MongoClient, survey: Survey, n: int, workers: list[int]
) -> dict[str, float]:
    """Produce N synthetic alerts of ``survey`` and ingest them naively and with the broker."""
    topic = f"bench-ingest-{survey.queue_prefix}-{uuid.uuid4().hex[:8]}"
    packets = list(survey.synth(SOURCES[survey.name], n, seed=1, alerts_per_object=3))
    t = time.perf_counter()
    produce_packets(settings, topic, iter(packets), progress=False)
    size_kb = sum(map(len, packets)) / len(packets) / 1024
    took = time.perf_counter() - t
    print(f"{survey.name}: produced {n} alerts ({size_kb:.0f} KB each) in {took:.1f}s")
    results = {}
    db = client["bench_naive"]
    client.drop_database(db.name)
    ensure_indexes(db, survey)  # the same indexes as the broker's: same work per insert
    results[f"{survey.name} naive single-process loop"] = naive(settings, survey, topic, n, db)
    for k in workers:
        db = client[f"bench_broker_{k}"]
        client.drop_database(db.name)
        rate = broker(settings, survey, topic, n, k, db)
        results[f"{survey.name} broker, {k} worker process(es)"] = rate
    for name in ("bench_naive", *(f"bench_broker_{k}" for k in workers)):
        client.drop_database(name)  # leave the server as we found it
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--surveys", nargs="+", default=["ZTF", "LSST"], choices=sorted(SURVEYS))
    p.add_argument("--batch-size", type=int, default=500, help="alerts per bridge batch")
    args = p.parse_args()
    settings = get_settings()
    bridge = settings.bridge.model_copy(update={"batch_size": args.batch_size})
    settings = settings.model_copy(update={"bridge": bridge})
    client = pymongo.MongoClient(settings.mongo.uri)
    results: dict[str, float] = {}
    for name in args.surveys:
        results.update(bench_survey(settings, client, SURVEYS[name], args.n, args.workers))
    print(f"\nN = {args.n} alerts per survey ({os.cpu_count()} CPU cores)")
    for name, rate in results.items():
        print(f"  {name:<40} {rate:8.1f} alerts/s")


if __name__ == "__main__":
    main()
