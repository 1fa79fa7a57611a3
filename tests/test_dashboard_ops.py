"""The dashboard's replays, the replay queues in the monitor, and the workers' costs.

Against real Valkey, MongoDB and a real Dramatiq worker: a replay run recorded by
the replays code is listed on the overview, has its own page and is counted by
state in ``/metrics``; messages waiting on ``ztf_replay`` are counted like any
stage's; a worker that ingests real alerts charges its CPU seconds and MongoDB
commands to each stage, and the counters grow with the next batch.

The dashboard runs in this process (FastAPI's test client). The module has Valkey
database 12 and MongoDB database ``boom_test_dashops`` to itself.
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

import pymongo
import pytest
import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from fastapi.testclient import TestClient

from boom_tasks.batches import store_batch
from boom_tasks.dashboard.app import create_app
from boom_tasks.filter.store import add_filter, set_active
from boom_tasks.monitor.pipeline import chain_queues, pipeline_queues
from boom_tasks.replays import store
from boom_tasks.services.mongo import get_db
from boom_tasks.settings import load_settings
from boom_tasks.surveys import LSST, SURVEYS, ZTF
from tests.alerts import packet_paths, read_packet
from tests.conftest import ROOT, TEST_CONFIG
from tests.faults.procs import wait_for

BIN = Path(sys.executable).parent
VALKEY_DB = 12
DATABASE = "boom_test_dashops"
EVERYTHING = [
    {"$match": {"candidate.magpsf": {"$gt": 0}}},
    {"$project": {"_id": 1, "objectId": 1}},
]
ENV = {
    "BOOM_VALKEY__DB": str(VALKEY_DB),
    "BOOM_MONGO__DATABASE": DATABASE,
    "BOOM_MONGO__COMMAND_MONITORING": "true",
    "BOOM_DASHBOARD__REFRESH_S": "0",
}


@pytest.fixture(scope="module")
def dash(services):
    """Empty stores and the dashboard app on them."""
    settings = load_settings(TEST_CONFIG, {**os.environ, **ENV})
    valkey = redis.Redis(host=services.valkey.host, port=services.valkey.port, db=VALKEY_DB)
    valkey.flushdb()
    client = pymongo.MongoClient(services.mongo.uri)
    client.drop_database(DATABASE)
    broker = RedisBroker(
        url=f"redis://{services.valkey.host}:{services.valkey.port}/{VALKEY_DB}",
        namespace="dramatiq",
    )
    with TestClient(create_app(settings)) as http:
        yield {
            "settings": settings,
            "valkey": valkey,
            "db": client[DATABASE],
            "http": http,
            "broker": broker,
        }
    broker.close()
    valkey.flushdb()
    client.drop_database(DATABASE)


def _sample(metrics: str, name: str, **labels: str) -> float | None:
    """Return the value of the sample ``name{labels}`` in a scrape, or None."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in metrics.splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_the_queues_come_from_the_declarations(settings):
    # Given the registered surveys, When the monitor lists their queues
    queues = pipeline_queues(SURVEYS.values(), settings)
    # Then each survey has its chain's stages in order, science included, then its replays
    assert queues[:7] == [
        "ztf_ingest",
        "ztf_crossmatch",
        "ztf_ml",
        "ztf_science",
        "ztf_filter",
        "ztf_output",
        "ztf_replay",
    ]
    assert "lsst_replay" in queues and "lsst_science" in queues
    # And the night's drain waits on the chain's queues, not on replays
    assert "ztf_replay" not in chain_queues(ZTF) and "lsst_science" in chain_queues(LSST)


def test_a_replay_run_is_listed_with_its_state_and_progress(dash):
    db, http, settings = get_db(dash["settings"].mongo), dash["http"], dash["settings"]
    # Given a filter backfill recorded by the replays code, running, 3 of 10 alerts done
    params = {"filter_id": "f-demo", "fid": None, "nights": ["20181129"]}
    run_id = store.create_run(db, settings, "filter-backfill", "ZTF", params)
    store.update_run(db, settings, run_id, state="running", progress={"done": 3, "total": 10})
    # When the operator opens the overview
    page = http.get("/").text
    # Then the Replays section lists it, with its state and progress, linking to its page
    assert "<h2>Replays</h2>" in page
    assert f'href="/replays/{run_id}"' in page
    assert re.search(rf'data-replay="{run_id}" data-state>running<', page)
    assert re.search(rf'data-replay="{run_id}" data-progress>3/10<', page)
    assert "filter_id=f-demo" in page
    # And its own page shows the full record
    own = http.get(f"/replays/{run_id}")
    assert own.status_code == 200
    assert "&quot;filter_id&quot;: &quot;f-demo&quot;" in own.text and "running_at" in own.text
    assert http.get("/replays/no-such-run").status_code == 404
    # And /metrics counts it as running (every other state at 0)
    metrics = http.get("/metrics").text
    which = {"survey": "ZTF", "kind": "filter-backfill"}
    assert _sample(metrics, "boom_replay_runs", state="running", **which) == 1.0
    assert _sample(metrics, "boom_replay_runs", state="done", **which) == 0.0
    # When it finishes, Then the gauge moves to done and the list says so
    store.update_run(db, settings, run_id, state="done", progress={"done": 10, "total": 10})
    metrics = http.get("/metrics").text
    assert _sample(metrics, "boom_replay_runs", state="running", **which) == 0.0
    assert _sample(metrics, "boom_replay_runs", state="done", **which) == 1.0
    assert re.search(rf'data-replay="{run_id}" data-progress>10/10<', http.get("/").text)


def test_messages_on_a_replay_queue_are_counted(dash):
    valkey, http = dash["valkey"], dash["http"]
    # Given three replay slices waiting on ztf_replay (no worker runs yet)
    for i in range(3):
        dash["broker"].enqueue(
            Message(
                queue_name="ztf_replay",
                actor_name="ztf_replay",
                args=(f"run-{i}",),
                kwargs={},
                options={},
            )
        )
    try:
        # When the operator opens the overview and Prometheus scrapes
        page = http.get("/").text
        metrics = http.get("/metrics").text
        # Then the replay queue has its row with its depth, and its gauge
        assert 'href="/queues/ztf_replay"' in page
        assert 'data-queue="ztf_replay" data-state="ready">3<' in page
        assert _sample(metrics, "boom_queue_messages", queue="ztf_replay", state="ready") == 3.0
        assert _sample(metrics, "boom_queue_messages", queue="ztf_science", state="ready") == 0.0
        # And the queue's own page lists them
        assert http.get("/queues/ztf_replay").text.count("ztf_replay") >= 4
    finally:
        valkey.delete("dramatiq:ztf_replay", "dramatiq:ztf_replay.msgs")


@pytest.fixture
def worker(dash, tmp_path):
    """A real worker process on the module's stores, command monitoring on.

    An active pass-everything filter sends every alert on to the output stage.
    """
    fid = add_filter(
        dash["db"],
        name="everything",
        survey="ZTF",
        pipeline=json.dumps(EVERYTHING),
        programids=[1, 2, 3],
        aux_collection=ZTF.aux,
    )
    set_active(dash["db"], fid, True)
    env = {**os.environ, "BOOM_CONFIG": str(TEST_CONFIG), **ENV}
    with open(tmp_path / "worker.log", "w") as log:
        proc = subprocess.Popen(
            [str(BIN / "dramatiq"), "boom_tasks.actors", "--processes", "1", "--threads", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    yield proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _ingest(dash, packets: list[bytes]) -> None:
    """Store a batch and send its ingest message, as the bridge does."""
    ref = store_batch(dash["valkey"], ZTF, packets, 3600)
    message = Message(
        queue_name="ztf_ingest",
        actor_name="ztf_ingest",
        args=(ref.key, ref.count, time.time()),
        kwargs={},
        options={},
    )
    dash["broker"].enqueue(message)


def _published(valkey) -> int:
    return int(valkey.hget("boom:stats:ZTF:published:total", "n") or 0)


def _costs(http) -> dict[tuple[str, str], float]:
    metrics = http.get("/metrics").text
    out = {}
    for name in ("messages", "cpu_seconds", "db_commands", "db_seconds"):
        for stage in ("ingest", "crossmatch", "ml", "filter", "output"):
            value = _sample(metrics, f"boom_stage_{name}_total", survey="ZTF", stage=stage)
            out[(name, stage)] = -1.0 if value is None else value
    return out


def test_a_worker_charges_each_stage_its_cpu_and_database_commands(dash, worker):
    valkey, http = dash["valkey"], dash["http"]
    packets = [read_packet(p) for p in packet_paths("fink-20181129")[:10]]
    # Given a worker that has ingested, enriched, filtered and published one real batch
    _ingest(dash, packets[:5])
    wait_for(
        "the first batch's publication", lambda: _published(valkey) == 5, timeout=180, every=0.3
    )
    first = _costs(http)
    # Then every stage has counted a message, CPU seconds and MongoDB commands
    for stage in ("ingest", "crossmatch", "ml", "filter", "output"):
        assert first[("messages", stage)] >= 1.0, stage
        assert first[("cpu_seconds", stage)] > 0.0, stage
        assert first[("db_seconds", stage)] > 0.0, stage
    assert first[("db_commands", "ingest")] >= 1.0
    # When a second batch goes through
    _ingest(dash, packets[5:])
    wait_for(
        "the second batch's publication", lambda: _published(valkey) == 10, timeout=180, every=0.3
    )
    second = _costs(http)
    # Then the counters have grown, stage by stage
    for stage in ("ingest", "crossmatch", "ml", "filter", "output"):
        assert second[("messages", stage)] > first[("messages", stage)], stage
        assert second[("cpu_seconds", stage)] > first[("cpu_seconds", stage)], stage
        assert second[("db_commands", stage)] > first[("db_commands", stage)], stage
