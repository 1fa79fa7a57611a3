"""The whole chain on real services: Kafka in → … → filters → Avro messages on Kafka out."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fastavro
import pytest

from boom_tasks.filter.store import add_filter, set_active
from boom_tasks.output.schema import decode
from boom_tasks.replay.producer import produce_packets
from boom_tasks.services.kafka import ensure_topic
from boom_tasks.surveys.ztf import ZTF
from tests.alerts import packet_paths, read_packet
from tests.chainrun import drained, read_topic
from tests.conftest import ROOT

pytestmark = pytest.mark.services

BIN = Path(sys.executable).parent

BRIGHT = [
    {"$match": {"candidate.magpsf": {"$lt": 18.5}, "candidate.isdiffpos": {"$in": ["t", "1"]}}},
    {"$project": {"objectId": 1, "annotations": {"mag": {"$round": ["$candidate.magpsf", 1]}}}},
]
HOSTED = [
    {"$match": {"classifications.acai_h": {"$gt": 0.5}}},
    {"$project": {"objectId": 1, "annotations": {"acai_h": "$classifications.acai_h"}}},
]


@pytest.fixture(scope="module")
def chain(services, tmp_path_factory):
    """Two active filters, and a worker publishing to this module's own results topic."""
    import pymongo

    topic = f"results-{os.getpid()}-{int(time.time())}"
    db = pymongo.MongoClient(services.mongo.uri)[services.mongo.database]
    for name in db.list_collection_names():
        db.drop_collection(name)
    ids = {}
    for name, pipeline in (("bright", BRIGHT), ("hosted", HOSTED)):
        ids[name] = add_filter(
            db,
            name=name,
            survey="ZTF",
            pipeline=json.dumps(pipeline),
            programids=[1],
            aux_collection=ZTF.aux,
        )
        set_active(db, ids[name], True)
    # The results topic exists before anyone listens (boom-monitor starts at its end)
    ensure_topic(services.kafka, topic)
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {
        **os.environ,
        "BOOM_OUTPUT__RESULTS_TOPIC": topic,
        "BOOM_OUTPUT__PER_FILTER_TOPICS": "true",
        "BOOM_OUTPUT__FILTER_TOPIC": topic + "-{filter}",
    }
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [str(BIN / "dramatiq"), "boom_tasks.actors", "--processes", "1", "--threads", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    yield db, topic, ids, log_path
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=60)


def _bridge_to_end(topic: str, group: str) -> None:
    env = {**os.environ, "BOOM_KAFKA__GROUP_ID": group}
    proc = subprocess.run(
        [str(BIN / "boom-bridge"), "ZTF", "--topic", topic, "--exit-on-eof"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr


def _expected(db, ids) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for a in db[ZTF.alerts].find({"candidate.programid": 1}):
        c, cl = a["candidate"], a.get("classifications", {})
        if c["magpsf"] < 18.5 and c["isdiffpos"] in ("t", "1"):
            out.setdefault(a["_id"], set()).add(ids["bright"])
        if cl.get("acai_h") is not None and cl["acai_h"] > 0.5:
            out.setdefault(a["_id"], set()).add(ids["hosted"])
    return out


def test_passing_alerts_are_published_once_as_avro_with_their_filters_and_times(
    chain, unique, tmp_path
):
    db, results, ids, log_path = chain
    # Given boom-monitor watching the results topic, and real alerts produced to a survey topic
    monitor = subprocess.Popen(
        [str(BIN / "boom-monitor"), results, "--interval", "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(3)  # it joins the topic before anything is published
    packets = [
        read_packet(p) for f in ("kowalski", "boom-402", "fink-20181129") for p in packet_paths(f)
    ]
    source = f"ztf-in-{unique}"
    produce_packets(topic=source, packets=iter(packets), settings=None, progress=False)
    # When the bridge runs it through the workers
    _bridge_to_end(source, f"g1-{unique}")
    drained([ZTF], 300)
    expected = _expected(db, ids)
    assert len(expected) > 10, "the filters pass too few real alerts for a meaningful check"
    # Then every passing alert is on the results topic once, listing exactly its filters
    raw = read_topic(results, len(expected))
    messages = [decode(m) for m in raw]
    assert sorted(m["candid"] for m in messages) == sorted(expected), log_path.read_text()[-3000:]
    for data, m in zip(raw, messages, strict=True):
        assert next(fastavro.reader(io.BytesIO(data)))["candid"] == m["candid"]  # plain Avro
        assert {f["filter_id"] for f in m["filters"]} == expected[m["candid"]]
        alert = db[ZTF.alerts].find_one({"_id": m["candid"]})
        cut = db[ZTF.cutouts].find_one({"_id": m["candid"]})
        assert (m["objectId"], m["jd"]) == (alert["objectId"], alert["candidate"]["jd"])
        assert (m["ra"], m["dec"]) == (alert["candidate"]["ra"], alert["candidate"]["dec"])
        assert m["cutoutDifference"] == cut["cutoutDifference"]
        assert m["classifications"]["anomaly_score"] == alert["classifications"]["anomaly_score"]
        t = m["times"]
        stamps = [
            t[s]
            for s in ("received", "ingested", "crossmatched", "enriched", "filtered", "published")
        ]
        assert None not in stamps and stamps == sorted(stamps)
        for f in m["filters"]:
            if f["filter_id"] == ids["bright"]:
                assert json.loads(f["annotations"]) == {
                    "mag": round(alert["candidate"]["magpsf"], 1)
                }
    # And each filter's own topic holds exactly the alerts that passed it
    bright = {c for c, f in expected.items() if ids["bright"] in f}
    assert sorted(
        decode(m)["candid"] for m in read_topic(f"{results}-bright", len(bright))
    ) == sorted(bright)
    # And boom-monitor counted them per filter, boom-print prints them and writes their stamps
    time.sleep(2)
    monitor.send_signal(signal.SIGINT)
    report = monitor.communicate(timeout=30)[0]
    totals = [line for line in report.splitlines() if line.startswith("[")]
    assert totals and f"total {len(messages)} (" in totals[-1], report
    assert f"bright ({ids['bright']})" in report and "latency published - received" in report
    stamps = tmp_path / "stamps"
    printed = subprocess.run(
        [
            str(BIN / "boom-print"),
            results,
            "--from-beginning",
            "--max",
            str(len(messages)),
            "--stamps",
            str(stamps),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert printed.returncode == 0, printed.stderr
    assert all(f"candid {m['candid']}" in printed.stdout for m in messages)
    fits = list(stamps.glob("*_difference.fits"))
    assert len(fits) == sum(1 for m in messages if m["cutoutDifference"])
    # When the same alerts are replayed by a fresh consumer group
    _bridge_to_end(source, f"g2-{unique}")
    drained([ZTF], 300)
    # Then nothing is published twice
    assert len(read_topic(results, len(raw))) == len(raw)
    assert db[ZTF.publications].count_documents({}) == sum(len(v) for v in expected.values())
