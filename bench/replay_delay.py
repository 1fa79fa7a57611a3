"""The delay a replay adds to live alerts: live latency with and without a replay running.

Step 1: a fresh database (the configured one: this bench empties it) gets a
        stored night: ``--stored`` real ZTF packets through the bridge and the
        workers (``--workers`` processes), with one active filter passing every
        alert, so every live alert is published and has a latency;
Step 2: a bridge follows a live topic; live alerts (made from real ones with the
        survey's synth) arrive in bursts of ``--burst`` every ``--interval`` s;
Step 3: phase "live only": bursts for as long as the replay will take; phase
        "live + replay": the same bursts while ``filter_backfill`` runs a new filter
        over the stored night (its slices on ``ztf_replay``, gated by the live
        queues, ``replays.*`` settings); optionally phase "ungated" with the gate
        and the in-flight bound lifted, to show what they protect;
Step 4: per phase, latency percentiles (bridge receive → published, from each
        message's ``times``) of the live alerts, and the replay's duration.
Run: ``BOOM_CONFIG=... .venv/bin/python bench/replay_delay.py --stored 400 --workers 1``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pymongo
from confluent_kafka import Consumer, Producer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from boom_tasks.filter.store import add_filter, set_active  # noqa: E402
from boom_tasks.output.schema import decode  # noqa: E402
from boom_tasks.replay.producer import produce_packets  # noqa: E402
from boom_tasks.replays import commands  # noqa: E402
from boom_tasks.services.kafka import consumer_config, ensure_topic, producer_config  # noqa: E402
from boom_tasks.settings import Settings, get_settings  # noqa: E402
from boom_tasks.surveys import get_survey  # noqa: E402
from tests.chainrun import drained  # noqa: E402

BIN = Path(sys.executable).parent
DATA = ROOT.parent / "shared" / "data" / "ztf"
NIGHT_FOLDER, NIGHT = "fink-20181129", "20181129"
#: Passes every alert (a filter must have a $match: every real candidate has a jd).
EVERYTHING = [{"$match": {"candidate.jd": {"$gt": 0}}}, {"$project": {"objectId": 1}}]


def _filter(db: Any, name: str, active: bool) -> str:
    survey = get_survey("ZTF")
    fid = add_filter(
        db,
        name=name,
        survey="ZTF",
        pipeline=json.dumps(EVERYTHING),
        programids=[1, 2, 3],
        aux_collection=survey.aux,
    )
    if active:
        set_active(db, fid, True)
    return fid


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)


def _live_bursts(settings: Settings, topic: str, packets: list[bytes], args: Any) -> None:
    producer = Producer(producer_config(settings.kafka))
    for k in range(0, len(packets), args.burst):
        for p in packets[k : k + args.burst]:
            producer.produce(topic, p)
        producer.flush(30)
        time.sleep(args.interval)


def _latencies(settings: Settings, topic: str, candids: set[int]) -> list[tuple[float, float]]:
    """Return (received, latency) of every message of ``candids`` on ``topic``."""
    conf = consumer_config(settings.kafka, f"bench-{uuid.uuid4().hex[:8]}")
    consumer = Consumer(conf)
    consumer.subscribe([topic])
    out: dict[int, tuple[float, float]] = {}
    idle = time.monotonic()
    while len(out) < len(candids) and time.monotonic() - idle < 20:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        idle = time.monotonic()
        m = decode(msg.value())
        if m["candid"] in candids:
            times = m["times"]
            out[m["candid"]] = (times["received"], times["published"] - times["received"])
    consumer.close()
    return list(out.values())


def _phase(
    name: str,
    settings: Settings,
    db: Any,
    live_topic: str,
    results: str,
    live: list[bytes],
    args: Any,
    replay: Settings | None,
) -> dict[str, Any]:
    from boom_tasks.alert.avro import decode_first_record

    candids = {int(decode_first_record(p)["candid"]) for p in live}
    window: list[float] = []

    def run_replay() -> None:
        assert replay is not None
        window.append(time.time())
        run = commands.filter_backfill(replay, _filter(db, f"replay-{name}", False), night=NIGHT)
        window.append(time.time())
        print(f"  replay {run['_id']}: {run['state']} {run['progress']} {run['counts']}")

    thread = threading.Thread(target=run_replay) if replay else None
    if thread:
        thread.start()
    _live_bursts(settings, live_topic, live, args)
    if thread:
        thread.join()
    drained([get_survey("ZTF")], 600)
    got = _latencies(settings, results, candids)
    # With a replay, only the live alerts received while it ran count.
    during = [lt for rt, lt in got if not window or window[0] <= rt <= window[1]]
    lat = np.array(during)
    row = {
        "phase": name,
        "live": len(candids),
        "published": len(got),
        "counted": len(lat),
        "p50_s": float(np.percentile(lat, 50)),
        "p95_s": float(np.percentile(lat, 95)),
        "max_s": float(lat.max()),
        "replay_s": window[1] - window[0] if window else None,
    }
    print(json.dumps(row))
    return row


def main() -> None:
    """Run the bench and print one JSON line per phase, then a table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stored", type=int, default=400, help="real alerts of the stored night")
    p.add_argument("--live", type=int, default=100, help="live alerts per phase")
    p.add_argument("--burst", type=int, default=10)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--slice-size", type=int, default=50, help="replays.slice_size")
    p.add_argument("--ungated", action="store_true", help="also run with the gate lifted")
    args = p.parse_args()
    settings = get_settings()
    sliced = settings.replays.model_copy(update={"slice_size": args.slice_size})
    settings = settings.model_copy(update={"replays": sliced})
    survey = get_survey("ZTF")
    db = pymongo.MongoClient(settings.mongo.uri)[settings.mongo.database]
    for name in db.list_collection_names():
        db.drop_collection(name)
    _filter(db, "everything", True)
    tag = uuid.uuid4().hex[:8]
    results, live_topic = f"bench-results-{tag}", f"bench-live-{tag}"
    for topic in (results, live_topic):
        ensure_topic(settings.kafka, topic)
    env = {**os.environ, "BOOM_OUTPUT__RESULTS_TOPIC": results}
    logs = ROOT / ".local" / "bench-replay"
    logs.mkdir(parents=True, exist_ok=True)
    workers = _start(
        [str(BIN / "dramatiq"), "boom_tasks.actors", "--processes", str(args.workers),
         "--threads", "2"], env, logs / "workers.log",
    )  # fmt: skip
    bridge = None
    try:
        stored = sorted((DATA / NIGHT_FOLDER).glob("*.avro"))[: args.stored]
        src = f"bench-stored-{tag}"
        produce_packets(topic=src, packets=(f.read_bytes() for f in stored), settings=settings,
                        progress=False)  # fmt: skip
        genv = {**env, "BOOM_KAFKA__GROUP_ID": f"bench-{tag}"}
        subprocess.run([str(BIN / "boom-bridge"), "ZTF", "--topic", src, "--exit-on-eof"],
                       cwd=ROOT, env=genv, check=True, capture_output=True)  # fmt: skip
        drained([survey], 600)
        print(f"stored night: {db[survey.alerts].count_documents({})} alerts")
        bridge = _start([str(BIN / "boom-bridge"), "ZTF", "--topic", live_topic], genv,
                        logs / "bridge.log")  # fmt: skip
        source = DATA / "kowalski"
        phases = [("live only", None), ("live + replay", settings)]
        if args.ungated:
            lifted = sliced.model_copy(update={"live_backlog_max": 10**6, "max_inflight": 16})
            phases.append(
                ("live + ungated replay", settings.model_copy(update={"replays": lifted}))
            )
        rows = []
        for k, (name, replay) in enumerate(phases):
            live = list(survey.synth(source, args.live, seed=k + 1, start=k * args.live))
            rows.append(_phase(name, settings, db, live_topic, results, live, args, replay))
        print(f"\n{'phase':<24}{'counted':>8}{'p50 s':>8}{'p95 s':>8}{'max s':>8}{'replay s':>10}")
        for r in rows:
            rs = "" if r["replay_s"] is None else f"{r['replay_s']:.1f}"
            print(f"{r['phase']:<24}{r['counted']:>8}{r['p50_s']:>8.2f}{r['p95_s']:>8.2f}"
                  f"{r['max_s']:>8.2f}{rs:>10}")  # fmt: skip
    finally:
        if bridge:
            _stop(bridge)
        _stop(workers)


if __name__ == "__main__":
    main()
