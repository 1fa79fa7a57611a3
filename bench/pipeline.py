"""Whole-chain benchmark: Kafka in → bridge → ingest → crossmatch → ML → 25 filters → Kafka out.

Step 1: generate N alerts from the real ZTF packets (new candid/objectId/position,
        same structure, 3 alerts per object) and produce them to a fresh topic;
        check that VSX, Mangrove and GCVS are loaded in the catalog database;
Step 2: naive baseline, one process, one alert at a time through the same stage
        functions (ingest, crossmatch, ML, the configured science actors, 25
        filters, publish): every round trip paid per alert, as a per-alert broker
        loop does;
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
``--filters both`` runs each broker with the filters grouped (one ``$facet`` per
group, the default) and as landed (one aggregation per filter), to compare them;
the naive loop always runs them one at a time. ``--costs`` runs instrumented workers
and bridge and prints each run's cost per stage per 1,000 alerts (bench/costs.py,
docs/performance.md). ``--paced 0.5 0.8`` then feeds the last broker configuration in
visit-sized bursts at those fractions of its measured rate (bench/paced.py) and
draws throughput and latency over time (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pymongo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import paced  # noqa: E402
from bench.filters import bench_filters  # noqa: E402
from bench.runs import DATA, Options, broker, latency, read_times  # noqa: E402
from boom_tasks.config_base import project_path  # noqa: E402
from boom_tasks.crossmatch.stage import crossmatch_batch, plan_catalogs  # noqa: E402
from boom_tasks.filter.run import run_filters  # noqa: E402
from boom_tasks.filter.store import add_filter, load_active, set_active  # noqa: E402
from boom_tasks.ingest.indexes import ensure_indexes  # noqa: E402
from boom_tasks.ingest.stage import ingest_packets  # noqa: E402
from boom_tasks.ml.registry import load_models  # noqa: E402
from boom_tasks.ml.stage import enrich_batch  # noqa: E402
from boom_tasks.output.publish import get_producer, publish_batch  # noqa: E402
from boom_tasks.replay.producer import produce_packets  # noqa: E402
from boom_tasks.science.actor import kafka_publisher, prepare_all  # noqa: E402
from boom_tasks.science.base import ScienceActor  # noqa: E402
from boom_tasks.science.loader import survey_actors  # noqa: E402
from boom_tasks.science.stage import Publisher, run_science  # noqa: E402
from boom_tasks.settings import Settings, get_settings  # noqa: E402
from boom_tasks.surveys.ztf import ZTF  # noqa: E402
from boom_tasks.surveys.ztf.synth import synth_alerts  # noqa: E402

#: Environment of the workers and the bridge with durable hand-offs on or off.
DURABILITY = {
    "on": {},
    "off": {"BOOM_VALKEY__DURABLE_LOCAL": "false", "BOOM_MONGO__WRITE_CONCERN": "acknowledged"},
}
#: Environment of the workers with the filters grouped or run one at a time (as landed).
FILTERING = {
    "grouped": {"BOOM_FILTERS__GROUPED": "true"},
    "landed": {"BOOM_FILTERS__GROUPED": "false"},
}


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


def science_stage(settings: Settings) -> tuple[list[ScienceActor], Publisher]:
    """Return the ZTF science actors the configuration enables, set up, and their publisher.

    The broker runs them between ML and the filters, so the naive loop and the stage
    costs must too: without them the broker did a stage more than the loop it was
    compared with.
    """
    actors = survey_actors(settings.science.actors, "ZTF")
    prepare_all(actors)
    return actors, kafka_publisher(settings)


def naive(settings: Settings, packets: list[bytes], db: Any, topic: str) -> tuple[float, str]:
    """One alert at a time through every stage in this process; return (alerts/s, latency)."""
    catalogs = db.client[settings.mongo.catalog_database or settings.mongo.database]
    plans, problems = plan_catalogs(catalogs, settings.crossmatch["ZTF"])
    assert not problems, problems
    models = load_models(settings.ml, "ZTF", project_path(settings.ml.models_dir))
    actors, publisher = science_stage(settings)
    filters = load_active(db, "ZTF")
    one_at_a_time = settings.filters.model_copy(update={"grouped": False})
    producer = get_producer(settings.kafka)
    output = settings.output.model_copy(update={"results_topic": topic})
    start = time.time()
    for packet in packets:
        received = time.time()
        candids = ingest_packets(db, ZTF, [packet], "naive").candids
        crossmatch_batch(db, ZTF, plans, candids)
        enrich_batch(db, ZTF, models, candids)
        run_science(db, ZTF, actors, candids, settings.science, publisher)
        outcomes, _ = run_filters(db, ZTF, filters, candids, one_at_a_time)
        if any(o.passes for o in outcomes):
            publish_batch(db, ZTF, producer, candids, {"received": received}, output)
    rate = len(packets) / (time.time() - start)
    return rate, latency(read_times(settings, topic))


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


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--threads", type=int, nargs="+", default=[2], help="threads per process")
    p.add_argument("--naive-n", type=int, default=1000, help="alerts through the naive loop")
    p.add_argument(
        "--durability",
        choices=["on", "off", "both"],
        default="on",
        help="durable hand-offs in the broker runs (both: each run twice)",
    )
    p.add_argument(
        "--filters",
        choices=["grouped", "landed", "both", "all"],
        default="grouped",
        help="filters grouped in one $facet per chunk, or one aggregation each (as landed); "
        "all: also the --landed-tree code",
    )
    p.add_argument(
        "--landed-tree",
        type=Path,
        help="checkout of the landed code (git archive): the 'landed' runs use its code",
    )
    p.add_argument("--costs", action="store_true", help="print each run's cost per stage")
    p.add_argument(
        "--paced",
        type=float,
        nargs="*",
        default=[],
        help="fractions of the last run's rate to feed it at, in visits (e.g. 0.5 0.8)",
    )
    p.add_argument("--visit", type=int, default=100, help="alerts per visit in paced mode")
    p.add_argument("--out", type=Path, default=Path("/tmp/boom-bench"), help="table and PNG")
    return p.parse_args()


def _variant(
    args: argparse.Namespace, k: int, threads: int, mode: str, filtering: str
) -> tuple[str, Options]:
    """Return the name and options of one broker run.

    ``filtering`` is "grouped", "landed" (this code, one filter at a time) or "code"
    (the ``--landed-tree`` code, which has no ``filters.grouped`` setting and refuses
    unknown ones; its processes run without the cost account, which it lacks).
    """
    name = f"broker, {k} proc x {threads} thr, durable {mode}, "
    log = args.out / "processes.log"
    if filtering == "code":
        opts = Options(k, DURABILITY[mode], threads=threads, log=log, tree=args.landed_tree)
        return name + "landed code", opts
    env = {**DURABILITY[mode], **FILTERING[filtering]}
    opts = Options(k, env, args.costs, threads=threads, log=log)
    return name + ("one filter at a time" if filtering == "landed" else filtering), opts


def _paced(
    settings: Settings, args: argparse.Namespace, client: Any, packets: list[bytes], last: Any
) -> list[str]:
    """Feed the last broker configuration in visits at each fraction of its rate."""
    name, rate, opts = last
    lines = [f"paced runs of '{name}' (sustainable rate taken as its {rate:.1f} alerts/s):"]
    runs = {}
    for fraction in args.paced:
        offered = fraction * rate
        topic = f"bench-paced-{uuid.uuid4().hex[:8]}"
        feed = paced.feeder(settings, topic, packets, offered, args.visit)
        db = fresh_db(client, "bench_pipeline_paced")
        paced_opts = Options(
            opts.k, opts.env, costs=False, threads=opts.threads, feed=feed, log=opts.log
        )
        run = broker(settings, topic, args.n, db, paced_opts)
        label = f"{fraction:.0%} of sustainable"
        runs[label] = run
        lines.append(paced.summary(label, run, offered, args.n / offered))
    client.drop_database("bench_pipeline_paced")
    png = args.out / "paced.png"
    paced.draw(runs, png)
    lines.append(f"  throughput and latency over time: {png}")
    return lines


def main() -> None:
    args = _args()
    args.out.mkdir(parents=True, exist_ok=True)
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
    checks, tables, last = [], [], None
    modes = ["on", "off"] if args.durability == "both" else [args.durability]
    filterings = {"both": ["landed", "grouped"], "all": ["code", "landed", "grouped"]}.get(
        args.filters, [args.filters]
    )
    if args.landed_tree and args.filters == "landed":
        filterings = ["code"]
    variants = [
        (k, t, mode, filtering)
        for k in args.workers
        for t in args.threads
        for mode in modes
        for filtering in filterings
    ]
    for k, t, mode, filtering in variants:
        db = fresh_db(client, f"bench_pipeline_{k}")
        name, opts = _variant(args, k, t, mode, filtering)
        run = broker(settings, source, args.n, db, opts)
        results[name] = (run.rate, run.summary)
        checks.append(f"  {name}: {check(naive_db, db, subset)}")
        if run.cost_table:
            tables.append(f"{name}\n{run.cost_table}")
        last = (name, run.rate, opts)
    for name in ["bench_pipeline_naive", *(f"bench_pipeline_{k}" for k in args.workers)]:
        client.drop_database(name)
    report = [f"N = {args.n} alerts ({os.cpu_count()} CPU cores)"]
    for name, (rate, lat) in results.items():
        report.append(f"  {name:<56} {rate:8.1f} alerts/s   {lat}")
    report += [*checks, "", *tables]
    if args.paced and last is not None:
        report += _paced(settings, args, client, packets, last)
    text = "\n".join(report)
    (args.out / "pipeline.txt").write_text(text + "\n")
    print(f"\n{text}\n(also in {args.out / 'pipeline.txt'})")


if __name__ == "__main__":
    main()
