"""The HTTP API, driven by boom-client (BOOM's Python client, unmodified) against ``boom-api``.

The module fills a database of its own with real ZTF alerts and a real GCVS
slice, creates accounts with ``boom users add``, starts ``boom-api`` as a
subprocess on the test port, and talks to it through boom-client, as a user
would (raw HTTP only where boom-client refuses to send a request itself).
Every answer is checked against the database or an independent astropy
computation, not only its status.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import os
import subprocess
import sys
import uuid
from pathlib import Path

import astropy.units as u
import httpx
import numpy as np
import pymongo
import pytest
from astropy.coordinates import SkyCoord

from boom_tasks.api.ordering import sort_documents
from boom_tasks.api.passwords import hash_password, verify_password
from boom_tasks.api.spatial import parse_near
from boom_tasks.api.tokens import TokenInvalid, issue, verify
from boom_tasks.catalogs.loader import LoadOptions, load_catalog
from boom_tasks.ingest.indexes import ensure_indexes
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.surveys import ZTF
from tests.alerts import packet_paths, read_packet
from tests.apiserver import boom, running_api
from tests.conftest import DATA, TEST_CONFIG

#: The module's own database, created and dropped here.
API_DB = "boom_test_api"
BIN = Path(sys.executable).parent
PASSWORD = "correct horse battery staple"
ADMIN_PASSWORD = "admin " + uuid.uuid4().hex
SECRET = uuid.uuid4().hex + uuid.uuid4().hex
#: Limits small enough to reach with 41 alerts: their cutouts (1.6 MB) overflow the
#: answer cap, which one object's trimmed history stays far below.
MAX_ANSWER_BYTES = 500_000
MAX_CONE_POSITIONS = 50
GCVS_ROWS = 3000
#: An object with two alerts in the kowalski sample.
OBJECT = "ZTF20aajcdad"
#: Environment of every process the module starts.
ENV = {
    **os.environ,
    "BOOM_CONFIG": str(TEST_CONFIG),
    "BOOM_MONGO__DATABASE": API_DB,
    "BOOM_API__SECRET": SECRET,
    "BOOM_API__MAX_ANSWER_BYTES": str(MAX_ANSWER_BYTES),
    "BOOM_API__MAX_CONE_POSITIONS": str(MAX_CONE_POSITIONS),
}
# boom-client and babamul ask PyPI for newer releases on import; tests stay offline.
os.environ["BOOM_NO_VERSION_CHECK"] = "1"
os.environ["BABAMUL_NO_VERSION_CHECK"] = "1"
os.environ.pop("BOOM_CACHE_DIR", None)


def _boom(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return boom(ENV, *args, stdin=stdin)


def _sep_arcsec(ra, dec, ras, decs) -> np.ndarray:
    centre = SkyCoord(ra * u.deg, dec * u.deg)
    return centre.separation(SkyCoord(np.asarray(ras) * u.deg, np.asarray(decs) * u.deg)).arcsec


def _radec(doc) -> tuple[float, float]:
    lon, lat = doc["coordinates"]["radec_geojson"]["coordinates"]
    return (lon + 180.0) % 360.0, lat


# --- pure: tokens, passwords, near-search radius, ordering -------------------------------


def test_tokens_carry_their_user_until_they_expire():
    secret = b"k" * 32
    token = issue(secret, "alice", ttl_s=600, now=1_000.0)
    assert verify(secret, token, now=1_500.0) == "alice"
    with pytest.raises(TokenInvalid, match="expired"):
        verify(secret, token, now=1_600.0)
    with pytest.raises(TokenInvalid, match="signature"):
        verify(b"other key" * 4, token, now=1_500.0)
    body = token.split(".")[1]
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    with pytest.raises(TokenInvalid):
        verify(secret, f"{none_alg}.{body}.", now=1_500.0)


def test_passwords_are_salted_and_checked():
    first, second = hash_password("pw"), hash_password("pw")
    assert first["salt"] != second["salt"] and first["key"] != second["key"]
    assert verify_password("pw", first) and not verify_password("pW", first)
    assert not verify_password("pw", None)


def test_near_search_radius_is_the_one_the_client_asked_for():
    from boom.client import arcsec_to_metres

    # Given boom-client's $nearSphere filter for 7.5 arcsec around (359.99, -45)
    query = {
        "coordinates.radec_geojson": {
            "$nearSphere": {
                "$geometry": {"type": "Point", "coordinates": [179.99, -45.0]},
                "$maxDistance": arcsec_to_metres(7.5),
            }
        },
        "objectId": "x",
    }
    cone, rest = parse_near(query)
    assert (cone.ra, cone.dec) == pytest.approx((359.99, -45.0))
    assert cone.radius_arcsec == pytest.approx(7.5, rel=1e-12)
    assert rest == {"objectId": "x"}
    assert parse_near({"coordinates.radec_geojson": {"$nearSphere": [1, 2]}}) is None


def test_documents_sort_like_mongodb():
    docs = [{"a": 2}, {"a": None}, {}, {"a": "s"}, {"a": 1.5, "b": 2}, {"a": 1.5, "b": 1}]
    ordered = sort_documents(docs, {"a": 1, "b": -1})
    assert ordered == [
        {"a": None},
        {},
        {"a": 1.5, "b": 2},
        {"a": 1.5, "b": 1},
        {"a": 2},
        {"a": "s"},
    ]


def _raising(error: Exception):
    def route() -> None:
        raise error

    return route


async def _get_all(app, paths) -> dict[str, httpx.Response]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        return {path: await http.get(path) for path in paths}


def test_errors_are_json_messages_without_internals(settings):
    from boom_tasks.api.app import create_app
    from boom_tasks.errors import QueryTimeout, ServiceUnavailable

    # Given routes failing as a query over its budget, a database down, a bug
    app = create_app(settings)
    failures = {
        "/timeout": QueryTimeout("stopped after its time budget of 5 ms"),
        "/down": ServiceUnavailable("MongoDB unavailable: mongodb://admin:hunter2@db:27017"),
        "/bug": RuntimeError("mongodb://admin:hunter2@db:27017 Traceback"),
    }
    for path, error in failures.items():
        app.add_api_route(path, _raising(error))
    # When they are called, Then each is a JSON message with its status, and nothing internal
    answers = asyncio.run(_get_all(app, failures))
    assert answers["/timeout"].status_code == 400
    assert "5 ms" in answers["/timeout"].json()["message"]
    assert answers["/down"].status_code == 503
    assert answers["/bug"].status_code == 500
    for answer in answers.values():
        assert set(answer.json()) == {"message"}
        assert "hunter2" not in answer.text and "Traceback" not in answer.text


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_db(services):
    client = pymongo.MongoClient(services.mongo.uri, serverSelectionTimeoutMS=5000)
    client.drop_database(API_DB)
    db = client[API_DB]
    ensure_indexes(db, ZTF)
    packets = [read_packet(p) for p in packet_paths("kowalski") + packet_paths("boom-402")]
    ingest_packets(db, ZTF, packets, "api")
    load_catalog(db, "gcvs", DATA / "catalogs" / "gcvs.parquet", LoadOptions(limit=GCVS_ROWS))
    db["watchlist_private"].insert_one({"_id": "secret", "note": "not for alice"})
    yield db
    client.drop_database(API_DB)
    client.close()


@pytest.fixture(scope="module")
def api_url(api_db, services, tmp_path_factory):
    # Given accounts made with the command line: a user restricted to ZTF and GCVS, an admin
    alice = _boom("users", "add", "alice", "--password", PASSWORD, "--catalogs", "ZTF_*", "gcvs")
    assert alice.returncode == 0, alice.stderr
    root = _boom("users", "add", "root", "--admin", "--password", ADMIN_PASSWORD)
    assert root.returncode == 0, root.stderr
    log = tmp_path_factory.mktemp("api") / "boom-api.log"
    with running_api(ENV, services.api.port, log) as url:
        yield url


@pytest.fixture(scope="module")
def client(api_url):
    from boom import BoomClient

    with BoomClient("alice", PASSWORD, url=api_url, max_retries=2, backoff_factor=0.1) as c:
        yield c


@pytest.fixture(scope="module")
def admin(api_url):
    from boom import BoomClient

    with BoomClient("root", ADMIN_PASSWORD, url=api_url, max_retries=2, backoff_factor=0.1) as c:
        yield c


def _token(api_url: str) -> str:
    answer = httpx.post(api_url + "/auth", data={"username": "alice", "password": PASSWORD})
    return answer.json()["access_token"]


# --- accounts and catalogs ---------------------------------------------------------------


def test_users_list_only_their_readable_catalogs(client, admin):
    # When alice lists catalogs, Then she sees exactly those matching her patterns
    assert client.catalog_names() == ["ZTF_alerts", "ZTF_alerts_aux", "ZTF_alerts_cutouts", "gcvs"]
    # And an admin sees the operational collections too, but never the password hashes
    names = admin.catalog_names()
    assert {"catalogs_meta", "ZTF_alerts_quarantine", "watchlist_private"} <= set(names)
    assert "users" not in names
    # And details carry storage statistics and, for a loaded catalog, how it was loaded
    details = {c["name"]: c["details"] for c in client.catalogs(details=True)}
    assert details["gcvs"]["count"] == GCVS_ROWS
    assert details["gcvs"]["catalog"]["hpx_order"] == 10
    assert details["ZTF_alerts"]["count"] == 41


def test_login_refusals_and_stored_passwords(api_url, api_db):
    from boom import APIAuthenticationError, BoomClient

    # A wrong password is refused by /auth, and boom-client says so
    with (
        BoomClient("alice", "wrong", url=api_url, max_retries=1) as bad,
        pytest.raises(APIAuthenticationError, match="Invalid username or password"),
    ):
        bad.catalog_names()
    # Every route but / and /auth wants a valid token: none, or a forged one, is a 401
    missing = httpx.post(api_url + "/queries/count", json={"catalog_name": "ZTF_alerts"})
    assert missing.status_code == 401 and missing.json() == {"message": missing.json()["message"]}
    head, body, _ = _token(api_url).split(".")
    forged = httpx.get(api_url + "/catalogs", headers={"Authorization": f"Bearer {head}.{body}.x"})
    assert forged.status_code == 401 and "signature" in forged.json()["message"]
    # And no stored field holds a password in clear: a salted scrypt key only
    for doc in api_db["users"].find():
        assert PASSWORD not in str(doc) and ADMIN_PASSWORD not in str(doc)
        assert doc["password"]["algorithm"] == "scrypt" and len(doc["password"]["salt"]) == 32


def test_users_command_lists_refuses_duplicates_and_removes(api_url):
    from boom import APIAuthenticationError, BoomClient

    listed = _boom("users", "list")
    assert listed.returncode == 0 and "alice\tuser\tcatalogs: ZTF_* gcvs" in listed.stdout
    assert "scrypt" not in listed.stdout
    again = _boom("users", "add", "alice", "--password", "x")
    assert again.returncode == 2 and "exists" in again.stderr
    # Given a user logged in, When the account is removed, Then its token stops working
    assert _boom("users", "add", "temp", "--password", "temporary").returncode == 0
    with BoomClient("temp", "temporary", url=api_url, max_retries=1) as temp:
        assert temp.count("ZTF_alerts") == 41
        assert _boom("users", "remove", "temp").returncode == 0
        with pytest.raises(APIAuthenticationError):
            temp.count("ZTF_alerts")


# --- find, count, pipeline ---------------------------------------------------------------


def test_find_count_and_paging_match_the_database(client, api_db):
    projection = {"objectId": 1, "candidate.jd": 1}
    expected = list(api_db[ZTF.alerts].find({}, projection).sort("_id", 1))
    # iter_find pages with skip/limit on _id: every alert once, in order
    paged = list(client.iter_find("ZTF_alerts", projection=projection, page_size=7))
    assert paged == expected
    # find with a filter, a sort and a limit
    bright = {"candidate.magpsf": {"$lt": 18.5}}
    got = client.find("ZTF_alerts", bright, projection={"_id": 1}, sort={"candidate.jd": -1})
    ref = api_db[ZTF.alerts].find(bright, {"_id": 1}).sort("candidate.jd", -1)
    assert [d["_id"] for d in got] == [d["_id"] for d in ref] and got
    assert client.count("ZTF_alerts", bright) == api_db[ZTF.alerts].count_documents(bright)
    assert client.estimated_count("ZTF_alerts") == 41
    # Dates travel as Extended JSON both ways
    later = {"created_at": {"$lte": {"$date": "2100-01-01T00:00:00Z"}}}
    assert client.count("ZTF_alerts", later) == 41
    assert set(client.find_one("ZTF_alerts", {}, projection={"created_at": 1})["created_at"]) == {
        "$date"
    }


def test_pipeline_runs_like_the_database(client, api_db):
    stages = [
        {"$group": {"_id": "$objectId", "n": {"$sum": 1}}},
        {"$sort": {"n": -1, "_id": 1}},
    ]
    counts = collections.Counter(d["objectId"] for d in api_db[ZTF.alerts].find())
    got = client.pipeline("ZTF_alerts", stages)
    assert {d["_id"]: d["n"] for d in got} == counts
    assert got[0] == {"_id": OBJECT, "n": 2}


def test_malformed_queries_are_400_with_the_database_message(client):
    from boom import QueryError

    for call in (
        lambda: client.find("ZTF_alerts", {"candidate.magpsf": {"$bogus": 1}}),
        lambda: client.count("ZTF_alerts", {"candidate.magpsf": {"$bogus": 1}}),
        lambda: client.pipeline("ZTF_alerts", [{"$bogus": {}}]),
    ):
        with pytest.raises(QueryError, match=r"\$bogus") as refused:
            call()
        assert refused.value.status_code == 400
    with pytest.raises(QueryError, match="sort"):
        client.find("ZTF_alerts", {}, sort={"candidate.jd": "up"})


def test_writes_javascript_and_unreadable_joins_are_refused(client, api_db, api_url):
    from boom import APINotFoundError, QueryError

    # $out hidden in a $facet, where boom-client's own check does not look
    with pytest.raises(QueryError, match=r"\$out"):
        client.pipeline("ZTF_alerts", [{"$facet": {"x": [{"$out": "stolen"}]}}])
    # $merge sent directly (boom-client refuses to send it)
    merge = httpx.post(
        api_url + "/queries/pipeline",
        json={"catalog_name": "ZTF_alerts", "pipeline": [{"$merge": {"into": "stolen"}}]},
        headers={"Authorization": f"Bearer {_token(api_url)}"},
    )
    assert merge.status_code == 400 and set(merge.json()) == {"message"}
    assert "stolen" not in api_db.list_collection_names()
    # Server-side JavaScript, and stages reporting on the server
    with pytest.raises(QueryError, match=r"\$where"):
        client.find("ZTF_alerts", {"$where": "sleep(1000)"})
    with pytest.raises(QueryError, match=r"\$function"):
        client.find("ZTF_alerts", {"$expr": {"$function": {"body": "1", "args": [], "lang": "js"}}})
    with pytest.raises(QueryError, match=r"\$currentOp"):
        client.pipeline("ZTF_alerts", [{"$currentOp": {}}])
    # A join may only read what the user may read: users (hashes) and others' collections
    for stage in (
        {"$lookup": {"from": "users", "localField": "x", "foreignField": "_id", "as": "u"}},
        {"$unionWith": "watchlist_private"},
    ):
        with pytest.raises(APINotFoundError):
            client.pipeline("ZTF_alerts", [stage])


def test_unreadable_and_unknown_catalogs_are_404(client, admin):
    from boom import APINotFoundError

    for name in ("watchlist_private", "users", "catalogs_meta", "no_such_catalog"):
        with pytest.raises(APINotFoundError):
            client.find(name, {})
    # An admin reads the operational collections, but users stay hidden from everyone
    assert admin.find("watchlist_private", {}) == [{"_id": "secret", "note": "not for alice"}]
    with pytest.raises(APINotFoundError):
        admin.find("users", {})
    # A survey this broker does not ingest answers empty, as get_object expects
    assert client.find("DECAM_alerts_aux", {}) == []


def test_oversized_answers_and_too_many_positions_are_400(client, api_db):
    from boom import QueryError

    with pytest.raises(QueryError, match="limit") as refused:
        client.find("ZTF_alerts_cutouts", {})
    assert refused.value.status_code == 400
    # A page of the same collection fits, with its bytes in Extended JSON
    page = client.find("ZTF_alerts_cutouts", {}, limit=3)
    assert len(page) == 3 and set(page[0]["cutoutScience"]) == {"$binary"}
    positions = [(10.0 + i * 0.01, 20.0) for i in range(MAX_CONE_POSITIONS + 1)]
    with pytest.raises(QueryError, match=f"at most {MAX_CONE_POSITIONS}"):
        client.cone_search("gcvs", positions, 1.0)


# --- cone and near searches --------------------------------------------------------------


def test_cone_search_on_alerts_matches_astropy(client, api_db):
    alerts = list(api_db[ZTF.alerts].find({}, {"coordinates": 1, "candidate.fid": 1}))
    ras, decs = np.array([_radec(a) for a in alerts]).T
    ids = np.array([a["_id"] for a in alerts])
    obj = api_db[ZTF.alerts].find_one({"objectId": OBJECT})
    # Given named positions: an alert's, one 1.5 arcsec off another's, an empty patch of sky
    off = SkyCoord(ras[5] * u.deg, decs[5] * u.deg).directional_offset_by(0 * u.deg, 1.5 * u.arcsec)
    positions = {
        "obj": _radec(obj),
        "near5": (off.ra.deg, off.dec.deg),
        "empty": (1.0, -80.0),
    }
    got = client.cone_search("ZTF_alerts", positions, 2.0, projection={"objectId": 1})
    assert set(got) == set(positions)
    for name, (ra, dec) in positions.items():
        sep = _sep_arcsec(ra, dec, ras, decs)
        inside = np.argsort(sep)[: int((sep <= 2.0).sum())]
        assert [d["_id"] for d in got[name]] == list(ids[inside]), name
        assert [d["distance_arcsec"] for d in got[name]] == pytest.approx(sep[inside], abs=1e-6)
        assert all(set(d) == {"_id", "objectId", "distance_arcsec"} for d in got[name])
    assert len(got["obj"]) == 2 and not got["empty"]
    # {"_id": 0} is honoured although the answer is joined on _id
    no_id = client.cone_search("ZTF_alerts", positions, 2.0, projection={"_id": 0, "objectId": 1})
    assert no_id["obj"] == [
        {"objectId": OBJECT, "distance_arcsec": d["distance_arcsec"]} for d in got["obj"]
    ]
    # A SkyCoord and a Quantity radius, and a filter applied within the cones
    sky = SkyCoord([positions["obj"][0]] * u.deg, [positions["obj"][1]] * u.deg)
    g_only = client.cone_search("ZTF_alerts", sky, 0.05 * u.arcmin, filter={"candidate.fid": 1})
    expected = [a["_id"] for a in alerts if a["_id"] in {d["_id"] for d in got["obj"]}]
    assert [d["_id"] for d in g_only["0"]] == [
        i for i in expected if api_db[ZTF.alerts].find_one({"_id": i})["candidate"]["fid"] == 1
    ]


def test_cone_search_on_a_catalog_matches_astropy(client, api_db):
    rows = list(api_db["gcvs"].find({}, {"ra": 1, "dec": 1}))
    ras, decs = np.array([(r["ra"], r["dec"]) for r in rows]).T
    ids = np.array([r["_id"] for r in rows])
    centres = [(ras[i], decs[i]) for i in (0, 57, 498, 2000)]
    got = client.cone_search("gcvs", centres, 20, "arcmin", projection={"VarType": 1})
    for key, (ra, dec) in zip(("0", "1", "2", "3"), centres, strict=True):
        sep = _sep_arcsec(ra, dec, ras, decs)
        inside = np.argsort(sep, kind="stable")[: int((sep <= 1200.0).sum())]
        assert sorted(d["_id"] for d in got[key]) == sorted(ids[inside]), key
        distances = [d["distance_arcsec"] for d in got[key]]
        assert distances == sorted(distances) == pytest.approx(sep[inside], abs=1e-6)
    # limit and skip apply per position; a sort replaces the distance order
    page = client.cone_search("gcvs", centres, 20, "arcmin", skip=1, limit=2, sort={"_id": -1})
    for key in ("0", "1", "2", "3"):
        assert [d["_id"] for d in page[key]] == sorted((d["_id"] for d in got[key]), reverse=True)[
            1:3
        ]


def test_near_search_is_nearest_first(client, api_db):
    rows = list(api_db["gcvs"].find({}, {"ra": 1, "dec": 1}))
    ras, decs = np.array([(r["ra"], r["dec"]) for r in rows]).T
    ra, dec = ras[0] + 0.05, decs[0] - 0.03
    sep = _sep_arcsec(ra, dec, ras, decs)
    nearest = np.argsort(sep)[:5]
    got = client.near_search("gcvs", ra, dec, radius_arcsec=3600, limit=5)
    assert [d["_id"] for d in got] == [rows[i]["_id"] for i in nearest]
    assert [d["distance_arcsec"] for d in got] == pytest.approx(sep[nearest], abs=1e-6)
    # The server's distances, when the projection leaves out the position
    ids_only = client.near_search("gcvs", ra, dec, 3600, projection={"_id": 1}, limit=None)
    assert [d["_id"] for d in ids_only] == [
        rows[i]["_id"] for i in np.argsort(sep)[: (sep <= 3600).sum()]
    ]
    assert [d["distance_arcsec"] for d in ids_only][:5] == pytest.approx(sep[nearest], abs=1e-6)
    # A collection without pixels (the aux histories) answers through its 2dsphere index
    aux = api_db[ZTF.aux].find_one({"_id": OBJECT})
    found = client.near_search("ZTF_alerts_aux", *_radec(aux), 1.0, projection={"_id": 1})
    assert found == [{"_id": OBJECT, "distance_arcsec": 0.0}]


# --- catalogs, cutouts, objects ----------------------------------------------------------


def test_catalog_indexes_and_sample(client, api_db):
    keys = [index["key"] for index in client.catalog_indexes("ZTF_alerts")]
    assert {"hpx": 1} in keys and {"coordinates.radec_geojson": "2dsphere"} in keys
    sample = client.catalog_sample("gcvs", 5)
    assert len({d["_id"] for d in sample}) == 5
    for doc in sample:
        stored = api_db["gcvs"].find_one({"_id": doc["_id"]})
        assert (doc["ra"], doc["dec"], doc["VarType"]) == (
            stored["ra"],
            stored["dec"],
            stored["VarType"],
        )


def test_cutouts_by_candid_object_and_batch(client, api_db):
    from boom import APINotFoundError

    alerts = list(api_db[ZTF.alerts].find({"objectId": OBJECT}))
    stamps = {
        d["_id"]: d for d in api_db[ZTF.cutouts].find({"_id": {"$in": [a["_id"] for a in alerts]}})
    }
    first = min(alerts, key=lambda a: a["candidate"]["jd"])
    got = client.cutouts("ZTF", candid=first["_id"])
    assert got["candid"] == first["_id"]
    assert all(got[k] == stamps[first["_id"]][k] for k in ("cutoutScience", "cutoutDifference"))
    brightest = min(alerts, key=lambda a: a["candidate"]["magpsf"])
    assert client.cutouts("ZTF", object_id=OBJECT)["candid"] == brightest["_id"]
    assert client.cutouts("ZTF", object_id=OBJECT, which="first")["candid"] == first["_id"]
    g_band = [a for a in alerts if a["candidate"]["fid"] == 1]
    assert client.cutouts("ZTF", object_id=OBJECT, band="g")["candid"] == g_band[0]["_id"]
    batch = client.batch_cutouts("ZTF", [a["_id"] for a in alerts] + [1])
    assert set(batch) == set(stamps)
    assert all(batch[c]["cutoutTemplate"] == stamps[c]["cutoutTemplate"] for c in batch)
    with pytest.raises(APINotFoundError):
        client.cutouts("ZTF", candid=1)


def _expected_detections(aux) -> list[dict]:
    """boom-client's default detection cuts, computed here from the stored history."""
    return [
        p
        for p in aux["prv_candidates"]
        if p["isdiffpos"] in ("t", "1")
        and 1.0857362047581294 / p["sigmapsf"] > 3
        and (p.get("drb") is None or p["drb"] >= 0.65)
        and p["diffmaglim"] >= 19.0
        and p.get("nbad", 0) <= 1
        and p["magpsf"] <= p["diffmaglim"] + 1
    ]


def test_get_object_and_get_source(client, api_db):
    from boom import get_object, get_source

    aux = api_db[ZTF.aux].find_one({"_id": OBJECT})
    latest = api_db[ZTF.alerts].find_one({"objectId": OBJECT}, sort=[("candidate.jd", -1)])
    # get_object joins the newest alert with the object's history
    obj = get_object(client, "ZTF", OBJECT)
    assert obj["_id"] == latest["_id"] and obj["candidate"]["jd"] == latest["candidate"]["jd"]
    assert [p["jd"] for p in obj["prv_candidates"]] == [p["jd"] for p in aux["prv_candidates"]]
    assert [p["band"] for p in obj["prv_nondetections"]] == [
        "gr"[p["fid"] - 1] for p in aux["prv_nondetections"]
    ]
    assert obj["survey_matches"] == {}
    # get_source: typed photometry and summaries from the same history
    src = get_source(client, "ZTF", OBJECT)
    detections = _expected_detections(aux)
    assert src.objectid == OBJECT and src.ndethist == len(detections) == 5
    assert src.peak_mag == pytest.approx(min(p["magpsf"] for p in detections))
    assert src.filters == ["g", "r"]
    photometry = src.get_photometry()
    assert len(photometry) == len(aux["prv_candidates"]) + len(aux["prv_nondetections"])


def test_openapi_docs_are_served(api_url):
    docs = httpx.get(api_url + "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    paths = httpx.get(api_url + "/openapi.json").json()["paths"]
    assert {"/auth", "/queries/find", "/queries/cone_search", "/catalogs"} <= set(paths)
