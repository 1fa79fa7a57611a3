"""The dashboard's thumbnails of the latest passes, in headless Chromium, on real alerts.

Real ZTF alerts (an object with forced photometry, and one whose difference stamp
fails its CRC) are ingested and run through two real filters in two batches; the
overview, opened in Debian's Chromium, must show each filter's newest passes as
thumbnails the browser really decoded, each linking to the full picture.

The module has Valkey database 9 and MongoDB database ``boom_test_dashboard_pictures``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pymongo
import pytest
import redis
from PIL import Image

from boom_tasks.filter.config import FilterSettings
from boom_tasks.filter.run import run_filters
from boom_tasks.filter.store import add_filter, load_active, set_active
from boom_tasks.ingest.indexes import ensure_indexes
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.pictures.figure import DPI, SIZE_IN, THUMB_SIZE_IN
from boom_tasks.surveys import ZTF
from tests.alerts import ZTF_DATA, packet_paths, read_packet
from tests.conftest import ROOT, TEST_CONFIG
from tests.faults.procs import wait_for
from tests.test_dashboard import CHROMIUM, CHROMIUM_ARGS, _stop

pytestmark = pytest.mark.services

BIN = Path(sys.executable).parent
VALKEY_DB = 9
DATABASE = "boom_test_dashboard_pictures"
#: Offset of this module's dashboard port from the test configuration's Valkey port.
PORT_OFFSET = -298  # 34379 - 298 = 34081 with /tmp/boom-pictures.yaml
CORRUPT = ZTF_DATA / "ampel-ztf" / "516476004815015005.avro"
EVERYTHING = [{"$match": {"candidate.magpsf": {"$gt": 0}}}, {"$project": {"objectId": 1}}]
BRIGHT = [{"$match": {"candidate.magpsf": {"$lt": 18.0}}}, {"$project": {"objectId": 1}}]


def _size(size_in: tuple[float, float]) -> tuple[int, int]:
    return round(size_in[0] * DPI), round(size_in[1] * DPI)


@pytest.fixture(scope="module")
def stack(services, tmp_path_factory):
    """Alerts, two filters' passes in three batches, and a running boom-dashboard."""
    client = pymongo.MongoClient(services.mongo.uri)
    client.drop_database(DATABASE)
    db = client[DATABASE]
    ensure_indexes(db, ZTF)
    packets = [p for p in packet_paths("kowalski") if p.name.startswith("20231012_")]
    first = ingest_packets(db, ZTF, [read_packet(p) for p in packets[:10]], "one")
    second = ingest_packets(db, ZTF, [read_packet(p) for p in packets[10:]], "two")
    third = ingest_packets(db, ZTF, [CORRUPT.read_bytes()], "three")
    ids = {}
    for name, pipeline in (("everything", EVERYTHING), ("bright", BRIGHT)):
        ids[name] = add_filter(
            db, name=name, survey="ZTF", pipeline=json.dumps(pipeline), programids=[1, 2, 3],
            aux_collection=ZTF.aux,
        )  # fmt: skip
        set_active(db, ids[name], True)
    start = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    for i, batch in enumerate((first, second, third)):
        when = start + dt.timedelta(minutes=i)
        run_filters(db, ZTF, load_active(db, "ZTF"), batch.candids, FilterSettings(), now=when)
    port = services.valkey.port + PORT_OFFSET
    env = {
        **os.environ,
        "BOOM_CONFIG": str(TEST_CONFIG),
        "BOOM_VALKEY__DB": str(VALKEY_DB),
        "BOOM_MONGO__DATABASE": DATABASE,
        "BOOM_DASHBOARD__REFRESH_S": "0",
    }
    redis.Redis(host=services.valkey.host, port=services.valkey.port, db=VALKEY_DB).flushdb()
    log = tmp_path_factory.mktemp("dashboard") / "dashboard.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "boom-dashboard"), "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("the dashboard", lambda: _answers(url, proc, log), timeout=60, every=0.3)
        yield {"url": url, "db": db, "filters": ids}
    finally:
        _stop(proc)
        client.drop_database(DATABASE)


def _answers(url: str, proc: subprocess.Popen, log: Path) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"boom-dashboard exited:\n{log.read_text()}")
    try:
        return httpx.get(url + "/metrics", timeout=5).status_code == 200
    except httpx.HTTPError:
        time.sleep(0.2)
        return False


def _newest(db, filter_id: str, n: int = 4) -> list[int]:
    """The filter's newest passes, read independently: latest batch first, then by candid."""
    passes = list(db[ZTF.filter_passes].find({"filter_id": filter_id}))
    passes.sort(key=lambda p: (p["passed_at"], p["candid"]), reverse=True)
    return [p["candid"] for p in passes[:n]]


def test_overview_shows_each_filters_latest_passes_as_thumbnails(stack, tmp_path):
    from playwright.sync_api import sync_playwright

    url, db = stack["url"], stack["db"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # When the operator opens the overview
            page.goto(url + "/")
            page.wait_for_load_state("networkidle", timeout=120_000)
            page.screenshot(path=str(tmp_path / "thumbnails.png"), full_page=True)
            for name, filter_id in stack["filters"].items():
                # Then each filter's newest passes are shown, newest first
                cell = page.locator(f'td[data-thumbnails="{filter_id}"]')
                links = cell.locator("a")
                shown = [
                    int(links.nth(i).get_attribute("data-picture")) for i in range(links.count())
                ]
                assert shown == _newest(db, filter_id), name
                # And each thumbnail is a picture the browser decoded, at the thumbnail's size
                sizes = cell.locator("img").evaluate_all(
                    "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
                )
                assert sizes == [[True, *_size(THUMB_SIZE_IN)]] * len(shown), name
            # And the corrupt alert (the newest batch) is among them
            corrupt = db[ZTF.alerts].find_one({"objectId": "ZTF18aawbmjg"})["_id"]
            everything = page.locator(f'td[data-thumbnails="{stack["filters"]["everything"]}"]')
            assert everything.locator(f'a[data-picture="{corrupt}"]').count() == 1
            # When a thumbnail is clicked, Then the full picture opens
            with page.expect_response(lambda r: r.url.endswith(f"/{corrupt}.png")) as answer:
                everything.locator(f'a[data-picture="{corrupt}"]').click()
            png = answer.value.body()
            assert answer.value.headers["content-type"] == "image/png"
            assert Image.open(io.BytesIO(png)).size == _size(SIZE_IN)
        finally:
            browser.close()


def test_picture_route_refuses_unknown_alerts_and_surveys(stack):
    url = stack["url"]
    assert httpx.get(f"{url}/pictures/ZTF/1.png", timeout=30).status_code == 404
    assert httpx.get(f"{url}/pictures/HST/1.png", timeout=30).status_code == 404
    assert httpx.get(f"{url}/pictures/ZTF/1.png?size=huge", timeout=30).status_code == 422
