"""API limits that protect the database: large cone covers, joins across databases.

The app runs in this process (FastAPI's test client) over the real MongoDB server,
with the alerts in one database and the catalogs in another, as
``mongo.catalog_database`` allows.
"""

from __future__ import annotations

import time

import pymongo
import pytest
from fastapi.testclient import TestClient

from boom_tasks.api.app import create_app
from boom_tasks.api.throttle import LoginThrottle, TooManyAttempts
from boom_tasks.api.users import add_user
from boom_tasks.catalogs.loader import LoadOptions, load_catalog
from boom_tasks.ingest.indexes import ensure_indexes
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.sky.healpix import cover_cells
from boom_tasks.surveys import ZTF
from tests.alerts import packet_paths, read_packet
from tests.conftest import DATA

ALERTS_DB = "boom_test_api_limits"
CATALOG_DB = "boom_test_api_limits_catalogs"


@pytest.fixture(scope="module")
def client(services):
    mongo = pymongo.MongoClient(services.mongo.uri)
    for name in (ALERTS_DB, CATALOG_DB):
        mongo.drop_database(name)
    alerts = mongo[ALERTS_DB]
    ensure_indexes(alerts, ZTF)
    ingest_packets(alerts, ZTF, [read_packet(p) for p in packet_paths("kowalski")], "limits")
    load_catalog(
        mongo[CATALOG_DB], "gcvs", DATA / "catalogs" / "gcvs.parquet", LoadOptions(limit=500)
    )
    add_user(alerts, "admin", "admin password", admin=True)
    settings = services.model_copy(
        update={
            "mongo": services.mongo.model_copy(
                update={"database": ALERTS_DB, "catalog_database": CATALOG_DB}
            ),
            "api": services.api.model_copy(update={"secret": "s" * 40}),
        }
    )
    with TestClient(create_app(settings)) as http:
        token = http.post("/auth", data={"username": "admin", "password": "admin password"})
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield http
    for name in (ALERTS_DB, CATALOG_DB):
        mongo.drop_database(name)
    mongo.close()


def test_cover_estimate_follows_the_cap_area():
    # Order 10 pixels are 0.003278 deg2: a 1-degree cone covers ~958 of them, 30 degrees
    # ~843,000; the estimate adds a ring of boundary pixels
    assert 958 < cover_cells(3600.0, 10) < 958 * 1.2
    assert 843_000 < cover_cells(30 * 3600.0, 10) < 843_000 * 1.05
    assert cover_cells([3600.0, 3600.0], 10) == pytest.approx(2 * cover_cells(3600.0, 10))


def test_a_cone_covering_too_many_cells_is_refused_at_once(client):
    body = {"catalog_name": "gcvs", "object_coordinates": {"a": [10.0, 20.0]}, "unit": "Degrees"}
    started = time.monotonic()
    answer = client.post("/queries/cone_search", json={**body, "radius": 30})
    assert answer.status_code == 400
    assert "HEALPix cells" in answer.json()["message"] and "100,000" in answer.json()["message"]
    assert time.monotonic() - started < 5  # refused before any query, not after minutes
    # And a cone within the limit is answered
    ok = client.post("/queries/cone_search", json={**body, "radius": 2})
    assert ok.status_code == 200 and isinstance(ok.json()["data"]["a"], list)


def test_a_join_into_a_catalog_of_another_database_is_400_not_silently_empty(client):
    lookup = {
        "$lookup": {"from": "gcvs", "localField": "objectId", "foreignField": "_id", "as": "v"}
    }
    answer = client.post(
        "/queries/pipeline", json={"catalog_name": "ZTF_alerts", "pipeline": [lookup]}
    )
    assert answer.status_code == 400
    message = answer.json()["message"]
    assert CATALOG_DB in message and ALERTS_DB in message and "own database" in message
    # A join within the alerts' database still runs
    aux = {
        "$lookup": {
            "from": "ZTF_alerts_aux",
            "localField": "objectId",
            "foreignField": "_id",
            "as": "aux",
        }
    }
    ok = client.post(
        "/queries/pipeline",
        json={"catalog_name": "ZTF_alerts", "pipeline": [aux, {"$limit": 2}]},
    )
    assert ok.status_code == 200
    assert all(len(d["aux"]) == 1 for d in ok.json()["data"]) and len(ok.json()["data"]) == 2


def test_the_login_throttle_forgets_failures_outside_its_window():
    throttle = LoginThrottle(max_failures=2, window_s=60)
    throttle.failed("eve", now=0.0)
    throttle.failed("eve", now=10.0)
    with pytest.raises(TooManyAttempts) as refused:
        throttle.check("eve", now=30.0)
    assert refused.value.headers == {"Retry-After": "31"}
    throttle.check("eve", now=60.5)  # the first failure has left the window
    throttle.check("alice", now=30.0)  # other accounts are not affected
    throttle.failed("bob", now=0.0)
    throttle.failed("bob", now=1.0)
    throttle.succeeded("bob")
    throttle.check("bob", now=2.0)


def test_repeated_wrong_passwords_are_answered_429(client):
    add_user(client.app.state.boom.db(), "target", "the right one")
    limit = client.app.state.boom.settings.api.login_max_failures
    for _ in range(limit):
        wrong = client.post("/auth", data={"username": "target", "password": "guess"})
        assert wrong.status_code == 401
    refused = client.post("/auth", data={"username": "target", "password": "the right one"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "too many failed logins" in refused.json()["message"]
    # Another account still logs in
    ok = client.post("/auth", data={"username": "admin", "password": "admin password"})
    assert ok.status_code == 200
