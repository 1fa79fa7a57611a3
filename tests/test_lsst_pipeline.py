"""Rubin alerts end to end on real services, beside ZTF in the same workers.

Kafka (Rubin's wire format) → ``boom-bridge LSST`` → ``dramatiq boom_tasks.actors``
→ ``LSST_alerts*`` → an LSST filter → Avro on the results topic; at the same time
``boom-bridge ZTF`` feeds ZTF alerts into the same workers.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import signal
import struct
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
from boom_tasks.surveys.lsst import LSST
from boom_tasks.surveys.ztf import ZTF
from tests.alerts import packet_paths, read_packet
from tests.chainrun import drained, read_topic
from tests.conftest import DATA, ROOT

pytestmark = pytest.mark.services

BIN = Path(sys.executable).parent
LSST_PACKETS = sorted((DATA / "lsst").rglob("*.avro"))

#: Positive difference detections at S/N > 10 (BOOM's derived snr_psf and isdiffpos).
POSITIVE = [
    {"$match": {"candidate.isdiffpos": True, "candidate.snr_psf": {"$gt": 10}}},
    {"$project": {"objectId": 1, "annotations": {"mag": {"$round": ["$candidate.magpsf", 2]}}}},
]

#: Packets no broker should accept: empty, an unknown schema id, a truncated real one.
BAD = [b"", b"\x00" + struct.pack(">I", 4242) + b"\x02\x04", None]


def _reference(packet: bytes) -> dict:
    """Decode a wire-format packet independently: the header by hand, the schema from files."""
    spec = importlib.util.find_spec("lsst.alert.packet")
    assert spec is not None and spec.submodule_search_locations
    sid = struct.unpack(">I", packet[1:5])[0]
    package = Path(next(iter(spec.submodule_search_locations)))
    root = package / "schema" / str(sid // 100) / str(sid % 100)
    parsed = fastavro.schema.load_schema(str(root / f"lsst.v{sid // 100}_{sid % 100}.alert.avsc"))
    return fastavro.schemaless_reader(io.BytesIO(packet[5:]), parsed)


@pytest.fixture(scope="module")
def chain(services, tmp_path_factory):
    """An active LSST filter and a worker publishing to this module's own results topics."""
    import pymongo

    prefix = f"lsst-e2e-{os.getpid()}-{int(time.time())}"
    db = pymongo.MongoClient(services.mongo.uri)[services.mongo.database]
    for name in db.list_collection_names():
        db.drop_collection(name)
    fid = add_filter(
        db,
        name="positive",
        survey="LSST",
        pipeline=json.dumps(POSITIVE),
        programids=[],
        aux_collection=LSST.aux,
    )
    set_active(db, fid, True)
    results = f"{prefix}-{{survey}}"
    for survey in ("LSST", "ZTF"):
        ensure_topic(services.kafka, results.format(survey=survey))
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {**os.environ, "BOOM_OUTPUT__RESULTS_TOPIC": results}
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [str(BIN / "dramatiq"), "boom_tasks.actors", "--processes", "1", "--threads", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    yield db, results.format(survey="LSST"), fid, log_path
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=60)


def _bridge(survey: str, topic: str, group: str) -> subprocess.Popen:
    env = {**os.environ, "BOOM_KAFKA__GROUP_ID": group}
    return subprocess.Popen(
        [str(BIN / "boom-bridge"), survey, "--topic", topic, "--exit-on-eof"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(*bridges: subprocess.Popen) -> None:
    for proc in bridges:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err


def _digest(db) -> str:
    """Hash every LSST document, in _id order: a replay must leave them all unchanged."""
    h = hashlib.sha256()
    for name in (LSST.alerts, LSST.aux, LSST.cutouts, LSST.filter_passes):
        for doc in db[name].find({}, sort=[("_id", 1)]):
            h.update(repr(sorted(doc.items())).encode())
    return h.hexdigest()


def test_lsst_and_ztf_run_through_the_same_workers(chain, unique):
    db, results, fid, log_path = chain
    # Given every real Rubin packet, three bad ones, and real ZTF packets on two topics
    packets = [p.read_bytes() for p in LSST_PACKETS]
    truncated = packets[0][: len(packets[0]) // 2]
    bad = [b if b is not None else truncated for b in BAD]
    lsst_topic, ztf_topic = f"lsst-in-{unique}", f"ztf-in-{unique}"
    produce_packets(None, lsst_topic, iter(packets + bad), progress=False)
    ztf = [read_packet(p) for p in packet_paths("kowalski")]
    produce_packets(None, ztf_topic, iter(ztf), progress=False)
    # When both bridges feed the same workers at once
    _finish(_bridge("LSST", lsst_topic, f"l1-{unique}"), _bridge("ZTF", ztf_topic, f"z1-{unique}"))
    drained([LSST, ZTF], 300)
    # Then every Rubin alert is stored once, with BOOM's ids and derived fields
    refs = {r["diaSource"]["diaSourceId"]: r for r in map(_reference, packets)}
    alerts = {a["_id"]: a for a in db[LSST.alerts].find()}
    assert sorted(alerts) == sorted(refs), log_path.read_text()[-3000:]
    for candid, ref in refs.items():
        a, source = alerts[candid], ref["diaSource"]
        dia_object = source.get("diaObjectId") or (ref.get("diaObject") or {}).get("diaObjectId")
        assert a["objectId"] == (str(dia_object) if dia_object else f"sso{a['ssObjectId']}")
        assert a["candidate"]["ra"] == source["ra"] and a["candidate"]["band"] == source["band"]
        assert a["properties"]["rock"] == (not dia_object)
        assert "enriched_at" in a
    assert sum(a["objectId"].startswith("sso") for a in alerts.values()) == 6
    objects = {a["objectId"] for a in alerts.values()}
    assert {d["_id"] for d in db[LSST.aux].find({}, {"_id": 1})} == objects
    assert db[LSST.cutouts].count_documents({}) == len(refs)
    # And the bad packets are quarantined with their reasons, the rest went on
    reasons = [q["reason"] for q in db[LSST.quarantine].find()]
    assert len(reasons) == 3 and any("4242" in r for r in reasons), reasons
    # And the ZTF alerts went through the same workers at the same time
    assert db[ZTF.alerts].count_documents({}) == len(ztf)
    # And the LSST filter passed exactly what an independent computation passes
    expected = {
        c
        for c, r in refs.items()
        if (f := r["diaSource"]["psfFlux"]) is not None
        and f > 0
        and f / r["diaSource"]["psfFluxErr"] > 10
    }
    assert expected, "the filter passes no real alert: the check would be vacuous"
    passes = {p["candid"] for p in db[LSST.filter_passes].find({"filter_id": fid})}
    assert passes == expected
    # And each pass is published once as Avro with its filter, readable by plain fastavro
    raw = read_topic(results, len(expected))
    messages = [decode(m) for m in raw]
    assert sorted(m["candid"] for m in messages) == sorted(expected)
    for data, m in zip(raw, messages, strict=True):
        assert next(fastavro.reader(io.BytesIO(data)))["candid"] == m["candid"]
        assert m["survey"] == "LSST" and [f["filter_id"] for f in m["filters"]] == [fid]
        assert m["objectId"] == alerts[m["candid"]]["objectId"]
    # When the same packets are replayed by a fresh consumer group
    before = _digest(db)
    _finish(_bridge("LSST", lsst_topic, f"l2-{unique}"))
    drained([LSST, ZTF], 300)
    # Then nothing changes and nothing is published twice
    assert _digest(db) == before
    assert len(read_topic(results, len(raw))) == len(raw)
