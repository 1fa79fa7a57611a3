"""Replay every real ZTF packet through the whole chain twice and snapshot what it leaves.

Made to prove that a refactoring changes nothing: take a snapshot before and one
after, then compare them. The broker is driven only through its command lines
(``ops/services.py``, ``boom``, ``boom-produce``, ``boom-bridge``, ``dramatiq``)
and read only from the servers themselves, never through ``boom_tasks``' Python
API, so these files run unchanged on both sides of a refactoring. This module
holds the command line and what the snapshot exercises (nights, filters);
``snapshot_run.py`` drives the servers and the broker (Steps 1-4, 6) and
``snapshot_dump.py`` dumps, writes and diffs the canonical snapshots (Steps 5, 7).

Step 1: start the configured local services (``ops/services.py up``).
Step 2: wipe them: drop the database, flush Valkey, delete every Kafka topic
        and consumer group (the database name must contain "snapshot").
Step 3: load the GCVS catalog (``boom catalogs load``), add four filters and
        activate them (``boom filters add|activate``).
Step 4: replay 1: produce every packet of the packets folder to night
        20240101's topic, run the workers (one thread by default, see
        :data:`WORKER_THREADS`) and the bridge to the end of the topic, wait
        until Valkey holds no message and no batch, stop the workers.
Step 5: dump every collection (and its indexes) and every output topic as
        canonical JSON lines: ``OUT.replay1.jsonl``.
Step 6: replay 2: the same packets as night 20240102, then ``OUT.replay2.jsonl``.
Step 7: print count and SHA-256 per collection and topic, whether the two
        replays left the same snapshot, and which normalised values (times,
        version tokens) the second replay changed.

Normalised, because they differ from run to run by design: datetimes, every
field named ``*_at``, the ``times`` record of output messages, the aux
compare-and-swap token ``_v``, ObjectIds, random UUID4s (batch keys), and the
random ids of filters and of their versions (replaced by the filter's name; an
output message's ``filters``, listed in the order of those ids, are sorted by
name). Kafka offsets and timestamps are left out; bytes become their length and
SHA-256. Everything else is kept as is.

Run (from the checkout to snapshot; its ``.venv`` must exist)::

    BOOM_CONFIG=$PWD/bench/snapshot.yaml .venv/bin/python bench/snapshot.py OUT
    .venv/bin/python bench/snapshot.py compare OUT_A.replay1.jsonl OUT_B.replay1.jsonl
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import redis
import yaml
from confluent_kafka import KafkaException
from pymongo.errors import PyMongoError

#: The checkout this file belongs to; on ``sys.path`` so that the sibling modules
#: import as ``bench.snapshot_run`` and ``bench.snapshot_dump``, like bench/pipeline.py.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.snapshot_dump import (  # noqa: E402
    Snapshot,
    diff_paths,
    load_lines,
    short,
    take_snapshot,
    volatile_changes,
    write_snapshot,
)
from bench.snapshot_run import (  # noqa: E402
    CATALOG,
    Filter,
    Replay,
    SnapshotError,
    Targets,
    add_filters,
    load_catalog,
    replay,
    services,
    wipe,
)

logger = logging.getLogger("snapshot")

#: The shared real data (never copied into the repository).
DATA = ROOT.parent / "shared" / "data"

#: Nights the two replays are produced as: a new topic each, so the bridge reads
#: every packet again from the start with its usual consumer group.
NIGHTS = ("20240101", "20240102")

#: Word the database name must contain: the snapshot drops the database, flushes
#: Valkey and deletes every Kafka topic, so it refuses anything but its own servers.
SAFETY_WORD = "snapshot"

#: Default seconds the workers may take to drain a replay after the bridge ends;
#: SecantusDB takes minutes for ~1,800 alerts.
DRAIN_TIMEOUT_S = 3600.0

#: Worker processes and threads. One thread ingests batches in stream order: an
#: object's ``coordinates`` are those of its first ingested alert, so with two
#: threads two runs differ where an object's alerts fall in different batches
#: (seen on ZTF18aasnghx). More threads exercise the concurrent paths instead.
WORKER_PROCESSES = 1
WORKER_THREADS = 1

#: Differing fields ``compare`` prints per document.
FIELDS_SHOWN = 3

#: Candidate-only cuts, a light-curve cut (aux ``prv_candidates``) and a
#: cross-match cut (aux ``cross_matches``): name, programids, pipeline.
FILTERS: tuple[Filter, ...] = (
    (
        "bright_real",
        "0,1",
        [
            {
                "$match": {
                    "candidate.magpsf": {"$lt": 18.5},
                    "candidate.rb": {"$gt": 0.5},
                    "candidate.isdiffpos": {"$in": ["t", "1"]},
                }
            },
            {
                "$project": {
                    "objectId": 1,
                    "annotations": {"mag": {"$round": ["$candidate.magpsf", 2]}},
                }
            },
        ],
    ),
    (
        "young",
        "1",
        [
            {"$match": {"candidate.rb": {"$gt": 0.3}, "candidate.isdiffpos": {"$in": ["t", "1"]}}},
            {"$addFields": {"age": {"$subtract": ["$candidate.jd", "$candidate.jdstarthist"]}}},
            {"$match": {"age": {"$lt": 10}, "candidate.ndethist": {"$lte": 5}}},
            {"$project": {"objectId": 1, "annotations": {"age": {"$round": ["$age", 3]}}}},
        ],
    ),
    (
        "short_history",
        "0,1,2,3",
        [
            {"$match": {"candidate.rb": {"$gt": 0.3}}},
            {"$addFields": {"n": {"$size": "$prv_candidates"}}},
            {"$match": {"n": {"$lte": 3}}},
            {"$project": {"objectId": 1, "annotations": {"n": "$n"}}},
        ],
    ),
    (
        "gcvs_variable",
        "0,1",
        [
            {"$match": {"cross_matches.gcvs.0": {"$exists": True}}},
            {"$project": {"objectId": 1, "annotations": {"n": {"$size": "$cross_matches.gcvs"}}}},
        ],
    ),
)


# --- configuration --------------------------------------------------------------------


def read_targets(config: Path, environ: Mapping[str, str]) -> Targets:
    """Read the servers from a boom configuration file and its environment overrides.

    Parameters
    ----------
    config
        The YAML file named by ``BOOM_CONFIG``.
    environ
        Environment; ``BOOM_<SECTION>__<KEY>`` overrides a key, as in every boom process.

    Raises
    ------
    SnapshotError
        If the file cannot be read, or the database name lacks :data:`SAFETY_WORD`.
    """
    try:
        data = yaml.safe_load(config.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise SnapshotError(f"cannot read {config}: {e}") from None

    def get(section: str, key: str, default: Any) -> Any:
        name = f"BOOM_{section.upper()}__{key.upper()}"
        if name in environ:
            return yaml.safe_load(environ[name])
        return (data.get(section) or {}).get(key, default)

    targets = Targets(
        valkey_host=get("valkey", "host", "127.0.0.1"),
        valkey_port=int(get("valkey", "port", 6379)),
        valkey_db=int(get("valkey", "db", 0)),
        kafka=get("kafka", "bootstrap_servers", "127.0.0.1:9092"),
        mongo_uri=get("mongo", "uri", "mongodb://127.0.0.1:27017"),
        database=get("mongo", "database", "boom"),
        catalog_database=get("mongo", "catalog_database", None),
    )
    if SAFETY_WORD not in targets.database:
        raise SnapshotError(
            f"database {targets.database!r} (from {config}) lacks {SAFETY_WORD!r}: the snapshot "
            f"wipes its servers, so it runs only on its own (see bench/snapshot.yaml)"
        )
    return targets


# --- reports --------------------------------------------------------------------------


def print_summary(
    sums: list[dict[str, tuple[int, str]]], replays: list[Replay], changed: Counter[str]
) -> bool:
    """Print the per-section table and the replays' health; return whether 1 == 2."""
    print(f"\n{'section':<40} {'replay 1':>8}  {'sha256 (replay 1)':<64}  {'replay 2':>8}  same")
    for section in sorted(set(sums[0]) | set(sums[1])):
        n1, h1 = sums[0].get(section, (0, "-"))
        n2, h2 = sums[1].get(section, (0, "-"))
        print(f"{section:<40} {n1:>8}  {h1:<64}  {n2:>8}  {'yes' if h1 == h2 else 'NO'}")
    for r in replays:
        dead = {k: n for k, n in r.dead.items() if n}
        print(
            f"replay {r.night}: {r.produced} packets, {r.seconds:.0f} s, dead letters "
            f"{dead or 'none'}, {r.worker_errors} error lines in {r.worker_log.name}"
        )
    if changed:
        print("normalised values replay 2 changed (documents):")
        for what, n in sorted(changed.items()):
            print(f"  {what}: {n}")
    else:
        print("normalised values replay 2 changed: none")
    same = sums[0] == sums[1]
    print(f"replay 1 == replay 2: {'yes' if same else 'NO'}")
    return same


# --- compare --------------------------------------------------------------------------


def compare(a_path: Path, b_path: Path, limit: int) -> int:
    """Print the first differences between two snapshot files; return 1 if they differ."""
    a, b = load_lines(a_path), load_lines(b_path)
    shown = differing = 0
    for section in sorted(set(a) | set(b)):
        docs_a, docs_b = a.get(section, {}), b.get(section, {})
        keys = sorted(set(docs_a) | set(docs_b))
        bad = [k for k in keys if docs_a.get(k) != docs_b.get(k)]
        if not bad:
            continue
        differing += 1
        only_a = sum(k not in docs_b for k in bad)
        only_b = sum(k not in docs_a for k in bad)
        print(
            f"{section}: {len(docs_a)} vs {len(docs_b)} documents, {len(bad)} differ "
            f"({only_a} only in A, {only_b} only in B)"
        )
        for k in bad:
            if shown >= limit:
                break
            shown += 1
            if k not in docs_a or k not in docs_b:
                print(f"  {section} id {k}: only in {'B' if k not in docs_a else 'A'}")
                continue
            paths = list(diff_paths(docs_a[k], docs_b[k]))
            for p, x, y in paths[:FIELDS_SHOWN]:
                print(f"  {section} id {k} {p}: A={short(x)} B={short(y)}")
            if len(paths) > FIELDS_SHOWN:
                print(f"  {section} id {k}: ... and {len(paths) - FIELDS_SHOWN} more fields")
    print("identical" if not differing else f"{differing} section(s) differ")
    return 1 if differing else 0


# --- command line ---------------------------------------------------------------------


def take(args: argparse.Namespace) -> int:
    """Run both replays and write both snapshots; return 0 if they are the same."""
    config = os.environ.get("BOOM_CONFIG")
    if not config:
        raise SnapshotError("set BOOM_CONFIG to the snapshot's own configuration (snapshot.yaml)")
    config_path = Path(config).resolve()
    # Every command runs in the checkout: give it the configuration by absolute path.
    os.environ["BOOM_CONFIG"] = str(config_path)
    t = read_targets(config_path, os.environ)
    out: Path = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    setup_log = out.with_name(f"{out.name}.setup.log")
    with setup_log.open("w") as log:
        logger.info("services up (%s); logs beside %s", config_path, out)
        services("up", log)
        try:
            return _replays(t, args, out, log, started)
        finally:
            if not args.keep_up:
                services("down", log)


def _replays(t: Targets, args: argparse.Namespace, out: Path, log: TextIO, started: float) -> int:
    wipe(t)
    logger.info("wiped; loading %s", CATALOG)
    load_catalog(args.data, log)
    add_filters(t, FILTERS, log)
    logger.info(
        "catalog and %d filters ready after %.0f s", len(FILTERS), time.monotonic() - started
    )
    snaps: list[Snapshot] = []
    sums: list[dict[str, tuple[int, str]]] = []
    replays: list[Replay] = []
    inputs: set[str] = set()
    for i, night in enumerate(NIGHTS, start=1):
        r = replay(t, night, args.packets, out, args)
        replays.append(r)
        inputs |= r.input_topics
        snap = take_snapshot(t, inputs)
        path = out.with_name(f"{out.name}.replay{i}.jsonl")
        sums.append(write_snapshot(snap, path))
        snaps.append(snap)
        logger.info("replay %d written to %s", i, path)
    same = print_summary(sums, replays, volatile_changes(snaps[0], snaps[1]))
    print(f"total {time.monotonic() - started:.0f} s")
    return 0 if same else 1


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="snapshot: %(message)s")
    if argv[:1] == ["compare"]:
        p = argparse.ArgumentParser(prog="snapshot.py compare", description=compare.__doc__)
        p.add_argument("a", type=Path)
        p.add_argument("b", type=Path)
        p.add_argument("--max", type=int, default=20, help="differences to print")
        cargs = p.parse_args(argv[1:])
        return compare(cargs.a, cargs.b, cargs.max)
    p = argparse.ArgumentParser(
        prog="snapshot.py",
        description="Replay the real ZTF packets twice and snapshot the database and output.",
        epilog="compare A B: print the first differences between two snapshot files",
    )
    p.add_argument("out", type=Path, help="writes OUT.replay1.jsonl, OUT.replay2.jsonl, logs")
    p.add_argument("--packets", type=Path, default=DATA / "ztf", help="folder of .avro packets")
    p.add_argument("--data", type=Path, default=DATA, help="shared data (catalogs/)")
    p.add_argument("--processes", type=int, default=WORKER_PROCESSES, help="worker processes")
    p.add_argument("--threads", type=int, default=WORKER_THREADS, help="threads per process")
    p.add_argument("--drain-timeout", type=float, default=DRAIN_TIMEOUT_S, help="seconds")
    p.add_argument("--keep-up", action="store_true", help="leave the services running")
    args = p.parse_args(argv)
    try:
        return take(args)
    except (SnapshotError, PyMongoError, redis.RedisError, KafkaException) as e:
        logger.error("%s: %s", type(e).__name__, e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
