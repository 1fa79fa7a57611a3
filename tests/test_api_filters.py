"""The ``/filters`` routes of ``boom-api``, on real alerts, real services and a real server.

The module fills a database of its own with real ZTF alerts (one night of 479
public alerts, a few other nights, some of programids 0 and 3), creates accounts
with ``boom users add`` (one with the default public programids, one with
``--programids 1,3``, an admin), starts ``boom-api`` as a subprocess on a port of
its own, and talks to it over HTTP (boom-client 0.2 has no filter methods). Every
answer is checked against the database, the Valkey counter the workers watch, an
independent count, or what ``boom filters`` answers for the same filter.

The API and the command line started here use a Valkey database of their own, so
the change counter they bump (``boom:filters:version``) is this module's alone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pymongo
import pytest
import redis
from astropy.time import Time

from boom_tasks.filter.cache import VERSION_KEY
from boom_tasks.filter.errors import FilterInvalid
from boom_tasks.filter.store import FILTERS
from boom_tasks.filter.testing import Selection, night_jd_range, run_trial, select_candids
from boom_tasks.filter.validate import validate_pipeline
from boom_tasks.ingest.indexes import ensure_indexes
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.surveys import ZTF
from tests.alerts import packet_paths, read_packet
from tests.apiserver import boom, running_api
from tests.conftest import TEST_CONFIG

#: The module's own database, created and dropped here.
API_DB = "boom_test_api_filters"
#: Not test_api's 14000: both modules may serve at once.
PORT = 14001
#: A Valkey database of this module's own (not flushed: only read and incremented).
VALKEY_DB = 6
BIN = Path(sys.executable).parent
PASSWORDS = {name: f"{name} {uuid.uuid4().hex}" for name in ("alice", "bob", "root")}
SECRET = uuid.uuid4().hex + uuid.uuid4().hex
FOLDERS = ("fink-20181129", "kowalski", "ztf-avro-alert")
#: The night of 479 public alerts (fink-20181129).
BIG_NIGHT = "20181129"
#: A night of 8 alerts of programid 3 (Caltech), none public.
CALTECH_NIGHT = "20180418"
ENV = {
    **os.environ,
    "BOOM_CONFIG": str(TEST_CONFIG),
    "BOOM_MONGO__DATABASE": API_DB,
    "BOOM_VALKEY__DB": str(VALKEY_DB),
    "BOOM_API__SECRET": SECRET,
}

EVERYTHING = [{"$match": {}}, {"$project": {"objectId": 1}}]
#: Few detections so far, with the number of earlier points (reads the aux join).
YOUNG = [
    {"$match": {"candidate.ndethist": {"$lte": 2}}},
    {"$addFields": {"n_prv": {"$size": {"$ifNull": ["$prv_candidates", []]}}}},
    {"$project": {"objectId": 1, "annotations": {"n_prv": "$n_prv"}}},
]


def _bright(mag: float) -> list[dict[str, Any]]:
    return [
        {"$match": {"candidate.magpsf": {"$lt": mag}}},
        {"$project": {"objectId": 1, "annotations": {"mag": "$candidate.magpsf"}}},
    ]


def _boom(*args: str) -> subprocess.CompletedProcess[str]:
    return boom(ENV, *args)


def _night_query(night: str, programids: list[int] | None = None) -> dict[str, Any]:
    lo, hi = night_jd_range(night)
    query: dict[str, Any] = {"candidate.jd": {"$gte": lo, "$lt": hi}}
    if programids is not None:
        query["candidate.programid"] = {"$in": programids}
    return query


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fdb(services):
    client = pymongo.MongoClient(services.mongo.uri, serverSelectionTimeoutMS=5000)
    client.drop_database(API_DB)
    db = client[API_DB]
    ensure_indexes(db, ZTF)
    packets = [read_packet(p) for folder in FOLDERS for p in packet_paths(folder)]
    ingest_packets(db, ZTF, packets, "api-filters")
    yield db
    client.drop_database(API_DB)
    client.close()


@pytest.fixture(scope="module")
def valkey(services):
    client = redis.Redis(host=services.valkey.host, port=services.valkey.port, db=VALKEY_DB)
    yield client
    client.close()


@pytest.fixture(scope="module")
def api_url(fdb, tmp_path_factory):
    # Given accounts made with the command line: public data only, programids 1 and 3, admin
    for name, extra in (("alice", []), ("bob", ["--programids", "1,3"]), ("root", ["--admin"])):
        made = _boom("users", "add", name, "--password", PASSWORDS[name], *extra)
        assert made.returncode == 0, made.stderr
    log = tmp_path_factory.mktemp("api-filters") / "boom-api.log"
    with running_api(ENV, PORT, log) as url:
        yield url


def _session(url: str, name: str) -> httpx.Client:
    answer = httpx.post(url + "/auth", data={"username": name, "password": PASSWORDS[name]})
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=300)


@pytest.fixture(scope="module")
def alice(api_url):
    with _session(api_url, "alice") as c:
        yield c


@pytest.fixture(scope="module")
def bob(api_url):
    with _session(api_url, "bob") as c:
        yield c


@pytest.fixture(scope="module")
def root(api_url):
    with _session(api_url, "root") as c:
        yield c


def _counter(valkey: redis.Redis) -> int:
    return int(valkey.get(VERSION_KEY) or 0)


def _data(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()["data"]


def _refused(answer: httpx.Response, status: int) -> str:
    """Return the message of an error answer, checking it is JSON with only a message."""
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"message"} and "Traceback" not in answer.text
    return str(answer.json()["message"])


def _create(client: httpx.Client, name: str, pipeline: Any, programids=(1,)) -> str:
    body = {"name": name, "pipeline": pipeline, "permissions": {"ZTF": list(programids)}}
    return str(_data(client.post("/filters", json=body))["id"])


# --- accounts ---------------------------------------------------------------------------


def test_users_carry_their_programids(api_url, fdb):
    # The stored accounts: bob's list, alice none (public data only), as `boom users add` set
    assert fdb["users"].find_one({"_id": "bob"})["programids"] == [1, 3]
    assert fdb["users"].find_one({"_id": "alice"})["programids"] is None
    listed = _boom("users", "list")
    assert listed.returncode == 0, listed.stderr
    assert "bob\tuser\tcatalogs: default\tprogramids: 1,3" in listed.stdout
    assert "alice\tuser\tcatalogs: default\tprogramids: default" in listed.stdout
    # A malformed list is a usage error, and nothing is stored
    bad = _boom("users", "add", "carol", "--password", "pw", "--programids", "1,x")
    assert bad.returncode == 2 and "expected programids such as 1,2" in bad.stderr
    assert fdb["users"].find_one({"_id": "carol"}) is None


# --- create, read, list -----------------------------------------------------------------


def test_create_stores_the_owner_and_a_first_version(alice, fdb, valkey):
    before = _counter(valkey)
    # When alice creates a filter
    body = {
        "name": "bright",
        "description": "brighter than 15",
        "pipeline": _bright(15.0),
        "permissions": {"ZTF": [1]},
    }
    data = _data(alice.post("/filters", json=body))
    # Then it is stored inactive, owned by her, with one version: the pipeline given
    doc = fdb[FILTERS].find_one({"_id": data["id"]})
    assert doc["user_id"] == "alice" and doc["name"] == "bright" and doc["survey"] == "ZTF"
    assert doc["permissions"] == {"ZTF": [1]} and doc["active"] is False
    assert [v["fid"] for v in doc["fv"]] == [doc["active_fid"]]
    assert json.loads(doc["fv"][0]["pipeline"]) == _bright(15.0)
    # And answered as BOOM does: id for _id, the same fields
    assert "_id" not in data and data["active_fid"] == doc["active_fid"]
    assert data["user_id"] == "alice" and data["fv"][0]["pipeline"] == doc["fv"][0]["pipeline"]
    # And the workers were told (the CLI signals a new filter too)
    assert _counter(valkey) == before + 1
    # GET answers the same document
    got = _data(alice.get(f"/filters/{data['id']}"))
    assert got["fv"] == data["fv"] and got["description"] == "brighter than 15"


def test_users_see_only_their_filters_and_others_are_404(alice, bob, root, fdb):
    mine = _create(alice, "alice-own", _bright(14.0))
    theirs = _create(bob, "bob-own", _bright(14.0), programids=(1, 3))
    # Lists: each user their own, the admin every one, versions without pipelines
    alice_ids = {f["id"] for f in _data(alice.get("/filters"))}
    assert alice_ids == {d["_id"] for d in fdb[FILTERS].find({"user_id": "alice"})}
    assert mine in alice_ids and theirs not in alice_ids
    every = _data(root.get("/filters"))
    assert {f["id"] for f in every} == {d["_id"] for d in fdb[FILTERS].find()}
    assert all("pipeline" not in v for f in every for v in f["fv"])
    # bob asking for alice's filter gets the answer of a filter that does not exist
    unknown = _refused(bob.get("/filters/no-such-filter"), 404)
    assert _refused(bob.get(f"/filters/{mine}"), 404) == unknown.replace("no-such-filter", mine)
    before = fdb[FILTERS].find_one({"_id": mine})
    for path, body in (
        ("versions", {"pipeline": EVERYTHING}),
        ("activate", {"reference_night": BIG_NIGHT}),
        ("deactivate", {}),
        ("test", {"night": BIG_NIGHT}),
    ):
        _refused(bob.post(f"/filters/{mine}/{path}", json=body), 404)
    # and nothing of alice's changed
    assert fdb[FILTERS].find_one({"_id": mine}) == before
    # The admin sees and may change anyone's
    assert _data(root.get(f"/filters/{mine}"))["user_id"] == "alice"


def test_programids_must_be_within_the_users_own(alice, bob, root, fdb):
    count = fdb[FILTERS].count_documents({})
    # alice (public only) may not ask for the partnership's programid 2
    body = {"name": "p2", "pipeline": _bright(15.0), "permissions": {"ZTF": [1, 2]}}
    message = _refused(alice.post("/filters", json=body), 403)
    assert "programids [2] are beyond your permissions (programids [1])" in message
    # nor test a pipeline with Caltech's 3
    test = {"pipeline": EVERYTHING, "permissions": {"ZTF": [3]}, "night": CALTECH_NIGHT}
    assert "[3]" in _refused(alice.post("/filters/test", json=test), 403)
    # A filter must name its survey's programids, and only that survey's
    for permissions in ({"LSST": [1]}, {"ZTF": []}, {"ZTF": [1], "LSST": [1]}):
        body = {"name": "x", "pipeline": _bright(15.0), "permissions": permissions}
        assert "ZTF" in _refused(alice.post("/filters", json=body), 400)
    assert fdb[FILTERS].count_documents({}) == count
    # bob may use 1 and 3; the admin anything
    bob_id = _create(bob, "caltech", EVERYTHING, programids=(1, 3))
    assert fdb[FILTERS].find_one({"_id": bob_id})["permissions"] == {"ZTF": [1, 3]}
    root_id = _create(root, "partnership", EVERYTHING, programids=(1, 2))
    assert fdb[FILTERS].find_one({"_id": root_id})["user_id"] == "root"


# --- validation -------------------------------------------------------------------------


def test_an_invalid_pipeline_is_answered_with_every_problem(alice, fdb):
    bad = [
        {"$group": {"_id": "$objectId"}},
        {"$match": {"candidate.magpsf": {"$gtE": 18}}},
        {"$out": "stolen"},
    ]
    with pytest.raises(FilterInvalid) as refused:
        validate_pipeline(bad, aux_collection=ZTF.aux)
    problems = refused.value.problems
    assert len(problems) >= 3
    count = fdb[FILTERS].count_documents({})
    for path, body in (
        ("/filters/validate", {"pipeline": bad}),
        ("/filters", {"name": "bad", "pipeline": bad, "permissions": {"ZTF": [1]}}),
    ):
        message = _refused(alice.post(path, json=body), 400)
        assert message.startswith("invalid filter pipeline: ")
        assert all(problem in message for problem in problems)
    assert fdb[FILTERS].count_documents({}) == count
    # What only the database knows (an operator's arguments) is its own 400, before storing
    wrong = [
        {"$match": {"candidate.magpsf": {"$lt": 15}}},
        {"$addFields": {"m": {"$round": ["$candidate.magpsf", 1, 2]}}},
        {"$project": {"objectId": 1}},
    ]
    body = {"name": "wrong", "pipeline": wrong, "permissions": {"ZTF": [1]}}
    assert "$round" in _refused(alice.post("/filters", json=body), 400)
    assert "$round" in _refused(alice.post("/filters/validate", json={"pipeline": wrong}), 400)
    assert fdb[FILTERS].count_documents({}) == count
    # JSON text is accepted as the CLI takes it, and malformed text says where
    text = json.dumps(_bright(16.0))
    data = _data(alice.post("/filters/validate", json={"pipeline": text}))
    assert data == {"valid": True, "pipeline": _bright(16.0)}
    broken = _refused(alice.post("/filters/validate", json={"pipeline": text[:-3]}), 400)
    assert "not valid JSON" in broken and "column" in broken
    # A request body that is not a filter at all: 400 naming the field, never a 500
    assert "pipeline" in _refused(alice.post("/filters/validate", json={}), 400)
    assert "pipelin" in _refused(alice.post("/filters/validate", json={"pipelin": []}), 400)
    assert "PTF" in _refused(alice.post("/filters/validate", json=_on("PTF")), 400)


def _on(survey: str) -> dict[str, Any]:
    return {"pipeline": EVERYTHING, "survey": survey}


# --- activation -------------------------------------------------------------------------


def test_an_everything_filter_is_refused_activation_with_its_match_rate(alice, fdb, valkey):
    filter_id = _create(alice, "everything", EVERYTHING)
    before = _counter(valkey)
    # The default reference night is the newest stored one
    newest = fdb[ZTF.alerts].find_one({}, sort=[("candidate.jd", -1)])["candidate"]["jd"]
    night = Time(newest, format="jd").datetime.strftime("%Y%m%d")
    message = _refused(alice.post(f"/filters/{filter_id}/activate"), 400)
    assert f"passes 100.00% of night {night}, more than filters.max_match_rate" in message
    message = _refused(
        alice.post(f"/filters/{filter_id}/activate", json={"reference_night": BIG_NIGHT}), 400
    )
    assert f"passes 100.00% of night {BIG_NIGHT}" in message
    # Nothing changed, and nothing was signalled
    assert fdb[FILTERS].find_one({"_id": filter_id})["active"] is False
    assert _counter(valkey) == before
    # Skipping the check is for administrators only
    force = {"reference_night": BIG_NIGHT, "force": True}
    assert "administrator" in _refused(
        alice.post(f"/filters/{filter_id}/activate", json=force), 403
    )
    assert fdb[FILTERS].find_one({"_id": filter_id})["active"] is False


def test_a_selective_filter_is_activated_and_signalled(alice, fdb, valkey, settings):
    # Given a magnitude cut passing five of the big night's public alerts (about 1 %)
    night = _night_query(BIG_NIGHT, [1])
    mags = sorted(d["candidate"]["magpsf"] for d in fdb[ZTF.alerts].find(night))
    cut = (mags[4] + mags[5]) / 2
    filter_id = _create(alice, "five-brightest", _bright(cut))
    before = _counter(valkey)
    # When alice activates it against that night
    body = {"reference_night": BIG_NIGHT}
    data = _data(alice.post(f"/filters/{filter_id}/activate", json=body))
    # Then the answer reports the check, counted independently here
    passing = fdb[ZTF.alerts].count_documents({**night, "candidate.magpsf": {"$lt": cut}})
    tried = fdb[ZTF.alerts].count_documents(_night_query(BIG_NIGHT))
    check = data["match_rate"]
    assert (check["passed"], check["tried"]) == (passing, tried) == (5, tried)
    assert check["rate"] == pytest.approx(5 / tried)
    assert check["max_match_rate"] == settings.filters.max_match_rate
    # And the filter is active, its version the one that runs, and the workers told
    doc = fdb[FILTERS].find_one({"_id": filter_id})
    assert doc["active"] is True and doc["active_fid"] == data["active_fid"]
    assert _counter(valkey) > before
    # Deactivating records why, and signals again
    before = _counter(valkey)
    body = {"reason": "enough for tonight"}
    data = _data(alice.post(f"/filters/{filter_id}/deactivate", json=body))
    doc = fdb[FILTERS].find_one({"_id": filter_id})
    assert data["active"] is False and doc["active"] is False
    assert doc["disabled_reason"] == "enough for tonight" and _counter(valkey) == before + 1


def test_an_admin_may_force_an_activation(alice, root, fdb, valkey):
    filter_id = _create(alice, "forced", EVERYTHING)
    before = _counter(valkey)
    data = _data(root.post(f"/filters/{filter_id}/activate", json={"force": True}))
    assert data["match_rate"] is None
    assert fdb[FILTERS].find_one({"_id": filter_id})["active"] is True
    assert _counter(valkey) == before + 1
    _data(root.post(f"/filters/{filter_id}/deactivate"))
    doc = fdb[FILTERS].find_one({"_id": filter_id})
    assert doc["active"] is False
    assert doc["disabled_reason"] == "deactivated by root through the API"


# --- versions ---------------------------------------------------------------------------


def test_versions_are_added_and_a_running_one_is_checked_first(alice, fdb, valkey):
    filter_id = _create(alice, "versions", _bright(12.0))
    first = fdb[FILTERS].find_one({"_id": filter_id})["active_fid"]
    # A version stored aside leaves the running one alone
    before = _counter(valkey)
    aside = {"pipeline": _bright(13.0), "changelog": "a bit fainter", "set_as_active": False}
    data = _data(alice.post(f"/filters/{filter_id}/versions", json=aside))
    doc = fdb[FILTERS].find_one({"_id": filter_id})
    assert doc["active_fid"] == first == data["active_fid"]
    assert [v["fid"] for v in doc["fv"]] == [first, data["fid"]]
    assert doc["fv"][1]["changelog"] == "a bit fainter" and _counter(valkey) == before + 1
    # Activating that version by fid makes it the one that runs
    activated = _data(
        alice.post(
            f"/filters/{filter_id}/activate",
            json={"fid": data["fid"], "reference_night": BIG_NIGHT},
        )
    )
    doc = fdb[FILTERS].find_one({"_id": filter_id})
    assert doc["active"] is True and doc["active_fid"] == data["fid"] == activated["active_fid"]
    # A version that would replace the running one passes the match-rate check first
    replace = {"pipeline": EVERYTHING, "set_as_active": True}
    message = _refused(alice.post(f"/filters/{filter_id}/versions", json=replace), 400)
    assert "more than filters.max_match_rate" in message
    assert len(fdb[FILTERS].find_one({"_id": filter_id})["fv"]) == 2
    # Stored aside it is accepted, but activating it is refused; unknown versions are 404
    data = _data(
        alice.post(f"/filters/{filter_id}/versions", json={**replace, "set_as_active": False})
    )
    body = {"fid": data["fid"], "reference_night": BIG_NIGHT}
    _refused(alice.post(f"/filters/{filter_id}/activate", json=body), 400)
    assert "no version" in _refused(
        alice.post(f"/filters/{filter_id}/activate", json={"fid": "nope"}), 404
    )
    doc = fdb[FILTERS].find_one({"_id": filter_id})
    assert doc["active_fid"] == activated["active_fid"] and len(doc["fv"]) == 3
    # A new active version of an inactive filter needs no check
    _data(alice.post(f"/filters/{filter_id}/deactivate"))
    data = _data(alice.post(f"/filters/{filter_id}/versions", json=replace))
    assert fdb[FILTERS].find_one({"_id": filter_id})["active_fid"] == data["fid"]


# --- testing over stored alerts ---------------------------------------------------------


def _cli_test(filter_id: str, *selection: str) -> tuple[int, int, set[int]]:
    """Run ``boom filters test``; return (passed, tried, the candids it printed)."""
    done = _boom("filters", "test", filter_id, *selection, "--show", "100000")
    assert done.returncode == 0, done.stderr
    passed, tried = map(int, re.search(r": (\d+) of (\d+) alerts pass", done.stdout).groups())
    candids = {int(line.split()[0]) for line in done.stdout.splitlines()[1:] if line.strip()}
    return passed, tried, candids


def test_a_stored_filter_test_answers_what_the_command_line_does(alice, fdb, settings):
    filter_id = _create(alice, "young", YOUNG)
    # When alice tests it over the big night, over HTTP and with `boom filters test`
    data = _data(alice.post(f"/filters/{filter_id}/test", json={"night": BIG_NIGHT}))
    passed, tried, printed = _cli_test(filter_id, "--night", BIG_NIGHT)
    # Then both answer the same alerts, with the same annotations as the functions they share
    candids = select_candids(fdb, ZTF, Selection(jd_range=night_jd_range(BIG_NIGHT)))
    report = run_trial(fdb, ZTF, YOUNG, [1], candids, settings.filters)
    assert report.passed and len(report.passed) < len(candids)
    assert (data["passed"], data["tried"]) == (passed, tried) == (len(report.passed), len(candids))
    assert {d["_id"] for d in data["results"]} == printed == {d["_id"] for d in report.passed}
    assert sorted(data["results"], key=lambda d: d["_id"]) == sorted(
        report.passed, key=lambda d: d["_id"]
    )
    assert data["filter"]["id"] == filter_id and data["selection"] == f"night {BIG_NIGHT}"
    # And by objectIds, and by candids, the same as the command line
    objects = sorted({d["objectId"] for d in report.passed})[:3]
    by_objects = _data(alice.post(f"/filters/{filter_id}/test", json={"object_ids": objects}))
    passed, tried, printed = _cli_test(filter_id, "--objects", *objects)
    assert (by_objects["passed"], by_objects["tried"]) == (passed, tried)
    assert {d["_id"] for d in by_objects["results"]} == printed
    some = candids[:40]
    by_candids = _data(alice.post(f"/filters/{filter_id}/test", json={"candids": some}))
    assert {d["_id"] for d in by_candids["results"]} == _cli_test(
        filter_id, "--candids", *map(str, some)
    )[2]
    # limit bounds the documents answered, not the count
    limited = _data(alice.post(f"/filters/{filter_id}/test", json={"night": BIG_NIGHT, "limit": 2}))
    assert len(limited["results"]) == 2 and limited["passed"] == len(report.passed)


def test_a_pipeline_test_sees_only_the_programids_asked_and_allowed(alice, bob, fdb):
    # The Caltech night: alice (public) sees none of it pass, bob (1 and 3) all of it
    for client, programids in ((alice, [1]), (bob, [1, 3]), (bob, [1])):
        body = {"pipeline": EVERYTHING, "permissions": {"ZTF": programids}, "night": CALTECH_NIGHT}
        data = _data(client.post("/filters/test", json=body))
        visible = fdb[ZTF.alerts].count_documents(_night_query(CALTECH_NIGHT, programids))
        assert data["tried"] == fdb[ZTF.alerts].count_documents(_night_query(CALTECH_NIGHT))
        assert data["passed"] == len(data["results"]) == visible
        assert data["programids"] == programids and data["pipeline"] == EVERYTHING
    assert fdb[ZTF.alerts].count_documents(_night_query(CALTECH_NIGHT, [3])) > 0
    # Selections: one way at a time, a jd window of at most 7 days, a real date
    lo, _ = night_jd_range(BIG_NIGHT)
    base = {"pipeline": EVERYTHING, "permissions": {"ZTF": [1]}}
    window = _data(alice.post("/filters/test", json={**base, "start_jd": lo, "end_jd": lo + 1}))
    assert window["passed"] == fdb[ZTF.alerts].count_documents(_night_query(BIG_NIGHT, [1]))
    for bad, words in (
        ({"night": BIG_NIGHT, "candids": [1]}, "give one of"),
        ({"start_jd": lo, "end_jd": lo + 8}, "at most 7.0 days"),
        ({"start_jd": lo}, "go together"),
        ({"night": "2018-11-29"}, "YYYYMMDD"),
        ({"night": "20181399"}, "YYYYMMDD"),
        ({"limit": 0}, "limit"),
    ):
        assert words in _refused(alice.post("/filters/test", json={**base, **bad}), 400)


# --- the command line shares the guard --------------------------------------------------


def test_the_command_line_applies_the_same_guard(alice, fdb):
    everything = _create(alice, "cli-everything", EVERYTHING)
    refused = _boom("filters", "activate", everything, "--reference-night", BIG_NIGHT)
    assert refused.returncode == 2
    assert f"passes 100.00% of night {BIG_NIGHT}, more than filters.max_match_rate" in (
        refused.stderr
    )
    selective = _create(alice, "cli-faint-cut", _bright(10.0))
    done = _boom("filters", "activate", selective, "--reference-night", BIG_NIGHT)
    tried = fdb[ZTF.alerts].count_documents(_night_query(BIG_NIGHT))
    assert done.returncode == 0, done.stderr
    assert f"reference night {BIG_NIGHT}: 0 of {tried} alerts pass (0.00%; limit 5.00%)" in (
        done.stdout
    )
    assert fdb[FILTERS].find_one({"_id": selective})["active"] is True


# --- errors and docs --------------------------------------------------------------------


def test_no_route_answers_a_500(api_url, alice, root):
    # Without a token: 401; with one, unknown filters 404 and bad bodies 400, all JSON
    assert _refused(httpx.get(api_url + "/filters"), 401)
    for method, path in (
        ("GET", "/filters/nope"),
        ("POST", "/filters/nope/versions"),
        ("POST", "/filters/nope/activate"),
        ("POST", "/filters/nope/deactivate"),
        ("POST", "/filters/nope/test"),
    ):
        body = {"pipeline": EVERYTHING} if path.endswith("versions") else None
        assert "does not exist" in _refused(alice.request(method, path, json=body), 404)
    bodies = ([1, 2], {"name": ""}, {"name": "x", "pipeline": EVERYTHING, "extra": 1}, "text")
    for body in bodies:
        _refused(alice.post("/filters", json=body), 400)
    assert "unknown survey" in _refused(alice.get("/filters", params={"survey": "NOPE"}), 400)
    # Values the database could not hold are refused with the field, not failed on
    over = {"pipeline": EVERYTHING, "permissions": {"ZTF": [2**70]}, "candids": [2**70]}
    message = _refused(root.post("/filters/test", json=over), 400)
    assert "permissions" in message and "candids" in message
    body = {"name": "long", "pipeline": EVERYTHING, "permissions": {"ZTF": [1]}}
    assert "description" in _refused(
        alice.post("/filters", json={**body, "description": "x" * 10**6}), 400
    )
    huge = [
        {"$match": {"objectId": {"$in": [f"ZTF{i:09d}" for i in range(20_000)]}}},
        EVERYTHING[1],
    ]
    assert "longer than" in _refused(alice.post("/filters", json={**body, "pipeline": huge}), 400)


def test_the_routes_are_documented_under_filters(api_url):
    spec = httpx.get(api_url + "/openapi.json").json()
    routes = {
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if op.get("tags") == ["Filters"]
    }
    assert routes == {
        ("POST", "/filters"),
        ("GET", "/filters"),
        ("POST", "/filters/validate"),
        ("POST", "/filters/test"),
        ("GET", "/filters/{filter_id}"),
        ("POST", "/filters/{filter_id}/versions"),
        ("POST", "/filters/{filter_id}/activate"),
        ("POST", "/filters/{filter_id}/deactivate"),
        ("POST", "/filters/{filter_id}/test"),
    }
