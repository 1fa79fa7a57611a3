"""A fuzz pass over the HTTP API, generated from its own OpenAPI description (schemathesis).

The module fills a database of its own with real ZTF alerts and a GCVS slice,
creates an account with ``boom users add``, starts ``boom-api`` as a subprocess
on a port of its own, and loads the API's description from the running
server's ``/openapi.json``: every route the server has at run time is fuzzed,
routes added later included. Each operation gets a bounded number of generated
requests, valid and invalid, sent with a real bearer token; none may be
answered with a 5xx, and every answer must conform to what the description
declares. Generation is deterministic (derandomized Hypothesis), so a failure
found once is found again.

Generated strings rarely name a real catalog, survey, candid or objectId, which
would leave every request at the 404 of an unknown name. Dictionaries of real
names (schemathesis' ``parameters`` bindings) steer most of them to data that
exists, so filters, pipelines and cone searches reach the database.

The regression tests at the end replay, as plain requests, each 500 the fuzzing
(and probing around what it found) turned up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import hypothesis
import pymongo
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode

from boom_tasks.catalogs.loader import LoadOptions, load_catalog
from boom_tasks.ingest.indexes import ensure_indexes
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.surveys import ZTF
from tests.alerts import packet_paths, read_packet
from tests.apiserver import boom, running_api
from tests.conftest import DATA, TEST_CONFIG

#: The module's own database and port, apart from tests/test_api.py's.
FUZZ_DB = "boom_test_api_fuzz"
PORT = 14002
BIN = Path(sys.executable).parent
USER = "fuzzer"
PASSWORD = "fuzz " + uuid.uuid4().hex
SECRET = uuid.uuid4().hex + uuid.uuid4().hex
#: Generated requests per operation and kind (valid, invalid): enough to reach the
#: odd corners of each body, few enough for the pass to take a minute or two.
MAX_EXAMPLES = 30
#: Catalog rows loaded: enough for cone searches to find neighbours, cheap to load.
GCVS_ROWS = 300
#: How often a generated name is replaced by a real one (the rest stay random).
REAL_NAME_PROBABILITY = 0.7
#: What every answer is checked for. Not status_code_conformance: errors are answered
#: 400/401/404/503 as BOOM does (never FastAPI's 422), which the description does not list.
CHECKS = (
    "not_a_server_error",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
)
ENV = {
    **os.environ,
    "BOOM_CONFIG": str(TEST_CONFIG),
    "BOOM_MONGO__DATABASE": FUZZ_DB,
    "BOOM_API__SECRET": SECRET,
    "BOOM_API__PORT": str(PORT),
    # Generated budgets must not hold the test for minutes: a few seconds at most.
    "BOOM_API__DEFAULT_MAX_TIME_MS": "5000",
    "BOOM_API__MAX_TIME_MS_CAP": "5000",
    # Small enough that whole collections overflow it, as production ones would.
    "BOOM_API__MAX_ANSWER_BYTES": "200000",
}
#: The Extended JSON tags bson reads in filters, projections and pipelines.
TAGS = (
    "$oid", "$date", "$numberLong", "$numberInt", "$numberDouble", "$numberDecimal",
    "$binary", "$uuid", "$timestamp", "$regularExpression", "$minKey", "$maxKey",
    "$code", "$symbol", "$dbPointer", "$undefined",
)  # fmt: skip


def _boom(*args: str) -> subprocess.CompletedProcess[str]:
    return boom(ENV, *args)


@pytest.fixture(scope="module")
def fuzz_db(services):
    client = pymongo.MongoClient(services.mongo.uri, serverSelectionTimeoutMS=5000)
    client.drop_database(FUZZ_DB)
    db = client[FUZZ_DB]
    ensure_indexes(db, ZTF)
    ingest_packets(db, ZTF, [read_packet(p) for p in packet_paths("kowalski")], "fuzz")
    load_catalog(db, "gcvs", DATA / "catalogs" / "gcvs.parquet", LoadOptions(limit=GCVS_ROWS))
    yield db
    client.drop_database(FUZZ_DB)
    client.close()


@pytest.fixture(scope="module")
def fuzz_url(fuzz_db, tmp_path_factory):
    # An admin reads every collection, so no route stops at a permission check.
    added = _boom("users", "add", USER, "--admin", "--password", PASSWORD)
    assert added.returncode == 0, added.stderr
    log = tmp_path_factory.mktemp("api-fuzz") / "boom-api.log"
    try:
        with running_api(ENV, PORT, log) as url:
            yield url
    finally:
        # A 500's traceback is in the server's log alone: show its errors with the report.
        errors = [line for line in log.read_text().splitlines() if "Error" in line]
        sys.stderr.write("\n".join(errors[-50:]))


@pytest.fixture(scope="module")
def token(fuzz_url) -> str:
    answer = httpx.post(fuzz_url + "/auth", data={"username": USER, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


@pytest.fixture(scope="module")
def auth(token) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _config(url: str, real: dict[str, list]) -> schemathesis.Config:
    """Return the fuzz pass's settings: which server, which checks, which real names."""
    binding = {"probability": REAL_NAME_PROBABILITY}
    return schemathesis.Config.from_dict(
        {
            "base-url": url,
            "request-timeout": 60,
            "dictionaries": {name: {"values": values} for name, values in real.items()},
            "parameters": {
                "body.catalog_name": {"dictionary": "catalogs", **binding},
                "path.catalog_name": {"dictionary": "catalogs", **binding},
                "path.survey": {"dictionary": "surveys", **binding},
                "query.survey": {"dictionary": "surveys", **binding},
                "body.survey": {"dictionary": "surveys", **binding},
                "query.candid": {"dictionary": "candids", **binding},
                "body.candids[*]": {"dictionary": "candids", **binding},
                "query.objectId": {"dictionary": "objects", **binding},
            },
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        }
    )


@pytest.fixture(scope="module")
def api_schema(fuzz_url, fuzz_db):
    real = {
        "catalogs": ["ZTF_alerts", "ZTF_alerts_aux", "ZTF_alerts_cutouts", "gcvs", "catalogs_meta"],
        "surveys": ["ZTF", "ztf"],
        "candids": [int(a["_id"]) for a in fuzz_db[ZTF.alerts].find({}, {"_id": 1}).limit(10)],
        "objects": fuzz_db[ZTF.alerts].distinct("objectId")[:10],
    }
    return schemathesis.openapi.from_url(fuzz_url + "/openapi.json", config=_config(fuzz_url, real))


def _fuzz(operation, mode: GenerationMode, headers: dict[str, str]) -> int:
    """Send up to ``MAX_EXAMPLES`` generated requests of one kind to one operation.

    Returns how many were sent; raises the checks' failures. Hypothesis is
    derandomized (its seed derives from the test), so every run sends the same.
    """
    sent = 0

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(mode))
    def send(case) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(headers=headers)

    try:
        send()
    except hypothesis.errors.Unsatisfiable:
        # Nothing about the operation can be made invalid (GET / takes no input).
        assert mode is GenerationMode.NEGATIVE, f"no valid request to {operation.label}"
    return sent


def test_no_operation_fails_on_the_server(api_schema, auth):
    # Given every operation the running server describes
    operations = [result.ok() for result in api_schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /queries/find", "POST /queries/pipeline", "GET /catalogs"} <= labels
    # When each is sent generated requests, valid and invalid, with a valid token
    failures: dict[str, BaseException] = {}
    sent: dict[str, int] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            name = f"{operation.label} ({mode.value})"
            try:
                sent[name] = _fuzz(operation, mode, auth)
            # Collected, not raised, so one failing operation does not hide the others'.
            except (Exception, BaseExceptionGroup) as e:
                failures[name] = e
    print(f"{sum(sent.values())} requests to {len(operations)} operations: {sent}")
    # Then no answer is a 5xx, and each conforms to the description
    assert not failures, "\n\n".join(f"{name}: {e}" for name, e in failures.items())
    assert all(sent[f"{label} (positive)"] > 0 for label in labels)


# Extended JSON tags are where the fuzz pass above cannot reach (it never writes "$date"):
# a second, narrower fuzz sends each tag with arbitrary JSON inside.
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@hypothesis.settings(max_examples=80, derandomize=True, deadline=None, database=None)
@hypothesis.given(tag=st.sampled_from(TAGS), value=_JSON)
def test_extended_json_tags_never_fail_on_the_server(fuzz_url, auth, tag, value):
    body = {"catalog_name": "ZTF_alerts", "filter": {"candid": {tag: value}}}
    answer = httpx.post(fuzz_url + "/queries/find", json=body, headers=auth, timeout=30)
    assert answer.status_code < 500, answer.text
    assert "message" in answer.json()


# --- regressions: each 500 found, replayed ----------------------------------------------


def _post(url: str, path: str, body: object, auth: dict[str, str]) -> httpx.Response:
    return httpx.post(url + path, json=body, headers=auth, timeout=30)


def test_malformed_extended_json_is_400_quoting_the_value(fuzz_url, auth):
    # Given tagged values that hold no date, ObjectId, number or binary
    for path, body in (
        ("/queries/find", {"catalog_name": "gcvs", "filter": {"_id": {"$oid": "nothex"}}}),
        ("/queries/count", {"catalog_name": "gcvs", "filter": {"t": {"$date": "garbage"}}}),
        ("/queries/find", {"catalog_name": "gcvs", "projection": {"a": {"$numberLong": "x"}}}),
        ("/queries/pipeline", {"catalog_name": "gcvs", "pipeline": [{"$match": {"$binary": 5}}]}),
        ("/queries/find", {"catalog_name": "gcvs", "filter": {"t": {"$date": 1e300}}}),
    ):
        # When they are queried, Then the user is told which value is malformed, and why
        answer = _post(fuzz_url, path, body, auth)
        assert answer.status_code == 400, (path, answer.text)
        message = answer.json()["message"]
        assert message.startswith("malformed Extended JSON value {") and ": " in message
    # And a well-formed one still works
    later = {"created_at": {"$lte": {"$date": "2100-01-01T00:00:00Z"}}}
    body = {"catalog_name": "ZTF_alerts", "filter": later}
    assert _post(fuzz_url, "/queries/count", body, auth).json()["data"] == 32


def _near(lon: float, lat: float, metres: float, **more: float) -> dict:
    geometry = {"type": "Point", "coordinates": [lon, lat]}
    near = {"$geometry": geometry, "$maxDistance": metres, **more}
    return {"catalog_name": "gcvs", "filter": {"coordinates.radec_geojson": {"$nearSphere": near}}}


def test_near_searches_off_the_sphere_or_with_bad_radii_are_400(fuzz_url, auth):
    # Given near searches the cone search cannot cover, Then each is a 400 saying why
    for body, reason in (
        (_near(0.0, 95.0, 100.0), "latitude in [-90, 90]"),
        (_near(200.0, 0.0, 100.0), "longitude in [-180, 180]"),
        (_near(0.0, 0.0, -100.0), "$maxDistance must be non-negative"),
        (_near(0.0, 0.0, 100.0, **{"$minDistance": -1.0}), "$minDistance must be non-negative"),
        (_near(0.0, 0.0, 1e30), "$maxDistance may be at most 20015114 m"),
    ):
        answer = _post(fuzz_url, "/queries/find", body, auth)
        assert answer.status_code == 400 and reason in answer.json()["message"], answer.text
    # And a radius of 0 (only documents at the very point) goes to the database as written
    answer = _post(fuzz_url, "/queries/find", _near(0.0, 0.0, 0.0), auth)
    assert answer.status_code == 200 and answer.json()["data"] == []


def test_sort_directions_sent_as_floats_sort(fuzz_url, auth, fuzz_db):
    # Given a sort written as JavaScript clients write it, with 1.0 and -1.0
    body = {"catalog_name": "ZTF_alerts", "projection": {"_id": 1}, "sort": {"candidate.jd": -1.0}}
    answer = _post(fuzz_url, "/queries/find", body, auth)
    # Then it sorts as -1 does, and a direction that is no number is still refused
    expected = [d["_id"] for d in fuzz_db[ZTF.alerts].find({}, {"_id": 1}).sort("candidate.jd", -1)]
    assert [d["_id"] for d in answer.json()["data"]] == expected
    refused = _post(fuzz_url, "/queries/find", {**body, "sort": {"candidate.jd": "up"}}, auth)
    assert refused.status_code == 400 and "sort" in refused.json()["message"]


def test_candids_beyond_int64_are_400(fuzz_url, auth):
    huge = 2**70
    got = httpx.get(fuzz_url + "/surveys/ZTF/cutouts", params={"candid": huge}, headers=auth)
    assert got.status_code == 400 and "candid" in got.json()["message"]
    batch = _post(fuzz_url, "/surveys/ZTF/cutouts", {"candids": [1, huge]}, auth)
    assert batch.status_code == 400 and "candids" in batch.json()["message"]


def test_lone_surrogates_are_400(fuzz_url, auth, fuzz_db):
    # JSON's escapes can carry a lone surrogate, which no database string can hold;
    # json.dumps writes it as the escape "\ud800", as a client sending it would.
    def raw(path: str, body: dict, headers: dict[str, str]) -> httpx.Response:
        content = json.dumps(body).encode()
        type_ = {"Content-Type": "application/json"}
        return httpx.post(fuzz_url + path, content=content, headers={**headers, **type_})

    for path, body in (
        ("/queries/find", {"catalog_name": "gcvs", "filter": {"VarType": "\ud800"}}),
        ("/queries/count", {"catalog_name": "gcvs", "filter": {"\ud800": 1}}),
        ("/queries/pipeline", {"catalog_name": "gcvs", "pipeline": [{"$match": {"a": "\ud800"}}]}),
    ):
        answer = raw(path, body, auth)
        assert answer.status_code == 400 and "cannot be encoded" in answer.json()["message"]
    login = raw("/auth", {"username": USER, "password": "\ud800"}, {})
    assert login.status_code == 400 and "Unicode" in login.json()["message"]
    # The filter routes store and query the user's text too: a 400 there as well, and
    # nothing stored
    pipeline = [{"$match": {"candidate.drb": {"$gt": 0.5}}}, {"$project": {"objectId": 1}}]
    ztf = {"ZTF": [1]}
    for path, body, says in (
        (
            "/filters/test",
            {"pipeline": pipeline, "permissions": ztf, "object_ids": ["\ud800"]},
            "surrogate",
        ),
        ("/filters", {"name": "\ud800", "pipeline": pipeline, "permissions": ztf}, "unicode"),
    ):
        answer = raw(path, body, auth)
        assert answer.status_code == 400 and says in answer.json()["message"], answer.text
    assert fuzz_db.filters.count_documents({}) == 0
