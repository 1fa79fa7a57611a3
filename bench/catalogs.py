"""Catalog benchmark: load rate of the real catalogs, and cone searches two ways.

Step 1: load each chosen catalog from ``../shared/data/catalogs`` into a scratch
        database (replacing it), timing the inserts and the index builds apart.
Step 2: draw cones: half around real catalog rows (jittered by ~1 arcsec, so
        they match), half uniform on the sphere (mostly empty, like most alerts).
Step 3: HEALPix cone search: all cones in batches of ``--alert-batch`` (as the
        crossmatch gets alerts), one ``$in`` pixel query per batch (in chunks).
Step 4: ``$geoWithin``/``$centerSphere``, one query per cone, on the same
        collection, for as many cones as fit in ``--geo-seconds``; the matches of
        both methods are compared cone by cone.
Run: ``BOOM_CONFIG=config/test.yaml .venv/bin/python bench/catalogs.py --catalogs gcvs mangrove``
(services up with ``ops/services.py up``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from boom_tasks.catalogs import LoadOptions, catalog_order, load_catalog  # noqa: E402
from boom_tasks.catalogs.coords import to_degrees  # noqa: E402
from boom_tasks.catalogs.meta import get_meta  # noqa: E402
from boom_tasks.catalogs.readers import open_catalog  # noqa: E402
from boom_tasks.services.mongo import get_client  # noqa: E402
from boom_tasks.settings import get_settings  # noqa: E402
from boom_tasks.sky.cone import IN_CHUNK, cone_search  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "catalogs"
FILES = {
    "gcvs": DATA / "gcvs.parquet",
    "mangrove": DATA / "mangrove_filtered.parquet",
    "vsx": DATA / "vsx.parquet",
    "3hsp": DATA / "3hsp.csv",
}


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--catalogs", nargs="+", choices=sorted(FILES), default=["gcvs", "mangrove"])
    p.add_argument("--limit", type=int, help="load only the first N rows of each catalog")
    p.add_argument("--db", default="bench_catalogs", help="scratch database (dropped catalogs)")
    p.add_argument("--skip-load", action="store_true", help="reuse catalogs already loaded")
    p.add_argument("--batch-size", type=int, default=5000)
    p.add_argument("--cones", type=int, default=2000)
    p.add_argument("--radius", type=float, default=2.0, help="cone radius, arcsec")
    p.add_argument("--alert-batch", type=int, default=1000, help="cones per cone_search call")
    p.add_argument("--in-chunk", type=int, default=IN_CHUNK, help="pixel ids per $in query")
    p.add_argument("--geo-seconds", type=float, default=60.0, help="time budget of $geoWithin")
    return p.parse_args()


def _positions(db, name: str, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Return the catalog's positions, read from its file as the loader read them."""
    meta = get_meta(db, name)
    reader = open_catalog(meta["source"]["path"], meta["source"]["format"])
    ra_col, dec_col = meta["ra_column"], meta["dec_column"]
    parts = [
        to_degrees(b.columns[ra_col], b.columns[dec_col], first_row=b.start)
        for b in reader.batches(100_000)
    ]
    ra, dec = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return (ra[:limit], dec[:limit]) if limit else (ra, dec)


def _cones(db, name: str, n: int, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    ra, dec = _positions(db, name, limit)
    pick = rng.choice(len(ra), n // 2, replace=len(ra) < n // 2)
    jitter = 1.0 / 3600
    near_ra = np.mod(
        ra[pick]
        + rng.normal(0, jitter, len(pick)) / np.maximum(np.cos(np.radians(dec[pick])), 1e-3),
        360,
    )
    near_dec = np.clip(dec[pick] + rng.normal(0, jitter, len(pick)), -90, 90)
    far_ra = rng.uniform(0, 360, n - len(pick))
    far_dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n - len(pick))))
    # Interleaved, so the $geoWithin subset has both kinds.
    out_ra, out_dec = np.empty(n), np.empty(n)
    out_ra[0::2], out_dec[0::2] = near_ra[: len(out_ra[0::2])], near_dec[: len(out_ra[0::2])]
    out_ra[1::2], out_dec[1::2] = far_ra[: len(out_ra[1::2])], far_dec[: len(out_ra[1::2])]
    return out_ra, out_dec


def _healpix(coll, ra, dec, radius, order, batch, in_chunk) -> tuple[float, list[set]]:
    started = time.monotonic()
    found: list[set] = []
    for k in range(0, len(ra), batch):
        results = cone_search(
            coll,
            ra[k : k + batch],
            dec[k : k + batch],
            radius,
            order=order,
            fields=["_id"],
            in_chunk=in_chunk,
        )
        found.extend({m["_id"] for m in r} for r in results)
    return time.monotonic() - started, found


def _geowithin(coll, ra, dec, radius, budget) -> tuple[float, list[set]]:
    started = time.monotonic()
    found: list[set] = []
    for r, d in zip(ra, dec, strict=True):
        query = {
            "coordinates.radec_geojson": {
                "$geoWithin": {"$centerSphere": [[r - 180.0, d], math.radians(radius / 3600)]}
            }
        }
        found.append({doc["_id"] for doc in coll.find(query, {"_id": 1})})
        if time.monotonic() - started > budget:
            break
    return time.monotonic() - started, found


def main() -> None:
    args = _args()
    db = get_client(get_settings().mongo)[args.db]
    print(f"database {args.db}; cone radius {args.radius} arcsec; {args.cones} cones")
    for name in args.catalogs:
        if not args.skip_load:
            options = LoadOptions(
                limit=args.limit, batch_size=args.batch_size, replace=True, progress=True
            )
            r = load_catalog(db, name, FILES[name], options)
            total = r.insert_seconds + r.index_seconds
            print(
                f"LOAD {name}: {r.rows} rows in {total:.1f} s = {r.rows / total:,.0f} rows/s "
                f"(inserts {r.insert_seconds:.1f} s = {r.rows / r.insert_seconds:,.0f} rows/s; "
                f"HEALPix + 2dsphere index build {r.index_seconds:.1f} s)",
                flush=True,
            )
        coll = db[name]
        ra, dec = _cones(db, name, args.cones, args.limit)
        order = catalog_order(db, name)
        hp_s, hp = _healpix(coll, ra, dec, args.radius, order, args.alert_batch, args.in_chunk)
        geo_s, geo = _geowithin(coll, ra, dec, args.radius, args.geo_seconds)
        agree = sum(a == b for a, b in zip(hp, geo, strict=False))
        print(
            f"CONES {name} ({coll.estimated_document_count()} rows): HEALPix $in "
            f"{len(hp) / hp_s:,.1f} cones/s ({len(hp)} cones, {sum(map(len, hp))} matches, "
            f"{hp_s:.2f} s) | $geoWithin {len(geo) / geo_s:,.2f} cones/s ({len(geo)} cones, "
            f"{geo_s:.1f} s) | same matches on {agree}/{len(geo)} cones",
            flush=True,
        )


if __name__ == "__main__":
    main()
