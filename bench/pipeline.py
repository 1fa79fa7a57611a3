"""Whole-chain benchmark: Kafka in → bridge → ingest → crossmatch → ML → 25 filters → Kafka out.

Step 1: generate N alerts from the real ZTF packets (new candid/objectId/position,
        same structure, 3 alerts per object) and produce them to a fresh topic;
        check that VSX, Mangrove and GCVS are loaded in the catalog database;
Step 2: naive baseline, one process, one alert at a time through the same stage
        functions (ingest, crossmatch, ML, 25 filters, publish): every round trip
        paid per alert, as a per-alert broker loop does;
Step 3: the broker: K ``dramatiq boom_tasks.actors`` processes (started and warm
        before the clock starts) and ``boom-bridge``, each run in a fresh
        database with the same 25 active filters and its own output topic;
Step 4: alerts/s (first packet received → every queue drained) and latency
        percentiles (bridge receive → published) from the ``times`` of every
        message on the output topic; beside them, what the dashboard reports from
        the stages' counters in Valkey (each run has a Valkey database of its own),
        so its bucketed percentiles can be checked against the exact ones.
Run with the catalogs loaded (``boom catalogs load vsx ...``) in the configured
database: ``.venv/bin/python bench/pipeline.py --n 10000 --workers 1 2``;
``--durability both`` runs each broker twice, with durable hand-offs (the default:
WAITAOF and journaled writes, docs/durability.md) and without, to price them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pymongo
import redis
from confluent_kafka import Consumer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.filters import bench_filters  # noqa: E402
from boom_tasks.config_base import project_path  # noqa: E402
from boom_tasks.crossmatch.stage import crossmatch_batch, plan_catalogs  # noqa: E402
from boom_tasks.filter.run import run_filters  # noqa: E402
from boom_tasks.filter.store import add_filter, load_active, set_active  # noqa: E402
from boom_tasks.ingest.indexes import ensure_indexes  # noqa: E402
from boom_tasks.ingest.stage import ingest_packets  # noqa: E402
from boom_tasks.ml.registry import load_models  # noqa: E402
from boom_tasks.ml.stage import enrich_batch  # noqa: E402
from boom_tasks.monitor.stats import percentile, stage_totals  # noqa: E402
from boom_tasks.output.publish import get_producer, publish_batch  # noqa: E402
from boom_tasks.output.schema import decode  # noqa: E402
from boom_tasks.replay.producer import produce_packets  # noqa: E402
from boom_tasks.services.kafka import consumer_config  # noqa: E402
from boom_tasks.settings import Settings, get_settings  # noqa: E402
from boom_tasks.surveys.ztf import ZTF  # noqa: E402
from boom_tasks.surveys.ztf.synth import synth_alerts  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
#: Environment of the workers and the bridge with durable hand-offs on or off.
DURABILITY = {
    "on": {},
    "off": {"BOOM_VALKEY__DURABLE_LOCAL": "false", "BOOM_MONGO__WRITE_CONCERN": "acknowledged"},
}
STAGES = ("ingest", "crossmatch", "ml", "filter", "output")
#: Valkey database of the broker runs (flushed before each): their counters are their own.
BENCH_VALKEY_DB = 9


def install_filters(db: Any) -> None:
    """Store and activate the 25 benchmark filters in ``db``."""
    db.drop_collection("filters")
    for name, pipeline in bench_filters():
        fid = add_filter(
            db,
            name=name,
            survey="ZTF",
            pipeline=json.dumps(pipeline),
            programids=[0, 1],
            aux_collection=ZTF.aux,
        )
        set_active(db, fid, True)


def fresh_db(client: pymongo.MongoClient, name: str) -> Any:
    """Drop and re-create a bench database with the survey's indexes and the filters."""
    client.drop_database(name)
    db = client[name]
    ensure_indexes(db, ZTF)
    install_filters(db)
    return db


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


def naive(settings: Settings, packets: list[bytes], db: Any, topic: str) -> tuple[float, str]:
    """One alert at a time through every stage in this process; return (alerts/s, latency)."""
    catalogs = db.client[settings.mongo.catalog_database or settings.mongo.database]
    plans, problems = plan_catalogs(catalogs, settings.crossmatch["ZTF"])
    assert not problems, problems
    models = load_models(settings.ml, "ZTF", project_path(settings.ml.models_dir))
    filters = load_active(db, "ZTF")
    producer = get_producer(settings.kafka)
    output = settings.output.model_copy(update={"results_topic": topic})
    start = time.time()
    for packet in packets:
        received = time.time()
        candids = ingest_packets(db, ZTF, [packet], "naive").candids
        crossmatch_batch(db, ZTF, plans, candids)
        enrich_batch(db, ZTF, models, candids)
        outcomes, _ = run_filters(db, ZTF, filters, candids, settings.filters)
        if any(o.passes for o in outcomes):
            publish_batch(db, ZTF, producer, candids, {"received": received}, output)
    rate = len(packets) / (time.time() - start)
    return rate, latency(read_times(settings, topic))


def drained(client: redis.Redis) -> bool:
    """Return True when no batch or stage message is waiting."""
    keys = [f"dramatiq:{ZTF.queue_prefix}_{s}.msgs" for s in STAGES]
    return not client.hlen(f"boom:{ZTF.queue_prefix}:pending") and not any(
        client.hlen(k) for k in keys
    )


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


def broker(
    settings: Settings, source: str, n: int, k: int, db: Any, durability: str = "on"
) -> tuple[float, str]:
    """Run K workers and the bridge over the source topic; return (alerts/s, latency)."""
    out_topic = f"bench-out-{uuid.uuid4().hex[:8]}"
    valkey = redis.Redis(settings.valkey.host, settings.valkey.port, db=BENCH_VALKEY_DB)
    valkey.flushdb()
    env = {
        **os.environ,
        "BOOM_VALKEY__DB": str(BENCH_VALKEY_DB),
        "BOOM_MONGO__DATABASE": db.name,
        "BOOM_MONGO__CATALOG_DATABASE": settings.mongo.catalog_database or settings.mongo.database,
        "BOOM_OUTPUT__RESULTS_TOPIC": out_topic,
        "BOOM_KAFKA__GROUP_ID": f"bench-{uuid.uuid4().hex[:8]}",
        **DURABILITY[durability],
    }
    dramatiq = str(Path(sys.executable).parent / "dramatiq")
    workers = subprocess.Popen(
        [dramatiq, "boom_tasks.actors", "--processes", str(k), "--threads", "2"],
        env=env,
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(8)  # workers boot, ensure indexes and load the models before the clock starts
    bridge = [str(Path(sys.executable).parent / "boom-bridge"), "ZTF", "--topic", source]
    subprocess.run(
        [*bridge, "--exit-on-eof"], env=env, cwd=ROOT, check=True, stderr=subprocess.DEVNULL
    )
    while not drained(valkey) or db[ZTF.alerts].estimated_document_count() < n:
        time.sleep(0.2)
    end = time.time()
    workers.terminate()
    workers.wait()
    first = db[ZTF.alerts].find_one(sort=[("created_at", 1)])["created_at"].timestamp()
    times = read_times(settings, out_topic)
    start = min([t["received"] for t in times] or [first])
    return n / (end - start), f"{latency(times)}\n{' ' * 36}{dashboard_view(valkey)}"


def check(naive_db: Any, db: Any, candids: list[int]) -> str:
    """Compare a broker run's passes with the naive loop's, and count filters still active.

    Filters reading the light curve, and ML scores, see what has arrived: the naive loop
    filters an alert before the rest of its object's alerts exist, the broker after the
    whole batch is ingested. Differences are listed per filter, so they can be told apart.
    """
    ids = {d["_id"]: d["name"] for d in db.filters.find({}, {"name": 1})}
    naive_ids = {d["_id"]: d["name"] for d in naive_db.filters.find({}, {"name": 1})}

    def passes(database: Any, names: dict[str, str]) -> set[tuple[int, str]]:
        query = {"candid": {"$in": candids}}
        docs = database[ZTF.filter_passes].find(query, {"candid": 1, "filter_id": 1})
        return {(p["candid"], names[p["filter_id"]]) for p in docs}

    differ: dict[str, int] = {}
    for _, name in passes(db, ids) ^ passes(naive_db, naive_ids):
        differ[name] = differ.get(name, 0) + 1
    active = db.filters.count_documents({"active": True})
    verdict = "identical" if not differ else f"differ in {differ}"
    return f"passes on the naive loop's alerts {verdict}; {active}/25 filters active"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--naive-n", type=int, default=1000, help="alerts through the naive loop")
    p.add_argument(
        "--durability",
        choices=["on", "off", "both"],
        default="on",
        help="durable hand-offs in the broker runs (both: each run twice)",
    )
    args = p.parse_args()
    settings = get_settings()
    client = pymongo.MongoClient(settings.mongo.uri, tz_aware=True)
    packets = list(
        synth_alerts(DATA / "ztf" / "fink-20181129", args.n, seed=5, alerts_per_object=3)
    )
    source = f"bench-pipeline-{uuid.uuid4().hex[:8]}"
    produce_packets(settings, source, iter(packets), progress=False)
    print(f"produced {args.n} synthetic alerts to {source}; 25 filters (bench/filters.py)")
    results = {}
    naive_db = fresh_db(client, "bench_pipeline_naive")
    topic = f"bench-naive-{uuid.uuid4().hex[:8]}"
    rate, lat = naive(settings, packets[: args.naive_n], naive_db, topic)
    results[f"naive loop ({args.naive_n} alerts)"] = (rate, lat)
    subset = [d["_id"] for d in naive_db[ZTF.alerts].find({}, {"_id": 1})]
    checks = []
    modes = ["on", "off"] if args.durability == "both" else [args.durability]
    for k in args.workers:
        for mode in modes:
            db = fresh_db(client, f"bench_pipeline_{k}")
            name = f"broker, {k} process(es), durable {mode}"
            results[name] = broker(settings, source, args.n, k, db, mode)
            checks.append(f"  {name}: {check(naive_db, db, subset)}")
    for name in ["bench_pipeline_naive", *(f"bench_pipeline_{k}" for k in args.workers)]:
        client.drop_database(name)
    print(f"\nN = {args.n} alerts ({os.cpu_count()} CPU cores)")
    for name, (rate, lat) in results.items():
        print(f"  {name:<32} {rate:8.1f} alerts/s   {lat}")
    print("\n".join(checks))


if __name__ == "__main__":
    main()
