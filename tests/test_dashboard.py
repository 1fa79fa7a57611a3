"""The dashboard in headless Chromium, against a real worker on real services.

A scenario an operator meets: an ingest message whose batch is gone from Valkey is
dead-lettered by the worker. The dashboard, opened in Debian's Chromium, counts it
and shows why; the batch is restored; the operator requeues the message from the
page, the worker ingests, enriches, filters and publishes its alerts, and the page
and ``/metrics`` show the figures of that run. A second dead letter is deleted.

The module has Valkey database 8 and MongoDB database ``boom_test_dashboard`` to
itself, so every count it reads is its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pymongo
import pytest
import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from boom_tasks.filter.config import FilterSettings
from boom_tasks.filter.run import run_filters
from boom_tasks.filter.store import add_filter, load_active, set_active
from boom_tasks.surveys import ZTF
from tests.alerts import packet_paths, read_packet
from tests.conftest import ROOT, TEST_CONFIG
from tests.faults.procs import wait_for

BIN = Path(sys.executable).parent
VALKEY_DB = 8
DATABASE = "boom_test_dashboard"
PORT = 18081
CHROMIUM = "/usr/bin/chromium"
#: The flags Debian's Chromium needs here: no sandbox as root, no GPU, no network calls.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]
#: Real alerts of one night; each is its own object's first alert.
PACKETS = 12
EVERYTHING = [
    {"$match": {"candidate.magpsf": {"$gt": 0}}},
    {"$project": {"_id": 1, "objectId": 1}},
]


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def stack(services, tmp_path_factory):
    """Empty stores, an active pass-everything filter, a worker and the dashboard."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Debian's chromium is required (apt-get install chromium)", pytrace=False)
    valkey = redis.Redis(host=services.valkey.host, port=services.valkey.port, db=VALKEY_DB)
    valkey.flushdb()
    client = pymongo.MongoClient(services.mongo.uri)
    client.drop_database(DATABASE)
    db = client[DATABASE]
    fid = add_filter(
        db,
        name="everything",
        survey="ZTF",
        pipeline=json.dumps(EVERYTHING),
        programids=[1, 2, 3],
        aux_collection=ZTF.aux,
    )
    set_active(db, fid, True)
    env = {
        **os.environ,
        "BOOM_CONFIG": str(TEST_CONFIG),
        "BOOM_VALKEY__DB": str(VALKEY_DB),
        "BOOM_MONGO__DATABASE": DATABASE,
        "BOOM_OUTPUT__RESULTS_TOPIC": f"dashboard-{uuid.uuid4().hex[:10]}",
        "BOOM_DASHBOARD__REFRESH_S": "0",
    }
    logs = tmp_path_factory.mktemp("dashboard")
    procs = []
    for name, cmd in (
        ("worker", ["dramatiq", "boom_tasks.actors", "--processes", "1", "--threads", "2"]),
        ("dashboard", ["boom-dashboard", "--port", str(PORT)]),
    ):
        with open(logs / f"{name}.log", "w") as log:
            procs.append(
                subprocess.Popen(
                    [str(BIN / cmd[0]), *cmd[1:]],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    url = f"http://127.0.0.1:{PORT}"
    wait_for("the dashboard", lambda: _answers(url), timeout=60, every=0.3)
    broker = RedisBroker(
        url=f"redis://{services.valkey.host}:{services.valkey.port}/{VALKEY_DB}",
        namespace="dramatiq",
    )
    yield {"url": url, "valkey": valkey, "db": db, "broker": broker, "filter": fid, "logs": logs}
    broker.close()
    for proc in procs:
        _stop(proc)
    valkey.flushdb()
    client.drop_database(DATABASE)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def browser(stack):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _send_ingest(broker: RedisBroker, batch_key: str, count: int) -> Message:
    """Send the bridge's message for a batch, as ``boom-bridge`` does."""
    message = Message(
        queue_name="ztf_ingest",
        actor_name="ztf_ingest",
        args=(batch_key, count, time.time()),
        kwargs={},
        options={},
    )
    return broker.enqueue(message)


def _cell(page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def _dead_count(valkey) -> int:
    return int(valkey.zcard("dramatiq:ztf_ingest.XQ"))


def test_a_dead_letter_is_seen_requeued_from_the_page_and_processed(stack, browser, tmp_path):
    valkey, db, url = stack["valkey"], stack["db"], stack["url"]
    packets = [read_packet(p) for p in packet_paths("fink-20181129")[:PACKETS]]
    # Given an ingest message whose batch is not in Valkey: the worker dead-letters it
    batch_key = f"boom:ztf:batch:dashboard-{uuid.uuid4().hex}"
    _send_ingest(stack["broker"], batch_key, len(packets))
    wait_for("the dead letter", lambda: _dead_count(valkey) == 1, timeout=120.0, every=0.3)
    page = browser.new_page()
    # When the operator opens the dashboard
    page.goto(url + "/")
    page.screenshot(path=str(tmp_path / "overview-dead.png"), full_page=True)
    # Then the ingest queue shows one dead letter, and nothing else waiting
    assert _cell(page, 'td[data-queue="ztf_ingest"][data-state="dead"]') == "1"
    for state in ("ready", "in_flight", "delayed"):
        assert _cell(page, f'td[data-queue="ztf_ingest"][data-state="{state}"]') == "0"
    # And the queue's page says why it died (the exception the worker stored)
    page.click('a[href="/queues/ztf_ingest"]')
    page.screenshot(path=str(tmp_path / "queue-dead.png"), full_page=True)
    error = _cell(page, "td.err")
    assert "BatchVanished" in error and batch_key in error and "replay" in error
    assert batch_key in _cell(page, "td code")
    # When the batch is restored and the operator clicks "requeue"
    valkey.rpush(batch_key, *packets)
    page.click("button[data-requeue]")
    # Then the page confirms, the dead letter is gone, and the worker runs the whole chain
    assert "requeued" in _cell(page, "p.flash")
    assert _cell(page, 'td[data-queue="ztf_ingest"][data-state="dead"]') == "0"
    wait_for(
        "the alerts' publication",
        lambda: db[ZTF.publications].count_documents({}) == PACKETS,
        timeout=120.0,
        every=0.3,
    )
    assert db[ZTF.alerts].count_documents({}) == PACKETS
    wait_for(
        "the output stage's count", lambda: _published(valkey) == PACKETS, timeout=120.0, every=0.3
    )
    page.goto(url + "/")
    page.screenshot(path=str(tmp_path / "overview-processed.png"), full_page=True)
    _check_processed_overview(page, stack["filter"])
    _check_metrics(httpx.get(url + "/metrics", timeout=10).text)
    # And the filter's passes were counted once: the same batch again adds no new pass
    again, _ = run_filters(
        db, ZTF, load_active(db, "ZTF"), list(db[ZTF.alerts].distinct("_id")), FilterSettings()
    )
    assert [o.new_passes for o in again] == [0] and len(again[0].passes) == PACKETS


def _published(valkey) -> int:
    return int(valkey.hget("boom:stats:ZTF:published:total", "n") or 0)


def _check_processed_overview(page, filter_id: str) -> None:
    """Every stage handled the batch; the filter's passes and the latency are shown."""
    assert _cell(page, 'td[data-queue="ztf_ingest"][data-state="dead"]') == "0"
    for stage in ("ingested", "crossmatched", "enriched", "filtered", "published"):
        ztf_stage = f'td[data-survey="ZTF"][data-stage="{stage}"]'
        assert _cell(page, f'{ztf_stage}[data-count="window"]') == str(PACKETS)
    assert _cell(page, f'td[data-filter="{filter_id}"][data-passes="window"]') == str(PACKETS)
    row = page.locator("tr", has=page.locator('td[data-survey="ZTF"][data-stage="published"]'))
    p50 = row.locator("td").nth(4).inner_text()
    assert p50.endswith((" s", " min")), p50
    assert _cell(page, '[data-quarantined="ZTF"]') == "0"


#: The operators' Grafana board and the Prometheus and Grafana files that feed it.
GRAFANA = ROOT / "ops" / "grafana"
PROMETHEUS = ROOT / "ops" / "prometheus" / "prometheus.yml"
#: Sample names Prometheus derives from each exposed metric type.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _exposed_series(text: str) -> set[str]:
    """Return every series name a Prometheus scrape of ``text`` holds (from its TYPE lines)."""
    out = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            # (the exposition format may already name a counter with its _total)
            name = name.removesuffix("_total") if kind == "counter" else name
            out |= {name + suffix for suffix in SUFFIXES.get(kind, ("",))}
    return out


def _check_grafana_board(text: str) -> None:
    """Every panel of the board queries series that /metrics really exposes."""
    import re

    import yaml

    board = json.loads((GRAFANA / "dashboards" / "boom-tasks.json").read_text())
    datasource = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )["datasources"][0]
    exposed = _exposed_series(text)
    assert len(board["panels"]) >= 8
    for panel in board["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"], panel["title"]
            names = set(re.findall(r"\bboom_[a-z_]+", target["expr"]))
            assert names and names <= exposed, (panel["title"], names - exposed)
    # And Prometheus scrapes the dashboard's /metrics where docker-compose serves it
    scrape = yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics"
    assert scrape["static_configs"][0]["targets"] == ["dashboard:8081"]


def _check_metrics(text: str) -> None:
    _check_grafana_board(text)
    lines = set(text.splitlines())
    assert 'boom_queue_messages{queue="ztf_ingest",state="dead"} 0.0' in lines
    assert f'boom_stage_alerts_total{{stage="published",survey="ZTF"}} {PACKETS:.1f}' in lines
    assert (
        f'boom_stage_latency_seconds_count{{stage="ingested",survey="ZTF"}} {PACKETS:.1f}' in lines
    )
    assert any(
        line.startswith('boom_filter_passes_total{filter="everything"')
        and line.endswith(f" {PACKETS:.1f}")
        for line in lines
    )


def test_a_dead_letter_deleted_from_the_page_is_gone(stack, browser):
    valkey = stack["valkey"]
    message = _send_ingest(stack["broker"], f"boom:ztf:batch:lost-{uuid.uuid4().hex}", 3)
    wait_for("the dead letter", lambda: _dead_count(valkey) == 1, timeout=120.0, every=0.3)
    page = browser.new_page()
    page.goto(stack["url"] + "/queues/ztf_ingest")
    redis_id = message.options["redis_message_id"]
    page.click(f'button[data-delete="{redis_id}"]')
    assert "deleted" in _cell(page, "p.flash")
    assert _cell(page, 'td[data-queue="ztf_ingest"][data-state="dead"]') == "0"
    assert _dead_count(valkey) == 0
    assert valkey.hget("dramatiq:ztf_ingest.XQ.msgs", redis_id) is None


def test_an_unknown_queue_is_404_and_a_cross_site_post_is_refused(stack):
    assert httpx.get(stack["url"] + "/queues/nope", timeout=10).status_code == 404
    answer = httpx.post(
        stack["url"] + "/queues/ztf_ingest/dead/requeue-all",
        headers={"Origin": "https://evil.example"},
        timeout=10,
    )
    assert answer.status_code == 403


def test_with_require_login_only_admin_accounts_get_in(stack, services):
    from fastapi.testclient import TestClient

    from boom_tasks.api.users import add_user
    from boom_tasks.dashboard.app import create_app

    db = stack["db"]
    add_user(db, "operator", "op password", admin=True, replace=True)
    add_user(db, "astronomer", "astro password", replace=True)
    settings = services.model_copy(
        update={
            "mongo": services.mongo.model_copy(update={"database": DATABASE}),
            "valkey": services.valkey.model_copy(update={"db": VALKEY_DB}),
            "dashboard": services.dashboard.model_copy(update={"require_login": True}),
        }
    )
    with TestClient(create_app(settings)) as client:
        anonymous = client.get("/")
        assert anonymous.status_code == 401 and "Basic" in anonymous.headers["www-authenticate"]
        assert client.get("/metrics", auth=("astronomer", "astro password")).status_code == 401
        assert client.get("/", auth=("operator", "wrong")).status_code == 401
        admitted = client.get("/", auth=("operator", "op password"))
        assert admitted.status_code == 200 and 'data-queue="ztf_ingest"' in admitted.text
