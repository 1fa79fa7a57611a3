"""The LSST output schema and messages, built from every real Rubin packet (no servers).

Each packet is decoded into its documents as ingest stores them, its history
merged into an aux document, its properties computed, then turned into a
message, encoded, decoded and compared field by field with the documents it
came from.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import pytest

from boom_tasks.alert.base import AlertDocs
from boom_tasks.ingest.history import merge_history
from boom_tasks.output.message import CUTOUT_FIELDS, build_message
from boom_tasks.output.schema import conform, decode, encode, load_schema, schema_json
from boom_tasks.surveys.lsst import LSST
from boom_tasks.surveys.lsst.documents import parse_packet
from boom_tasks.surveys.lsst.packets import package_schema_dir
from tests.conftest import DATA

PACKETS = sorted((DATA / "lsst").rglob("*.avro"))
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TIMES = {"received": 1.7e9, "ingested": 1.7e9 + 0.5, "filtered": 1.7e9 + 2, "published": 1.7e9 + 3}
#: Rubin versions whose diaSource and diaForcedSource fields the schema carries.
VERSIONS = ("9/0", "10/0", "11/0", "11/1")


def same(a: Any, b: Any) -> bool:
    """Deep equality in which NaN equals NaN (Rubin sends NaN for unmeasured floats)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) and type(a) is type(b)


def passes() -> list[dict[str, Any]]:
    annotations = {"mag_now": np.float64(20.5), "seen": NOW, "n": np.int32(3)}
    return [
        {
            "filter_id": 12,
            "name": "fast",
            "version": "v1",
            "passed_at": NOW,
            "annotations": annotations,
        }
    ]


def stored(path: Path) -> tuple[AlertDocs, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Return a packet's documents and its alert, aux and cutouts documents as stored."""
    docs = parse_packet(path.read_bytes(), NOW)
    history = merge_history(None, [docs.history], LSST.history_fields, LSST.point_id_fields)
    aux = {
        "_id": docs.object_id,
        **history,
        "cross_matches": {"Gaia_DR3": [{"source_id": np.int64(7), "distance_arcsec": 0.3}]},
    }
    alert = dict(docs.alert)
    alert["properties"] = LSST.properties(alert["candidate"], history)
    alert["classifications"] = {"reliability_model": np.float32(0.75)}
    return docs, alert, aux, {"_id": docs.candid, **docs.cutouts}


def record_fields(name: str) -> list[dict[str, Any]]:
    """Return the fields of a named record of the LSST schema."""
    return list(load_schema("LSST")["__named_schemas"][f"boom_tasks.lsst.{name}"]["fields"])


def rubin_fields(record: str) -> dict[str, dict[str, Any]]:
    """Return the fields of a Rubin record over :data:`VERSIONS`, newest version winning."""
    folder = package_schema_dir()
    assert folder is not None, "lsst-alert-packet is not installed"
    fields: dict[str, dict[str, Any]] = {}
    for version in VERSIONS:
        path = next((folder / version).glob(f"*.{record}.avsc"))
        fields.update({f["name"]: f for f in json.loads(path.read_text())["fields"]})
    return fields


def test_every_real_packet_is_used() -> None:
    # The shared data: 3 packets from BOOM's tests and 107 from Fink's
    assert len(PACKETS) == 110


def test_schema_is_namespaced_versioned_and_documented() -> None:
    # Given the schema file
    schema = schema_json("LSST")
    # Then it is namespaced, carries the code's version and is documented field by field
    assert (schema["namespace"], schema["name"]) == ("boom_tasks.lsst", "FilteredAlert")
    assert schema["version"] == LSST.output.schema_version
    assert schema["doc"]
    for field in _fields(schema):
        assert field.get("doc"), field["name"]
        if isinstance(field["type"], list) and "null" in field["type"]:
            assert field["type"][0] == "null" and field["default"] is None, field["name"]


def _fields(schema: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(schema, dict):
        for field in schema.get("fields", []):
            found.append(field)
            found.extend(_fields(field["type"]))
        for key in ("items", "values"):
            found.extend(_fields(schema.get(key)))
    elif isinstance(schema, list):
        for branch in schema:
            found.extend(_fields(branch))
    return found


@pytest.mark.parametrize(
    ("record", "ours"), [("diaSource", "Candidate"), ("diaForcedSource", "ForcedPhotometry")]
)
def test_rubin_fields_keep_their_type_and_doc(record: str, ours: str) -> None:
    # Given Rubin's fields of every carried version, and our record
    rubin = rubin_fields(record)
    fields = {f["name"]: f for f in record_fields(ours)}
    # Then every Rubin field is there, nullable, with Rubin's Avro type and newest doc
    for name, theirs in rubin.items():
        kind = theirs["type"]
        base = next(t for t in kind if t != "null") if isinstance(kind, list) else kind
        assert fields[name]["type"] == ["null", base], name
        assert fields[name]["doc"] == theirs["doc"], name


@pytest.mark.parametrize("path", PACKETS, ids=[p.name for p in PACKETS])
def test_real_packets_round_trip(path: Path) -> None:
    # Given the stored documents of a real packet
    docs, alert, aux, cutouts = stored(path)
    # When a message is built, encoded and decoded
    message = build_message(LSST, alert, aux, cutouts, passes(), TIMES)
    decoded = decode(encode(message))
    # Then the round trip is exact and the message matches its documents
    assert same(decoded, message)
    cand = alert["candidate"]
    assert (decoded["candid"], decoded["objectId"]) == (docs.candid, docs.object_id)
    assert (decoded["jd"], decoded["ra"], decoded["dec"]) == (cand["jd"], docs.ra, docs.dec)
    _check_candidate(decoded["candidate"], cand, alert["schemavsn"])
    _check_history(decoded, aux, cand["jd"])
    for name in CUTOUT_FIELDS:
        assert decoded[name] == docs.cutouts[name]
    assert same(decoded["properties"], alert["properties"])
    assert decoded["classifications"] == {"reliability_model": 0.75}
    assert json.loads(decoded["cross_matches"]["Gaia_DR3"]) == [
        {"source_id": 7, "distance_arcsec": 0.3}
    ]
    assert json.loads(decoded["filters"][0]["annotations"]) == {
        "mag_now": 20.5,
        "seen": NOW.isoformat(),
        "n": 3,
    }
    assert decoded["times"] == {**dict.fromkeys(("crossmatched", "enriched")), **TIMES}
    assert decoded["survey_matches"] == []


def _check_candidate(got: dict[str, Any], cand: dict[str, Any], version: str) -> None:
    """Every field equals the document's: Rubin's floats stay 32-bit, so nothing is rounded."""
    assert all(same(got[k], cand.get(k)) for k in got), [
        k for k in got if not same(got[k], cand.get(k))
    ]
    # Schemas 9.0 and later lose nothing; 7.x fields dropped since (psfRa...) are not carried.
    if int(version.split(".")[0]) >= 9:
        assert set(cand) <= set(got), set(cand) - set(got)
    assert got["isdiffpos"] is (cand["psfFlux"] > 0)


def _check_history(msg: dict[str, Any], aux: dict[str, Any], jd: float) -> None:
    for name in LSST.history_fields:
        expected = sorted((p for p in aux[name] if p["jd"] <= jd), key=lambda p: p["jd"])
        assert len(msg[name]) == len(expected), name
        for got, want in zip(msg[name], expected, strict=True):
            assert all(same(got[k], want.get(k)) for k in got), (name, got["jd"])
    assert any(p["diaSourceId"] == msg["candid"] for p in msg["prv_candidates"])


def test_a_message_without_aux_or_cutouts_still_encodes() -> None:
    # Given an alert that was never enriched, with no aux or cutouts document
    docs = parse_packet(PACKETS[0].read_bytes(), NOW)
    # When its message is built
    msg = build_message(LSST, docs.alert, None, None, passes(), {})
    # Then the optional parts are empty or null and it round-trips
    assert msg["properties"] is None and msg["classifications"] == {}
    assert msg["prv_candidates"] == msg["fp_hists"] == msg["prv_nondetections"] == []
    assert msg["cutoutScience"] is None and msg["cross_matches"] == {}
    assert msg["survey_matches"] == []
    assert same(decode(encode(msg)), msg)


def test_survey_matches_carry_another_surveys_photometry() -> None:
    # Given a message to which a later stage adds a ZTF object and its light curve
    docs = parse_packet(PACKETS[-1].read_bytes(), NOW)
    msg = build_message(LSST, docs.alert, None, None, passes(), {})
    ztf_point = {"jd": 2460800.5, "band": "r", "magpsf": 19.1, "sigmapsf": 0.05}
    match = {"survey": "ZTF", "objectId": "ZTF25aaaaaaa", "distance_arcsec": 0.4}
    msg["survey_matches"] = [{**match, "prv_candidates": [ztf_point]}]
    # When it is fitted to the schema, encoded and decoded
    decoded = decode(encode(conform(msg, load_schema("LSST"))))
    # Then the match and its points come back, absent point fields as null
    point = {**ztf_point, "diffmaglim": None, "isdiffpos": None}
    assert decoded["survey_matches"] == [{**match, "prv_candidates": [point]}]


def test_messages_decode_without_this_package() -> None:
    # Given an encoded message
    data = encode(build_message(LSST, *stored(PACKETS[-1])[1:], passes(), TIMES))
    # When a consumer reads it with a plain Avro reader and no schema of its own
    reader = fastavro.reader(io.BytesIO(data))
    records = list(reader)
    # Then it gets the same single record, and the header carries the documented schema
    assert len(records) == 1 and same(records[0], decode(data))
    writer = reader.writer_schema
    assert isinstance(writer, dict)
    assert writer["name"] == "boom_tasks.lsst.FilteredAlert" and writer["version"] == "1.1"
