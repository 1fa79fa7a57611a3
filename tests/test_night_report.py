"""The night conductor on real services and real workers: reports, stuck alerts, closing."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from boom_tasks.conductor.jobs import close_nights, close_survey_nights
from boom_tasks.conductor.report import build_report, nights_collection
from boom_tasks.dashboard.overview import gather
from boom_tasks.dashboard.page import overview_page
from boom_tasks.filter.store import add_filter, set_active
from boom_tasks.replay.producer import produce_night
from boom_tasks.surveys.ztf import ZTF
from tests.alerts import packet_paths
from tests.chainrun import drained
from tests.conftest import ROOT

pytestmark = pytest.mark.services

BIN = Path(sys.executable).parent
#: A filter every ZTF alert passes, so passes and publications are counted too.
PASS_ALL = [{"$match": {"candidate.jd": {"$gt": 0}}}, {"$project": {"objectId": 1}}]


def _night_dir(tmp_path: Path, folders: tuple[str, ...]) -> Path:
    night = tmp_path / "night"
    for folder in folders:
        (night / folder).mkdir(parents=True)
        for path in packet_paths(folder):
            shutil.copy(path, night / folder / path.name)
    return night


def _fresh_date() -> str:
    # A night nobody else uses, so its topic and its records start empty.
    return f"{random.randint(2001, 2015)}{random.randint(1, 12):02d}{random.randint(1, 28):02d}"


def _pass_all(db) -> str:  # type: ignore[no-untyped-def]
    fid = add_filter(
        db,
        name="everything",
        survey="ZTF",
        pipeline=PASS_ALL,
        programids=[0, 1, 2, 3],
        aux_collection=ZTF.aux,
    )
    set_active(db, fid, True)
    return fid


def _workers(*queues: str) -> subprocess.Popen:
    cmd = [str(BIN / "dramatiq"), "boom_tasks.actors", "--processes", "1", "--threads", "2"]
    return subprocess.Popen([*cmd, "--queues", *queues], cwd=ROOT)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _bridge(date: str) -> None:
    cmd = [str(BIN / "boom-bridge"), "ZTF", "--date", date, "--exit-on-eof"]
    subprocess.run(cmd, cwd=ROOT, check=True, timeout=180)


def _wait_stuck_at_filter(client, timeout: float = 240) -> None:  # type: ignore[no-untyped-def]
    """Wait until every batch went through ml and waits in the filter queue."""
    earlier = [f"dramatiq:ztf_{q}.msgs" for q in ("ingest", "crossmatch", "ml")]
    deadline = time.monotonic() + timeout
    while (
        any(client.hlen(k) for k in earlier)
        or client.hlen("boom:ztf:pending")
        or not client.hlen("dramatiq:ztf_filter.msgs")
    ):
        assert time.monotonic() < deadline, "the batches did not reach the filter queue"
        time.sleep(0.3)


def test_a_clean_night_adds_up_stage_by_stage(mongo_db, settings, tmp_path):
    # Given real ZTF packets (and two corrupt ones) and an active filter that passes all
    night = _night_dir(tmp_path, ("kowalski", "boom-402", "corrupt"))
    fid = _pass_all(mongo_db)
    date = _fresh_date()
    # When `boom night` replays them through Kafka, the bridge and real workers
    proc = subprocess.run(
        [str(BIN / "boom"), "night", "ZTF", "--date", date, "--from", str(night), "--workers", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr
    # Then the night's report adds up and agrees with what MongoDB holds
    report = build_report(settings, ZTF, date)
    c = report["counts"]
    stored = mongo_db[ZTF.alerts].count_documents({})
    n_packets = len(packet_paths("kowalski")) + len(packet_paths("boom-402")) + 2
    assert report["flagged"] is False, report["problems"]
    assert c["kafka"] == c["queued"] == n_packets
    assert c["ingested"] == stored and c["quarantined"] == 2
    assert c["ingested"] + c["quarantined"] + c["duplicates"] == n_packets
    assert c["crossmatched"] == c["enriched"] == c["filtered"] == stored
    assert c["passes"] == {fid: stored} and c["published_by_filter"] == {fid: stored}
    assert c["passed"] == c["published"] == stored
    assert report["stopped"] == [] and report["dead_letters"] == []
    assert set(report["latency_s"]) == {
        "ingested",
        "crossmatched",
        "enriched",
        "filtered",
        "published",
    }
    assert report["peak_rate"]["alerts_per_s"] > 0
    # And `boom night` ends with that report, stored, and the dashboard lists it
    assert f"ZTF night {date}: all counts add up" in proc.stdout
    assert mongo_db[nights_collection(ZTF)].find_one({"_id": date})["counts"] == c
    page = overview_page(gather(settings, redis.Redis.from_url(settings.valkey.url), mongo_db), 0)
    assert f'data-night="{date}">adds up<' in page


def _night_stuck_at_filter(settings, tmp_path, folder: str) -> tuple[str, redis.Redis]:
    """Replay a night of ``folder``'s packets with no filter worker; return it once stuck there."""
    night = _night_dir(tmp_path, (folder,))
    date = _fresh_date()
    produce_night(settings, ZTF, date, night, topic=f"ztf_{date}_programid1", progress=False)
    client = redis.Redis.from_url(settings.valkey.url)
    early = _workers("ztf_ingest", "ztf_crossmatch", "ztf_ml", "ztf_science")
    try:
        _bridge(date)
        _wait_stuck_at_filter(client)
    finally:
        _stop(early)
    return date, client


def test_a_stopped_filter_stage_is_named_then_the_night_closes(mongo_db, settings, tmp_path):
    # Given a night replayed with no worker for the filter queue
    date, _ = _night_stuck_at_filter(settings, tmp_path, "kowalski")
    # When the report is built
    report = build_report(settings, ZTF, date)
    # Then the night is flagged and every stored candid is named as waiting at the filter
    assert report["flagged"] is True
    candids = sorted(d["_id"] for d in mongo_db[ZTF.alerts].find({}, {"_id": 1}))
    stops = report["stopped"]
    assert {s["stage"] for s in stops} == {"filtered"}
    assert {s["queue"] for s in stops} == {"ztf_filter"} and {s["state"] for s in stops} == {
        "waiting"
    }
    assert sorted(c for s in stops for c in s["candids"]) == candids
    assert sum(s["count"] for s in stops) == len(candids)
    assert any("enriched" in p and "filtered" in p for p in report["problems"])
    # And close_nights leaves a night with queued work open, even when quiet long enough
    quiet = settings.model_copy(
        update={"conductor": settings.conductor.model_copy(update={"quiet_s": 0.5})}
    )
    time.sleep(1.0)
    assert date not in {r["night"] for r in close_survey_nights(quiet, ZTF)}
    assert mongo_db[nights_collection(ZTF)].find_one({"_id": date}) is None
    # When the filter and output stages run, the night drains
    late = _workers("ztf_filter", "ztf_output")
    try:
        drained([ZTF])
    finally:
        _stop(late)
    # Then a night still inside its quiet period is not closed either...
    assert date not in {r["night"] for r in close_survey_nights(settings, ZTF)}
    # ...and once quiet, its report is written, closed, adding up
    time.sleep(1.0)
    assert f"ZTF:{date}" in close_nights(quiet)
    doc = mongo_db[nights_collection(ZTF)].find_one({"_id": date})
    assert doc["closed"] is True and doc["flagged"] is False, doc["problems"]
    assert doc["counts"]["filtered"] == len(candids)
    # And a closed night is not written again
    assert f"ZTF:{date}" not in close_nights(quiet)


def test_boom_night_report_without_data_says_so(services):
    # Given a night nothing was recorded for
    proc = subprocess.run(
        [str(BIN / "boom"), "night", "report", "ZTF", "19990101"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Then a one-line error, no traceback
    assert proc.returncode == 2
    assert "no report and no record of ZTF night 19990101" in proc.stderr
    assert "Traceback" not in proc.stderr
    # And a malformed night is refused by the parser
    bad = subprocess.run(
        [str(BIN / "boom"), "night", "report", "ZTF", "1999-01-01"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_a_removed_message_is_named_lost_with_its_candids(mongo_db, settings, tmp_path):
    # Given a night whose batches wait at the filter stage (no filter worker)
    date, client = _night_stuck_at_filter(settings, tmp_path, "boom-402")
    # When an operator deletes the filter messages from Valkey by hand
    for redis_id in client.hkeys("dramatiq:ztf_filter.msgs"):
        client.hdel("dramatiq:ztf_filter.msgs", redis_id)
        client.lrem("dramatiq:ztf_filter", 0, redis_id)
    report = build_report(settings, ZTF, date)
    # Then the report says they are lost before the filter stage, naming every candid
    candids = sorted(d["_id"] for d in mongo_db[ZTF.alerts].find({}, {"_id": 1}))
    assert report["flagged"] is True
    assert {(s["stage"], s["state"]) for s in report["stopped"]} == {("filtered", "lost")}
    assert sorted(c for s in report["stopped"] for c in s["candids"]) == candids
    # And `boom night report` prints it and exits 1 (flagged), without a traceback
    proc = subprocess.run(
        [str(BIN / "boom"), "night", "report", "ZTF", date],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert f"ZTF night {date}: FLAGGED" in proc.stdout
    assert f"alerts lost in ztf_filter: {candids[0]}" in proc.stdout


def test_a_dead_letter_of_the_night_is_listed_with_its_failure(services, settings):
    # Given a night whose one batch of 2 alerts reached the filter stage...
    from boom_tasks.broker import setup_broker
    from boom_tasks.chain import declare_chain
    from boom_tasks.conductor.counters import record_received, record_stage_night

    client = redis.Redis.from_url(settings.valkey.url)
    date, received = _fresh_date(), time.time()
    offsets = {(f"ztf_{date}_programid1", 0): (0, 2)}
    record_received(client, "ZTF", date, received, 2, offsets, keep_days=1)
    for stage in ("ingested", "crossmatched", "enriched"):
        record_stage_night(client, "ZTF", stage, 2, 2, {"received": received}, keep_days=1)
    # ...whose filter message the stage refuses for good (a message version it cannot read)
    actor = declare_chain(setup_broker(settings), [ZTF], settings)["ZTF"]["filter"]
    actor.send([11, 12], {"received": received}, 99)
    worker = _workers("ztf_filter")
    try:
        deadline = time.monotonic() + 120
        while not client.zcard("dramatiq:ztf_filter.XQ"):
            assert time.monotonic() < deadline, "the message was not dead-lettered"
            time.sleep(0.3)
    finally:
        _stop(worker)
    # When the report is built
    report = build_report(settings, ZTF, date)
    # Then the dead letter is listed with its failure, and its alerts as stopped there
    [dead] = report["dead_letters"]
    assert dead["queue"] == "ztf_filter" and dead["alerts"] == 2
    assert "unsupported message version 99" in dead["error"]
    [stop] = report["stopped"]
    assert (stop["stage"], stop["state"], stop["candids"]) == ("filtered", "dead", [11, 12])
    # (the dead letter is removed, so later tests start with an empty dead-letter queue)
    client.delete("dramatiq:ztf_filter.XQ", "dramatiq:ztf_filter.XQ.msgs")
