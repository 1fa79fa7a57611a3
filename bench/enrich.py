"""Enrichment benchmark: crossmatch (VSX + Mangrove + GCVS) and ML, batched vs naive.

Step 1: make sure the three real catalogs are loaded in the database (loads are
        resumable; the first run pays for them once and says so);
Step 2: generate N alerts from the real ZTF packets (new candid/objectId/position,
        same structure, 3 alerts per object) and ingest them into scratch
        ``bench_*`` collections beside the catalogs (not timed);
Step 3: naive baseline, one process, one alert at a time: a cone search per
        catalog per new object, its write, then properties and every model on
        that single alert, then its write;
Step 4: the stages as the workers run them (``crossmatch_batch`` then
        ``enrich_batch`` on batches of candids), in K processes fed from one queue;
Step 5: the ``$geoWithin`` rate on the same alerts and catalogs (one query per
        catalog per alert, as the reference broker does), on a small sample
        because on SecantusDB each VSX query scans the collection.
Each timed run starts from the same state (matches and classifications removed).
Run: ``BOOM_CONFIG=config/test.yaml .venv/bin/python bench/enrich.py --n 10000``
(services up with ``ops/services.py up``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from boom_tasks.catalogs.loader import LoadOptions, load_catalog  # noqa: E402
from boom_tasks.catalogs.meta import get_meta  # noqa: E402
from boom_tasks.config_base import project_path  # noqa: E402
from boom_tasks.crossmatch.match import RAD_PER_ARCSEC, geojson_position  # noqa: E402
from boom_tasks.crossmatch.stage import (  # noqa: E402
    crossmatch_batch,
    crossmatch_objects,
    plan_catalogs,
)
from boom_tasks.ingest.indexes import ensure_indexes  # noqa: E402
from boom_tasks.ingest.stage import ingest_packets  # noqa: E402
from boom_tasks.ml.registry import load_models  # noqa: E402
from boom_tasks.ml.stage import enrich_batch  # noqa: E402
from boom_tasks.services.mongo import get_db  # noqa: E402
from boom_tasks.settings import get_settings  # noqa: E402
from boom_tasks.surveys.ztf import ZTF  # noqa: E402
from boom_tasks.surveys.ztf.synth import synth_alerts  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CATALOG_FILES = {
    "vsx": "vsx.parquet",
    "mangrove": "mangrove_filtered.parquet",
    "gcvs": "gcvs.parquet",
}


#: ZTF (same parser, same stages) writing to scratch ``bench_ZTF_*`` collections.
SURVEY = dataclasses.replace(ZTF, collection_prefix="bench_")


def ensure_catalogs(db: Any) -> None:
    """Load any of the three catalogs that is not completely loaded yet."""
    for name, file in CATALOG_FILES.items():
        meta = get_meta(db, name)
        if meta is None or meta.get("status") != "complete":
            t = time.perf_counter()
            load_catalog(db, name, DATA / "catalogs" / file, LoadOptions(progress=True))
            print(f"loaded {name} in {time.perf_counter() - t:.0f}s (once; kept for next runs)")


def prepare(db: Any, n: int) -> list[int]:
    """Ingest N synthetic alerts into the bench collections; return their candids."""
    for coll in (SURVEY.alerts, SURVEY.aux, SURVEY.cutouts, SURVEY.quarantine):
        db.drop_collection(coll)
    ensure_indexes(db, SURVEY)
    candids: list[int] = []
    batch: list[bytes] = []
    for packet in synth_alerts(DATA / "ztf" / "fink-20181129", n, seed=3, alerts_per_object=3):
        batch.append(packet)
        if len(batch) == 1000:
            candids += ingest_packets(db, SURVEY, batch, "bench").candids
            batch = []
    if batch:
        candids += ingest_packets(db, SURVEY, batch, "bench").candids
    return candids


def reset(db: Any) -> None:
    """Remove what crossmatch and ML wrote, so every run does the same work."""
    db[SURVEY.aux].update_many({}, {"$unset": {"cross_matches": "", "cross_matched_at": ""}})
    fields = {"properties": "", "classifications": "", "classifications_skipped": ""}
    db[SURVEY.alerts].update_many({}, {"$unset": {**fields, "enriched_at": ""}})


# --- the batched stages in K processes -------------------------------------------------

_state: dict[str, Any] = {}


def _init() -> None:
    """Per process, after start: database, catalog plans and models, as a worker does."""
    settings = get_settings()
    db = get_db(settings.mongo)
    _state["db"] = db
    _state["plans"], _ = plan_catalogs(db, settings.crossmatch["ZTF"])
    _state["models"] = load_models(settings.ml, "ZTF", project_path(settings.ml.models_dir))


def _stage(candids: list[int]) -> int:
    db = _state["db"]
    crossmatch_batch(db, SURVEY, _state["plans"], candids)
    return enrich_batch(db, SURVEY, _state["models"], candids).alerts


def _ready(_: int) -> bool:
    return "models" in _state


def batched(candids: list[int], k: int, batch: int) -> float:
    """Run the stages on batches in K processes; return alerts/s."""
    ctx = mp.get_context("spawn")  # fresh processes, like dramatiq's workers
    with ctx.Pool(k, initializer=_init) as pool:
        assert all(pool.map(_ready, range(4 * k)))  # every process initialised
        chunks = [candids[i : i + batch] for i in range(0, len(candids), batch)]
        t = time.perf_counter()
        done = sum(pool.imap_unordered(_stage, chunks))
        elapsed = time.perf_counter() - t
    assert done == len(candids), (done, len(candids))
    return len(candids) / elapsed


# --- naive: one alert at a time -----------------------------------------------------------


def naive(db: Any, candids: list[int]) -> float:
    """Crossmatch, score and write one alert at a time in this process; return alerts/s."""
    _init()
    plans, models = _state["plans"], _state["models"]
    t = time.perf_counter()
    for candid in candids:
        alert = db[SURVEY.alerts].find_one({"_id": candid}, {"objectId": 1})
        aux = db[SURVEY.aux].find_one(
            {"_id": alert["objectId"]}, {"coordinates": 1, "cross_matches": 1}
        )
        if "cross_matches" not in aux:  # a new object: one cone search per catalog
            now = dt.datetime.now(dt.UTC)
            crossmatch_objects(db, SURVEY, plans, {aux["_id"]: geojson_position(aux)}, now)
        enrich_batch(db, SURVEY, models, [candid])
    return len(candids) / (time.perf_counter() - t)


def geowithin(db: Any, candids: list[int], sample: int) -> dict[str, float]:
    """Return $geoWithin cones/s per catalog, over the first ``sample`` alerts."""
    settings = get_settings()
    radius = {s.catalog: s.radius for s in settings.crossmatch["ZTF"]}
    docs = list(db[SURVEY.alerts].find({"_id": {"$in": candids[:sample]}}, {"coordinates": 1}))
    rates = {}
    for name in CATALOG_FILES:
        t = time.perf_counter()
        for d in docs:
            centre = d["coordinates"]["radec_geojson"]["coordinates"]
            cone = {"$centerSphere": [centre, radius[name] * RAD_PER_ARCSEC]}
            list(db[name].find({"coordinates.radec_geojson": {"$geoWithin": cone}}, {"_id": 1}))
        rates[name] = len(docs) / (time.perf_counter() - t)
    return rates


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batch-size", type=int, default=1000, help="candids per stage message")
    p.add_argument("--naive-n", type=int, default=2000, help="alerts for the naive loop")
    p.add_argument("--geo-sample", type=int, default=3, help="alerts for the $geoWithin rate")
    args = p.parse_args()
    db = get_db(get_settings().mongo)
    ensure_catalogs(db)
    t = time.perf_counter()
    candids = prepare(db, args.n)
    print(f"ingested {len(candids)} synthetic alerts in {time.perf_counter() - t:.0f}s (untimed)")
    results: dict[str, float] = {}
    for k in args.workers:
        reset(db)
        results[f"batched stages, {k} process(es)"] = batched(candids, k, args.batch_size)
    matched = db[SURVEY.aux].count_documents({"cross_matches.vsx.0": {"$exists": True}})
    galaxies = db[SURVEY.aux].count_documents({"cross_matches.mangrove.0": {"$exists": True}})
    reset(db)
    results[f"naive loop (first {args.naive_n} alerts)"] = naive(db, candids[: args.naive_n])
    geo = geowithin(db, candids, args.geo_sample)
    per_alert = 1 / sum(1 / r for r in geo.values())
    for coll in (SURVEY.alerts, SURVEY.aux, SURVEY.cutouts, SURVEY.quarantine):
        db.drop_collection(coll)  # the catalogs stay for the next run
    print(
        f"\nN = {len(candids)} alerts, {os.cpu_count()} CPU cores; "
        f"{matched} objects with a VSX match, {galaxies} with a Mangrove galaxy"
    )
    for name, rate in results.items():
        print(f"  {name:<40} {rate:8.1f} alerts/s")
    print(
        f"  {'$geoWithin, one query per catalog':<40} {per_alert:8.3f} alerts/s  "
        + ", ".join(f"{k} {v:.3f} cones/s" for k, v in geo.items())
    )


if __name__ == "__main__":
    main()
