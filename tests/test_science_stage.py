"""Science actors on real services: real alerts through a real worker, and ``boom science``.

The night: the real kowalski, boom-402 and fink-20181129 packets ingested, a real
slice of the Mangrove catalog loaded around them, one active filter that cuts on
``science.probe``. A ``dramatiq boom_tasks.actors`` subprocess runs the chain with
three science actors enabled: ``broken`` (raises on every batch), ``probe`` (a
selection on the alert and on its cross-matches) and the shipped
``exgal_transients``; the batches are sent to its crossmatch queue.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from boom_tasks.broker import setup_broker
from boom_tasks.catalogs.loader import LoadOptions, load_catalog
from boom_tasks.chain import declare_chain
from boom_tasks.filter.store import add_filter, set_active
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.ml.stage import until
from boom_tasks.science.config import ScienceSettings
from boom_tasks.science.health import SCIENCE_ACTORS
from boom_tasks.science.stage import run_actor
from boom_tasks.surveys.ztf import ZTF
from tests.alerts import packet_paths, read_packet
from tests.chainrun import drained, read_topic
from tests.conftest import DATA, ROOT
from tests.science_actors import hung, malformed, slow

pytestmark = pytest.mark.services

BIN = Path(sys.executable).parent
ENABLED = ["tests.science_actors.broken", "tests.science_actors.probe", "exgal_transients"]
#: Alerts per message sent to the worker (several batches: disablement needs them).
BATCH = 100
MAX_FAILURES = 2
#: The API port in the figure links (the config's range, 35xxx); the API process of
#: the test serves on the first free port from it (:func:`_free_port`).
API_PORT = 35010


def _free_port(first: int = API_PORT, last: int = 35099) -> int:
    import socket

    for port in range(first, last + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {first}-{last}")


def _mangrove_slice(db, folder: Path) -> None:
    """Load the real Mangrove rows within 10' of the alerts, and 2,000 others."""
    table = pq.read_table(DATA / "catalogs" / "mangrove_filtered.parquet")
    ra, dec = (np.asarray(table[c].to_numpy(zero_copy_only=False), float) for c in ("ra", "dec"))
    aux = list(db[ZTF.aux].find({}, {"coordinates": 1}))
    lon, lat = np.array([d["coordinates"]["radec_geojson"]["coordinates"] for d in aux]).T
    near = np.zeros(ra.size, bool)
    for a_ra, a_dec in zip(lon + 180, lat, strict=True):
        box = np.abs(dec - a_dec) < 0.2
        cosd = np.cos(np.radians(a_dec))
        near |= box & (np.abs((ra - a_ra + 180) % 360 - 180) * cosd < 0.2)
    pick = np.union1d(np.flatnonzero(near), np.random.default_rng(1).choice(ra.size, 2000))
    path = folder / "mangrove.parquet"
    pq.write_table(table.take(pa.array(pick)), path)
    load_catalog(db, "mangrove", path, LoadOptions(replace=True))


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "BOOM_SCIENCE__ACTORS": json.dumps(ENABLED),
        "BOOM_SCIENCE__MAX_FAILURES": str(MAX_FAILURES),
        "BOOM_SCIENCE__API_URL": f"http://127.0.0.1:{API_PORT}",
    }


def _settle(db, timeout: float = 600) -> None:
    """Return once the queues are empty and nothing the chain writes changed for 5 s."""

    def snapshot():
        return (
            db[ZTF.alerts].count_documents({"enriched_at": {"$exists": True}}),
            db[ZTF.alerts].count_documents({"science": {"$exists": True}}),
            db[ZTF.alerts].count_documents({"science_errors": {"$exists": True}}),
            db[ZTF.filter_passes].count_documents({}),
            db[ZTF.publications].count_documents({}),
            tuple(d.get("batches") for d in db[SCIENCE_ACTORS].find().sort("_id")),
        )

    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        drained([ZTF], timeout=timeout)
        now = snapshot()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > 5:
            return
        time.sleep(1)
    raise AssertionError("the chain did not settle")


@pytest.fixture(scope="module")
def night(services, tmp_path_factory):
    """The night above, run through a real worker; yields the database and candids."""
    import pymongo

    client = pymongo.MongoClient(services.mongo.uri)
    db = client[services.mongo.database]
    for name in db.list_collection_names():
        db.drop_collection(name)
    paths = packet_paths("kowalski") + packet_paths("boom-402") + packet_paths("fink-20181129")
    candids = ingest_packets(db, ZTF, [read_packet(p) for p in paths], "science").candids
    _mangrove_slice(db, tmp_path_factory.mktemp("catalogs"))
    # A filter cutting on an actor's result, active before the night
    pipeline = [{"$match": {"science.probe.n_prv": {"$gte": 3}}}, {"$project": {"objectId": 1}}]
    fid = add_filter(
        db,
        name="probe-cut",
        survey="ZTF",
        pipeline=pipeline,
        programids=[0, 1, 2, 3],
        aux_collection=ZTF.aux,
    )
    set_active(db, fid, True)
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [str(BIN / "dramatiq"), "boom_tasks.actors", "--processes", "1", "--threads", "1"],
            cwd=ROOT,
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        settings = services.model_copy(update={"science": ScienceSettings(actors=ENABLED)})
        actors = declare_chain(setup_broker(settings), [ZTF], settings)["ZTF"]
        for k in range(0, len(candids), BATCH):
            actors["crossmatch"].send(candids[k : k + BATCH], {"received": time.time()})
        _settle(db)
        yield db, candids, fid, log_path
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
        client.close()


def _objects(db) -> dict[str, dict]:
    return {d["_id"]: d for d in db[ZTF.aux].find()}


def test_the_actor_sees_only_its_selection_and_writes_its_field(night):
    db, candids, _, log_path = night
    aux = _objects(db)
    alerts = list(db[ZTF.alerts].find({}, {"candidate": 1, "objectId": 1, "science": 1}))
    assert len(alerts) == len(candids)
    # Expected independently: g-band alerts whose object has a Mangrove match
    hosted = {o for o, d in aux.items() if d.get("cross_matches", {}).get("mangrove")}
    expected = {a["_id"] for a in alerts if a["candidate"]["fid"] == 1 and a["objectId"] in hosted}
    got = {a["_id"] for a in alerts if "probe" in a.get("science", {})}
    assert 0 < len(expected) < len(alerts), log_path.read_text()[-3000:]
    assert got == expected
    # Each result is what the actor computed from the history as of the alert
    for a in alerts:
        if a["_id"] not in got:
            continue
        r = a["science"]["probe"]
        history = until(aux[a["objectId"]].get("prv_candidates"), a["candidate"]["jd"])
        assert r["n_prv"] == len(history)
        assert r["magpsf"] == a["candidate"]["magpsf"] and r["version"] == "1"
        assert r["host"] == aux[a["objectId"]]["cross_matches"]["mangrove"][0]["_id"]


def test_a_failing_actor_is_isolated_counted_and_disabled(night):
    db, candids, _, _ = night
    # The broken actor ran first on every batch until disabled; the probe ran regardless
    health = db[SCIENCE_ACTORS].find_one({"_id": "ZTF:broken"})
    assert health["disabled"] is True
    assert health["failures"] == MAX_FAILURES == health["failed_batches"]
    assert health["disabled_reason"].startswith(
        f"failed {MAX_FAILURES} batches in a row; last: RuntimeError: bug in the actor"
    )
    # Its error is on the alerts of the batches it failed (it selects every alert), only those
    failed = list(db[ZTF.alerts].find({"science_errors.broken": {"$exists": True}}))
    assert MAX_FAILURES <= len(failed) <= MAX_FAILURES * BATCH < len(candids), health
    message = failed[0]["science_errors"]["broken"]["message"]
    assert re.fullmatch(r"RuntimeError: bug in the actor \(\d+ alerts\)", message)
    # And every alert went on: each was enriched and reached the filters (probe ok)
    assert db[SCIENCE_ACTORS].find_one({"_id": "ZTF:probe"})["failures"] == 0
    assert db[ZTF.alerts].count_documents({"science_errors.probe": {"$exists": True}}) == 0


def test_a_filter_cuts_on_a_science_result(night):
    db, _, fid, _ = night
    expected = {a["_id"] for a in db[ZTF.alerts].find({"science.probe.n_prv": {"$gte": 3}})}
    passed = {p["candid"] for p in db[ZTF.filter_passes].find({"filter_id": fid})}
    assert expected and passed == expected
    # And the output stage published them (the science hop leaves the stage times valid)
    published = {p["candid"] for p in db[ZTF.publications].find({"filter_id": fid})}
    assert published == expected


def _exgal_expected(db) -> set[int]:
    """The exgal selection, computed in Python on the stored alerts and objects."""
    aux = _objects(db)
    out = set()
    for a in db[ZTF.alerts].find():
        c, obj = a["candidate"], aux[a["objectId"]]
        star = (
            c.get("sgscore1") is not None
            and c["sgscore1"] >= 0.5
            and not (c.get("distpsnr1") is not None and c["distpsnr1"] > 1.5)
        )
        rock = c.get("ssdistnr") is not None and 0 <= c["ssdistnr"] <= 12
        history = until(obj.get("prv_candidates"), c["jd"])
        detections = {(p["jd"], p["fid"]) for p in [*history, c] if p.get("magpsf") is not None}
        if (
            c.get("isdiffpos") in ("t", "1")
            and c.get("ndethist", 0) >= 3
            and not star
            and not rock
            and obj.get("cross_matches", {}).get("mangrove")
            and len(detections) >= 3
        ):
            out.add(a["_id"])
    return out


def test_the_shipped_module_runs_in_the_chain_and_publishes(night):
    db, _, _, log_path = night
    expected = _exgal_expected(db)
    results = {
        a["_id"]: a["science"]["exgal_transients"]
        for a in db[ZTF.alerts].find({"science.exgal_transients": {"$exists": True}})
    }
    assert set(results) == expected, log_path.read_text()[-3000:]
    assert expected, "no real alert of this night passes the exgal selection"
    for candid, r in results.items():
        assert r["figures"]["lightcurve"] == (
            f"/science/ZTF/figures/{candid}/exgal_transients/lightcurve.png"
        )
        assert r["host"]["name"] and set(r["bands"]) <= {"g", "r", "i"}
        assert r["valid"] == any(b["valid"] for b in r["bands"].values())
        stored = db["ZTF_science_figures"].find_one(
            {"_id": f"{candid}:exgal_transients:lightcurve"}
        )
        assert stored["png"].startswith(b"\x89PNG")
    messages = [json.loads(m) for m in read_topic("ZTF_exgal_transients", len(results))]
    by_candid = {m["candid"]: m for m in messages if m["candid"] in results}
    assert set(by_candid) == set(results)
    some = next(iter(by_candid.values()))
    assert some["actor"] == "exgal_transients" and some["survey"] == "ZTF"
    assert some["result"]["figures"]["lightcurve"].startswith(
        f"http://127.0.0.1:{API_PORT}/science/"
    )


def test_the_api_serves_figures_to_readers_of_the_alerts(night, tmp_path):
    import httpx

    from tests.apiserver import boom, running_api

    db, _, _, _ = night
    doc = db[ZTF.alerts].find_one({"science.exgal_transients": {"$exists": True}})
    assert doc is not None
    env = {**os.environ}
    for user, catalogs in (("sci_alice", "ZTF_*"), ("sci_bob", "gcvs")):
        made = boom(env, "users", "add", user, "--password", "pw-123456789", "--catalogs", catalogs)
        assert made.returncode == 0, made.stderr
    with running_api(env, _free_port(), tmp_path / "api.log") as url:

        def token(user: str) -> dict[str, str]:
            answer = httpx.post(url + "/auth", data={"username": user, "password": "pw-123456789"})
            return {"Authorization": f"Bearer {answer.json()['access_token']}"}

        link = doc["science"]["exgal_transients"]["figures"]["lightcurve"]
        png = httpx.get(url + link, headers=token("sci_alice"))
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        stored = db["ZTF_science_figures"].find_one(
            {"_id": f"{doc['_id']}:exgal_transients:lightcurve"}
        )
        assert png.content == stored["png"]
        results = httpx.get(f"{url}/science/ZTF/results/{doc['_id']}", headers=token("sci_alice"))
        assert results.json()["data"]["science"]["exgal_transients"]["host"]
        # A user who may not read ZTF alerts gets the same 404 as for nothing
        assert httpx.get(url + link, headers=token("sci_bob")).status_code == 404
        assert httpx.get(url + link).status_code == 401


def test_over_budget_and_malformed_results_are_isolated_with_their_reason(night, services):
    db, candids, _, _ = night
    settings = ScienceSettings(max_failures=5)
    for module, message in [
        (slow, "over its budget of 0.05 s"),
        (malformed, "science actor malformed: result for candid "),
    ]:
        outcome = run_actor(db, ZTF, module.ACTOR, candids[:20], settings, None)
        assert outcome.selected == 20 and outcome.results == 0
        assert message in outcome.error
        name = module.ACTOR.name
        assert db[ZTF.alerts].count_documents({f"science.{name}": {"$exists": True}}) == 0
        errors = db[ZTF.alerts].count_documents({f"science_errors.{name}": {"$exists": True}})
        assert errors == 20
    assert "fit.g.chi2 is nan (store None instead)" in outcome.error


def test_a_hung_actor_is_stopped_at_twice_its_budget_and_the_batch_goes_on(night):
    db, candids, _, _ = night
    # Given an actor whose run never returns (budget 0.2 s)
    started = time.monotonic()
    # When the science stage runs it on a batch
    outcome = run_actor(db, ZTF, hung.ACTOR, candids[:10], ScienceSettings(max_failures=5), None)
    # Then it is stopped at about twice its budget, not at the message's time limit,
    # with the reason on its outcome and on the alerts, and nothing stored
    assert time.monotonic() - started < 5
    assert "still running at 2 times its budget of 0.2 s" in outcome.error
    assert outcome.results == 0
    assert db[ZTF.alerts].count_documents({"science_errors.hung": {"$exists": True}}) == 10
    # And this thread is not interrupted later by the stop
    time.sleep(0.5)


def test_boom_science_run_backfills_a_night_once(night):
    db, _, _, _ = night
    # (a module outside actors/ must be importable: here, the tests' own package)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        str(BIN / "boom"),
        "science",
        "run",
        "tests.science_actors.backfill",
        "--night",
        "20181129",
        "--no-publish",
    ]
    first = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    # The night's g-band alerts (fink-20181129 is the only 2018-11-29 night here) got a result
    from boom_tasks.filter.testing import night_jd_range

    lo, hi = night_jd_range("20181129")
    night_g = {
        a["_id"]: a["candidate"]["magpsf"]
        for a in db[ZTF.alerts].find({"candidate.jd": {"$gte": lo, "$lt": hi}, "candidate.fid": 1})
    }
    done = {
        a["_id"]: a["science"]["backfill"]["magpsf"]
        for a in db[ZTF.alerts].find({"science.backfill": {"$exists": True}})
    }
    assert night_g and done == night_g
    assert f"{len(night_g)} selected, {len(night_g)} results" in first.stdout
    # A second run finds nothing left to do; --redo does it again
    again = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and " 0 selected" in again.stdout
    redo = subprocess.run([*cmd, "--redo"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert f"{len(night_g)} selected" in redo.stdout
    # Bad input is a clear one-line error, never a traceback
    for args, message in [
        (["--night", "2018-11-29"], "expected a night as YYYYMMDD"),
        (["--night", "20181129", "--survey", "NOPE"], "NOPE"),
    ]:
        bad = subprocess.run(
            [str(BIN / "boom"), "science", "run", "tests.science_actors.backfill", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr
    unknown = subprocess.run(
        [str(BIN / "boom"), "science", "run", "nope", "--night", "20181129"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert unknown.returncode == 2 and "cannot import actors.nope" in unknown.stderr
    listed = subprocess.run(
        [str(BIN / "boom"), "science", "list"],
        env={**_env(), "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert "ZTF:broken: DISABLED: failed 2 batches in a row" in listed.stdout
    assert "exgal_transients v1 [ZTF]" in listed.stdout
