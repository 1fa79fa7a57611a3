"""Replays on real services and real workers: runs with ids, progress, results and provenance."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from boom_tasks.catalogs.loader import LoadOptions, load_catalog
from boom_tasks.crossmatch.match import geojson_position
from boom_tasks.filter.store import add_filter, set_active
from boom_tasks.filter.testing import night_jd_range
from boom_tasks.output.schema import decode
from boom_tasks.replay.producer import produce_packets
from boom_tasks.replays import commands, store
from boom_tasks.replays.cli import format_run
from boom_tasks.services.kafka import ensure_topic
from boom_tasks.surveys.ztf import ZTF
from tests.alerts import packet_paths, read_packet, reference_record
from tests.chainrun import drained, read_topic
from tests.conftest import ROOT

pytestmark = pytest.mark.services

BIN = Path(sys.executable).parent
NIGHT = "20181129"
#: The real packets of one night (a sample, for speed).
PACKETS = 160

BRIGHT = [
    {"$match": {"candidate.magpsf": {"$lt": 18.5}}},
    {"$project": {"objectId": 1, "annotations": {"mag": "$candidate.magpsf"}}},
]
FAINT = [
    {"$match": {"candidate.magpsf": {"$gt": 19.0}}},
    {"$project": {"objectId": 1, "annotations": {"mag": "$candidate.magpsf"}}},
]


def _filter(db, name: str, pipeline: list) -> str:
    return add_filter(
        db,
        name=name,
        survey="ZTF",
        pipeline=json.dumps(pipeline),
        programids=[1, 2, 3],
        aux_collection=ZTF.aux,
    )


@pytest.fixture(scope="module")
def night(services, tmp_path_factory):
    """A live night through real workers, with one active filter, then the workers keep running."""
    import pymongo

    db = pymongo.MongoClient(services.mongo.uri)[services.mongo.database]
    for name in db.list_collection_names():
        db.drop_collection(name)
    bright = _filter(db, "bright", BRIGHT)
    set_active(db, bright, True)
    tag = f"{os.getpid()}-{int(time.time())}"
    results = f"results-{tag}"
    ensure_topic(services.kafka, results)
    env = {
        **os.environ,
        "BOOM_OUTPUT__RESULTS_TOPIC": results,
        "BOOM_REPLAYS__SLICE_SIZE": "40",
    }
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [str(BIN / "dramatiq"), "boom_tasks.actors", "--processes", "1", "--threads", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        packets = [read_packet(p) for p in packet_paths("fink-20181129")[:PACKETS]]
        source = f"ztf-replay-{tag}"
        produce_packets(topic=source, packets=iter(packets), settings=None, progress=False)
        bridge = [str(BIN / "boom-bridge"), "ZTF", "--topic", source, "--exit-on-eof"]
        run_env = {**env, "BOOM_KAFKA__GROUP_ID": f"g-{tag}"}
        subprocess.run(bridge, cwd=ROOT, env=run_env, check=True, timeout=300)
        drained([ZTF], 300)
        yield db, results, bright, log_path
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)


def _with_slices(settings, size: int):
    return settings.model_copy(
        update={"replays": settings.replays.model_copy(update={"slice_size": size})}
    )


def _night_candids(db, query: dict) -> set[int]:
    lo, hi = night_jd_range(NIGHT)
    where = {"candidate.jd": {"$gte": lo, "$lt": hi}, **query}
    return {a["_id"] for a in db[ZTF.alerts].find(where, {"_id": 1})}


def test_live_messages_carry_live_provenance(night) -> None:
    db, results, bright, _ = night
    expected = _night_candids(db, {"candidate.magpsf": {"$lt": 18.5}})
    messages = [decode(m) for m in read_topic(results, len(expected))]
    assert {m["candid"] for m in messages} == expected
    for m in messages:
        prov = m["provenance"]
        assert (prov["run"], prov["replay"]) == ("live", False)
        assert prov["filters"][0]["filter_id"] == bright
        assert {x["name"] for x in prov["models"]} == {"anomaly_score", "acai_h"}
        assert {c["name"] for c in prov["catalogs"]} == {"vsx", "gcvs", "mangrove"}


def test_filter_backfill_runs_a_new_filter_over_a_stored_night(night, services, unique) -> None:
    db, _, _, _ = night
    # Given a new filter (never active) and the stored night
    faint = _filter(db, f"faint-{unique}", FAINT)
    expected = _night_candids(db, {"candidate.magpsf": {"$gt": 19.0}})
    total = len(_night_candids(db, {}))
    assert expected and total >= PACKETS - 5
    # When it is backfilled over the last night, in slices of 40 alerts
    run = commands.filter_backfill(_with_slices(services, 40), faint, nights=1)
    # Then the run is done, with its progress and counts from the slices' results
    assert run["state"] == "done", run.get("error")
    assert run["progress"] == {"done": total, "total": total}
    assert run["counts"] == {"passed": len(expected), "published": len(expected)}
    assert store.get_run(db, services, run["_id"])["state"] == "done"
    assert "filter-backfill" in format_run(run)
    # And the filter's topic holds its passes, each marked as this replay with the version
    topic = run["params"]["topic"]
    assert topic == f"ZTF_filter_faint-{unique}"
    messages = [decode(m) for m in read_topic(topic, len(expected))]
    assert sorted(m["candid"] for m in messages) == sorted(expected)
    for m in messages:
        prov = m["provenance"]
        assert (prov["run"], prov["replay"]) == (run["_id"], True)
        assert prov["filters"] == [{"filter_id": faint, "version": run["params"]["fid"]}]
    # And the passes are recorded like the filter stage's (keyed candid:filter:version), and
    # as published, so the live output never sends them to the results topic
    assert db[ZTF.filter_passes].count_documents({"filter_id": faint}) == len(expected)
    assert db[ZTF.publications].count_documents({"filter_id": faint}) == len(expected)


def test_republish_a_nights_passes_into_a_users_topic(night, services, unique) -> None:
    db, _, bright, _ = night
    # Given the passes the live night recorded for one filter
    expected = _night_candids(db, {"candidate.magpsf": {"$lt": 18.5}})
    topic = f"user-topic-{unique}"
    # When they are replayed into the user's topic
    run = commands.republish(_with_slices(services, 40), bright, topic, night=NIGHT)
    # Then every pass of that night is there once, marked as this replay
    assert run["state"] == "done", run.get("error")
    assert run["counts"]["published"] == len(expected)
    messages = [decode(m) for m in read_topic(topic, len(expected))]
    assert sorted(m["candid"] for m in messages) == sorted(expected)
    assert {m["provenance"]["run"] for m in messages} == {run["_id"]}
    # And `boom replays show` tells its state
    listed = subprocess.run(
        [str(BIN / "boom"), "replays", "show", run["_id"]], capture_output=True, text=True
    )
    assert listed.returncode == 0 and run["_id"] in listed.stdout and "done" in listed.stdout


def test_a_failing_replay_is_recorded_failed(night, services) -> None:
    # Given a filter the database refuses at run time
    db = night[0]
    bad = _filter(
        db,
        "bad",
        [{"$match": {"$expr": {"$divide": [1, 0]}}}, {"$project": {"objectId": 1}}],
    )
    # When it is backfilled
    run = commands.filter_backfill(_with_slices(services, 400), bad, nights=1, check=False)
    # Then the run is failed, with the slice's error from the result backend
    assert run["state"] == "failed"
    assert run["error"].startswith("ResultFailure") and "divide by zero" in run["error"]
    # And as a scheduled job (check=True) the failure is raised, so the run is recorded failed
    with pytest.raises(commands.ReplayFailed, match="divide by zero"):
        commands.filter_backfill(_with_slices(services, 400), bad, nights=1)


def test_reprocess_a_night_recomputes_enrichment_and_publishes_only_what_is_new(
    night, services, tmp_path
) -> None:
    db, _, _, _ = night
    night_ids = _night_candids(db, {})
    # Given a stored night whose scores are gone (a model changed)
    db[ZTF.alerts].update_many(
        {"_id": {"$in": list(night_ids)}}, {"$unset": {"classifications": 1}}
    )
    bright = _night_candids(db, {"candidate.magpsf": {"$lt": 18.5}})
    # And a catalog loaded after the night, with a star at five of the night's objects
    objects = list(db[ZTF.aux].find({}, {"coordinates": 1}).sort("_id", 1).limit(5))
    positions = [geojson_position(o) for o in objects]
    rows = ["ra,dec,VarType"] + [f"{ra!r},{dec!r},EA" for ra, dec in positions]
    csv = tmp_path / "gcvs.csv"
    csv.write_text("\n".join(rows) + "\n")
    load_catalog(db, "gcvs", csv, LoadOptions(replace=True))
    # When the night is reprocessed
    run = commands.reprocess(_with_slices(services, 40), "ZTF", night=NIGHT)
    # Then every alert is scored again and every object matched again
    assert run["state"] == "done", run.get("error")
    assert run["progress"] == {"done": len(night_ids), "total": len(night_ids)}
    assert db[ZTF.alerts].count_documents({"classifications": {"$exists": False}}) == 0
    assert run["counts"]["enriched"] == len(night_ids)
    matched = db[ZTF.aux].find({"cross_matches.gcvs.0": {"$exists": True}}, {"_id": 1})
    assert sorted(d["_id"] for d in matched) == sorted(o["_id"] for o in objects)
    # And the active filter passes the same alerts, already published: nothing is sent twice
    assert run["counts"]["passed"] == len(bright) and run["counts"]["published"] == 0


def test_reingest_from_a_topic_and_from_the_archive_through_the_whole_chain(
    night, services, unique
) -> None:
    db, results, _, _ = night
    # Given a night's packets on a Kafka topic nobody bridged, and others in an archive folder
    packets = [read_packet(p) for p in packet_paths("kowalski")]
    topic = f"reingest-{unique}"
    produce_packets(topic=topic, packets=iter(packets), settings=None, progress=False)
    before = db[ZTF.alerts].count_documents({})
    # When the topic is re-ingested
    run = commands.reingest(_with_slices(services, 10), "ZTF", "20240617", topic_in=topic)
    # Then every packet went through the chain, in slices known done from the result backend
    assert run["state"] == "done", run.get("error")
    assert run["progress"] == {"done": len(packets), "total": len(packets)}
    stored = db[ZTF.alerts].count_documents({})
    assert stored - before == run["counts"]["ingested"] > 0
    assert db[ZTF.alerts].count_documents({"classifications": {"$exists": False}}) == 0
    # And its passes of the active filter were published, marked as this replay
    ids = [int(reference_record(p)["candid"]) for p in packets]
    bright = {
        a["_id"]
        for a in db[ZTF.alerts].find({"_id": {"$in": ids}, "candidate.magpsf": {"$lt": 18.5}})
    }
    assert bright and run["counts"]["published"] == len(bright)
    mine = [m for m in map(decode, read_topic(results, 1)) if m["provenance"]["run"] == run["_id"]]
    assert sorted(m["candid"] for m in mine) == sorted(bright)
    # When an archive folder is re-ingested
    folder = packet_paths("boom-402")[0].parent
    run = commands.reingest(_with_slices(services, 4), "ZTF", "20240617", source=str(folder))
    # Then its packets are counted from the archive and all go through
    assert run["state"] == "done", run.get("error")
    assert run["progress"]["done"] == run["progress"]["total"] == len(packet_paths("boom-402"))


def test_a_replay_waits_while_the_live_queues_are_busy(night, services, unique) -> None:
    import redis

    db = night[0]
    valkey = redis.Redis.from_url(services.valkey.url)
    live = "dramatiq:ztf_filter.msgs"
    faint = _filter(db, f"gated-{unique}", FAINT)
    # Given a live message in the filter stage (as a worker holds one in flight)
    valkey.hset(live, f"live-{unique}", b"{}")
    runs: list[dict] = []
    replay = threading.Thread(
        target=lambda: runs.append(commands.filter_backfill(_with_slices(services, 40), faint))
    )
    try:
        # When a replay starts
        replay.start()
        time.sleep(3.0)
        # Then it has sent nothing: its run is running, at 0 alerts, its queue empty
        (doc,) = list(db["replays"].find({"params.filter_id": faint}))
        assert doc["state"] == "running" and doc["progress"]["done"] == 0
        assert valkey.hlen("dramatiq:ztf_replay.msgs") == 0
    finally:
        # And once the live night is quiet, it runs to its end
        valkey.hdel(live, f"live-{unique}")
        replay.join(timeout=120)
    assert runs and runs[0]["state"] == "done"
    assert runs[0]["progress"]["done"] == runs[0]["progress"]["total"] > 0
