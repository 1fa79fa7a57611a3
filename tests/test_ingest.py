"""The ingest stage against the real MongoDB server, with real ZTF packets."""

from __future__ import annotations

import threading
from collections import defaultdict

import pytest

from boom_tasks.ingest.indexes import ensure_indexes
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.surveys.ztf import ZTF
from boom_tasks.surveys.ztf import packets as ztf
from tests.alerts import packet_paths, read_packet, reference_record

pytestmark = pytest.mark.services

#: Aux fields that legitimately differ between two orders of ingestion (the object's
#: position is that of the first alert ingested, as in BOOM).
VOLATILE = {"_v", "created_at", "updated_at", "coordinates"}


def _same(a, b) -> bool:
    return a == b or (a != a and b != b)  # NaN equals NaN here


def _packets(*folders: str) -> list[bytes]:
    return [read_packet(p) for f in folders for p in packet_paths(f)]


def _snapshot(db) -> dict:
    return {
        name: sorted(db[name].find(), key=lambda d: str(d["_id"]))
        for name in sorted(db.list_collection_names())
    }


def _expected_history(packets: list[bytes]) -> dict[str, list[tuple[float, int]]]:
    """Independent computation: each object's detections as sorted (jd, candid) pairs."""
    points: dict[str, set[tuple[float, int]]] = defaultdict(set)
    for packet in packets:
        rec = reference_record(packet)
        points[rec["objectId"]].add((rec["candidate"]["jd"], rec["candid"]))
        for prv in rec.get("prv_candidates") or []:
            if prv.get("magpsf") is not None:
                points[rec["objectId"]].add((prv["jd"], prv["candid"]))
    return {oid: sorted(p) for oid, p in points.items()}


def _stored_points(aux: dict) -> list[tuple[float, int]]:
    return [(p["jd"], p["candid"]) for p in aux["prv_candidates"]]


def test_a_batch_of_real_alerts_is_stored_field_by_field(mongo_db):
    # Given real alerts of one night plus a corrupt packet and a prototype without objectId
    good = _packets("kowalski", "boom-402")
    bad = [*_packets("corrupt"), read_packet(packet_paths("ztf-avro-alert")[1])]
    ensure_indexes(mongo_db, ZTF)
    # When they are ingested as one batch
    result = ingest_packets(mongo_db, ZTF, good + bad, batch_key="test:batch")
    # Then every good alert is stored, every bad one quarantined with its reason and bytes
    assert len(result.added) == len(good) and not result.existing
    assert mongo_db[ZTF.alerts].count_documents({}) == len(good)
    quarantined = list(mongo_db[ZTF.quarantine].find())
    assert sorted(q["packet"] for q in quarantined) == sorted(bad)
    assert all(q["reason"] and q["batch_key"] == "test:batch" for q in quarantined)
    # And each alert document matches its Avro input field by field
    for packet in good:
        rec = reference_record(packet)
        doc = mongo_db[ZTF.alerts].find_one({"_id": rec["candid"]})
        assert doc["objectId"] == rec["objectId"]
        # (plus BOOM's derived band name and signal-to-noise, which BOOM's clients read)
        assert doc["candidate"].keys() == rec["candidate"].keys() | {"band", "snr"}
        assert doc["candidate"]["band"] == {1: "g", 2: "r", 3: "i"}[rec["candidate"]["fid"]]
        assert doc["candidate"]["snr"] == pytest.approx(1.0857362 / rec["candidate"]["sigmapsf"])
        for key, value in rec["candidate"].items():
            assert _same(doc["candidate"][key], value), key
        assert doc["coordinates"]["radec_geojson"]["coordinates"] == [
            rec["candidate"]["ra"] - 180,
            rec["candidate"]["dec"],
        ]
        cut = mongo_db[ZTF.cutouts].find_one({"_id": rec["candid"]})
        for name in ztf.CUTOUT_FIELDS:
            assert cut[name] == rec[name]["stampData"]
    # And each object's history holds exactly its detections, once each, sorted
    for object_id, points in _expected_history(good).items():
        aux = mongo_db[ZTF.aux].find_one({"_id": object_id})
        assert _stored_points(aux) == points
        assert all(p["magpsf"] is None for p in aux["prv_nondetections"])


def test_fp_hists_are_merged_without_duplicates(mongo_db):
    packets = _packets("kowalski")
    with_fp = [p for p in packets if reference_record(p).get("fp_hists")]
    assert with_fp
    ingest_packets(mongo_db, ZTF, with_fp, "b1")
    for packet in with_fp:
        rec = reference_record(packet)
        aux = mongo_db[ZTF.aux].find_one({"_id": rec["objectId"]})
        jds = [p["jd"] for p in aux["fp_hists"]]
        assert len(jds) == len(set(jds))
        assert {p["jd"] for p in rec["fp_hists"]} <= set(jds)


def test_replaying_a_batch_leaves_every_document_unchanged(mongo_db):
    packets = _packets("kowalski", "ztf-avro-alert")
    first = ingest_packets(mongo_db, ZTF, packets, "b1")
    before = _snapshot(mongo_db)
    second = ingest_packets(mongo_db, ZTF, packets, "b2")
    assert second.added == [] and sorted(second.existing) == sorted(first.added)
    assert _snapshot(mongo_db) == before


def test_history_does_not_depend_on_batching_or_order(mongo_db):
    packets = _packets("kowalski")
    ingest_packets(mongo_db, ZTF, packets, "all")
    together = {
        d["_id"]: {k: v for k, v in d.items() if k not in VOLATILE}
        for d in mongo_db[ZTF.aux].find()
    }
    for name in mongo_db.list_collection_names():
        mongo_db.drop_collection(name)
    for packet in reversed(packets):
        ingest_packets(mongo_db, ZTF, [packet], "one")
    one_by_one = {
        d["_id"]: {k: v for k, v in d.items() if k not in VOLATILE}
        for d in mongo_db[ZTF.aux].find()
    }
    assert one_by_one == together


def test_concurrent_writers_to_one_object_lose_no_points(mongo_db):
    # Given several alerts of the same object, ingested by parallel writers
    packets = _packets("kowalski")
    by_object = defaultdict(list)
    for p in packets:
        by_object[reference_record(p)["objectId"]].append(p)
    object_id, mine = max(by_object.items(), key=lambda kv: len(kv[1]))
    assert len(mine) >= 2
    errors = []

    def work(packet):
        try:
            ingest_packets(mongo_db, ZTF, [packet], "t")
        except Exception as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(p,)) for p in mine]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then no writer failed and the history is the union of all their points
    assert errors == []
    aux = mongo_db[ZTF.aux].find_one({"_id": object_id})
    assert _stored_points(aux) == _expected_history(mine)[object_id]


def test_a_worker_can_restart_on_a_populated_database(mongo_db):
    # Given a database whose indexes exist and which holds alerts
    ensure_indexes(mongo_db, ZTF)
    ingest_packets(mongo_db, ZTF, _packets("boom-402"), "b1")
    before = sorted(mongo_db[ZTF.alerts].index_information())
    # When a worker boots again and ensures indexes, Then nothing fails and nothing changes
    ensure_indexes(mongo_db, ZTF)
    assert sorted(mongo_db[ZTF.alerts].index_information()) == before
    assert "coordinates.radec_geojson_2dsphere" in before


def test_alerts_carry_the_catalogs_pixel_field_and_answer_batched_cone_searches(mongo_db):
    # Given real alerts ingested with their indexes
    from boom_tasks.sky.cone import cone_search

    ensure_indexes(mongo_db, ZTF)
    packets = _packets("kowalski")
    ingest_packets(mongo_db, ZTF, packets, "b1")
    records = [reference_record(p) for p in packets]
    ra = [r["candidate"]["ra"] for r in records]
    dec = [r["candidate"]["dec"] for r in records]
    # When every alert's own position is searched with a 1 arcsec cone, in one batch
    found = cone_search(mongo_db[ZTF.alerts], ra, dec, 1.0, fields=["_id"])
    # Then each cone holds its alert at distance ~0, and exactly what $geoWithin finds
    for rec, hits, r, d in zip(records, found, ra, dec, strict=True):
        assert rec["candid"] in [h["_id"] for h in hits]
        assert min(h["distance_arcsec"] for h in hits) < 1e-6
        geo = {"$geoWithin": {"$centerSphere": [[r - 180, d], 1.0 / 206264.80624709636]}}
        within = {x["_id"] for x in mongo_db[ZTF.alerts].find({"coordinates.radec_geojson": geo})}
        assert {h["_id"] for h in hits} == within
    assert "hpx_1" in mongo_db[ZTF.alerts].index_information()
