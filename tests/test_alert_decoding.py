"""Decoding every real ZTF packet, and building BOOM's documents from it (no servers)."""

import datetime as dt
import math

import pytest

from boom_tasks.alert.avro import decode_first_record
from boom_tasks.errors import AlertRejected
from boom_tasks.surveys.ztf import packets as ztf
from tests.alerts import packet_paths, read_packet, reference_record

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def test_cached_decoder_equals_fastavro_reader_on_every_readable_packet():
    # Given every real packet of every schema version (1.3 -> 4.02)
    decoded = 0
    for path in packet_paths():
        packet = read_packet(path)
        try:
            expected = reference_record(packet)
        except Exception:
            continue  # corrupt at the source; covered by the quarantine test below
        # When our header-caching decoder reads it, Then it yields exactly fastavro's record
        got = decode_first_record(packet)
        assert got.keys() == expected.keys(), path.name
        assert got["candid"] == expected["candid"]
        assert all(_same(got["candidate"][k], v) for k, v in expected["candidate"].items())
        assert got.get("prv_candidates") == expected.get("prv_candidates")
        decoded += 1
    assert decoded >= 1790


@pytest.mark.parametrize("path", packet_paths("corrupt"), ids=lambda p: p.name)
def test_corrupt_packets_are_rejected_with_a_reason(path):
    with pytest.raises(AlertRejected, match="Avro decoding failed"):
        decode_first_record(read_packet(path))


def test_non_avro_bytes_are_rejected():
    with pytest.raises(AlertRejected, match="magic"):
        decode_first_record(b"hello world")
    with pytest.raises(AlertRejected):
        decode_first_record(b"")


def test_prototype_packets_without_object_id_are_rejected():
    # Given the early prototype packets (alertId, no objectId)
    protos = [
        p
        for p in packet_paths("ztf-avro-alert")
        if "objectId" not in reference_record(read_packet(p))
    ]
    assert {p.name[:13] for p in protos} == {"87704463155000"[:13], "1726958725155"}
    # When parsed, Then each is rejected with a reason naming the missing objectId
    for path in protos:
        with pytest.raises(AlertRejected, match="objectId"):
            ztf.parse_packet(read_packet(path), NOW)


def _boom(point):
    """BOOM's derived fields, computed independently: band from fid, snr of a detection."""
    extra = {"band": {1: "g", 2: "r", 3: "i"}[point["fid"]]}
    if point.get("magpsf") is not None:
        extra["snr"] = 1.0857362047581294 / point["sigmapsf"]
    return {**point, **extra}


def test_documents_follow_boom_layout_for_a_402_alert():
    # Given a schema 4.02 alert with history and forced photometry
    path = packet_paths("boom-402")[0]
    record = reference_record(read_packet(path))
    # When its documents are built
    docs = ztf.parse_packet(read_packet(path), NOW)
    # Then the alert document has BOOM's fields and nothing of history or cutouts
    alert = docs.alert
    assert alert["_id"] == record["candid"] == docs.candid
    assert alert["objectId"] == record["objectId"]
    # (the candidate and every history point gain BOOM's band name and detection snr)
    assert alert["candidate"] == _boom(record["candidate"])
    lon, lat = alert["coordinates"]["radec_geojson"]["coordinates"]
    assert alert["coordinates"]["radec_geojson"]["type"] == "Point"
    assert (
        lon == pytest.approx(record["candidate"]["ra"] - 180) and lat == record["candidate"]["dec"]
    )
    assert not {"prv_candidates", "fp_hists", "cutoutScience"} & alert.keys()
    # And the cutouts are the packet's stamp bytes
    assert docs.cutouts["cutoutScience"] == record["cutoutScience"]["stampData"]
    assert set(docs.cutouts) == set(ztf.CUTOUT_FIELDS)
    # And history is split: detections (with the alert's own candidate) and upper limits
    prv = [_boom(p) for p in record["prv_candidates"]]
    detections = [p for p in prv if p["magpsf"] is not None]
    limits = [p for p in prv if p["magpsf"] is None]
    assert docs.history.prv_candidates == [alert["candidate"], *detections]
    assert docs.history.prv_nondetections == limits
    assert docs.history.fp_hists == [_boom(p) for p in record["fp_hists"]]


def test_alert_without_cutouts_builds_no_cutouts():
    path = packet_paths("ampel-ztf-20210720")[0]
    docs = ztf.parse_packet(read_packet(path), NOW)
    assert docs.cutouts == {}


@pytest.mark.parametrize(
    ("ra", "dec", "reason"),
    [
        (None, 1.0, "missing position"),
        (float("nan"), 1.0, "not finite"),
        (400.0, 0.0, "out of range"),
        (10.0, -91.0, "out of range"),
    ],
)
def test_bad_positions_are_rejected(ra, dec, reason):
    record = reference_record(read_packet(packet_paths("boom-402")[0]))
    record["candidate"] = {**record["candidate"], "ra": ra, "dec": dec}
    with pytest.raises(AlertRejected, match=reason):
        ztf.to_documents(record, NOW)
