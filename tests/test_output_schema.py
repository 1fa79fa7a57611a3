"""The output schema and messages, built from real ZTF packets (no servers).

Each packet is decoded into its documents as ingest stores them, enriched with
real properties, then turned into a message, encoded, decoded and compared
field by field with the documents it came from.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import fastavro
import numpy as np
import pytest
from bson import ObjectId

from boom_tasks.alert.base import AlertDocs
from boom_tasks.errors import AlertRejected, UnknownSurvey
from boom_tasks.output.message import (
    CUTOUT_FIELDS,
    build_message,
    to_json,
)
from boom_tasks.output.schema import (
    OutputMessageError,
    decode,
    encode,
    load_schema,
    schema_json,
)
from boom_tasks.surveys.ztf import ZTF
from boom_tasks.surveys.ztf.output import normalise_isdiffpos
from boom_tasks.surveys.ztf.packets import parse_packet
from boom_tasks.surveys.ztf.properties import alert_properties
from tests.alerts import packet_paths, read_packet

SCHEMA_VERSION = ZTF.output.schema_version

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

#: Packet folders and how many packets of each to use (None: all); the two large
#: folders are sampled for speed.
FOLDERS = [
    ("kowalski", None),
    ("boom-402", None),
    ("fink-20181129", 60),
    ("ampel-ztf-20210720", None),
    ("ampel-commissioning-201712", 40),
    ("ampel-ztf", None),
    ("ampel-ztf-20180819", None),
    ("ztf-avro-alert", None),
]

FILTER_OID = ObjectId("65a1b2c3d4e5f60718293a4b")


def _docs(folder: str, limit: int | None) -> list[AlertDocs]:
    out = []
    for path in packet_paths(folder)[:limit]:
        try:
            out.append(parse_packet(read_packet(path), NOW))
        except AlertRejected:
            continue  # prototype packets without objectId are quarantined at ingest
    return out


def _stored(docs: AlertDocs) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Return the alert, aux and cutouts documents as the pipeline stores them."""
    h = docs.history
    aux = {
        "_id": docs.object_id,
        "prv_candidates": h.prv_candidates,
        "prv_nondetections": h.prv_nondetections,
        "fp_hists": h.fp_hists,
        "cross_matches": {
            "Gaia_DR3": [
                {"source_id": np.int64(42), "phot_g_mean_mag": 17.2, "distance_arcsec": 0.4}
            ],
            "NED": [{"name": "NGC 1", "z": float("nan"), "distance_kpc": 12.5}],
        },
    }
    alert = dict(docs.alert)
    cand = alert["candidate"]
    alert["properties"] = alert_properties(cand, h.prv_candidates, None, h.fp_hists)
    alert["classifications"] = {"acai_h": np.float32(0.25), "anomaly_score": -0.5}
    alert["classifications_skipped"] = {"btsbot": "no model"}
    cutouts = {"_id": docs.candid, **docs.cutouts}
    return alert, aux, cutouts


def _passes() -> list[dict[str, Any]]:
    annotations = {"mag_now": np.float64(18.5), "seen": NOW, "ref": FILTER_OID, "n": np.int32(3)}
    return [
        {
            "filter_id": FILTER_OID,
            "name": "bright",
            "version": "v2",
            "passed_at": NOW,
            "annotations": annotations,
        },
        {"filter_id": 7, "name": "all", "version": None, "passed_at": 1.7e9, "annotations": {}},
    ]


TIMES = {"received": 1.7e9, "ingested": 1.7e9 + 0.5, "filtered": 1.7e9 + 2, "published": 1.7e9 + 3}


def test_schema_is_namespaced_versioned_and_documented() -> None:
    # Given the schema file
    schema = schema_json("ZTF")
    # Then it is namespaced and carries the code's version
    assert schema["namespace"] == "boom_tasks.ztf"
    assert schema["version"] == SCHEMA_VERSION
    assert schema["doc"]
    # And every field is documented, and every nullable one defaults to null,
    # so a later version's reader resolves messages written without it.
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


@pytest.mark.parametrize(("folder", "limit"), FOLDERS)
def test_real_packets_round_trip(folder: str, limit: int | None) -> None:
    # Given the stored documents of real packets
    all_docs = _docs(folder, limit)
    assert all_docs, f"no readable packet in {folder}"
    for docs in all_docs:
        alert, aux, cutouts = _stored(docs)
        # When a message is built, encoded and decoded
        message = build_message(ZTF, alert, aux, cutouts, _passes(), TIMES)
        decoded = decode(encode(message))
        # Then the round trip is exact and the message matches its documents
        assert decoded == message
        _check_against_documents(decoded, docs, alert)


def _check_against_documents(msg: dict[str, Any], docs: AlertDocs, alert: dict[str, Any]) -> None:
    cand = alert["candidate"]
    assert (msg["candid"], msg["objectId"]) == (docs.candid, docs.object_id)
    assert (msg["jd"], msg["ra"], msg["dec"]) == (cand["jd"], cand["ra"], cand["dec"])
    assert msg["candidate"]["magpsf"] == cand["magpsf"]
    assert msg["candidate"]["isdiffpos"] == normalise_isdiffpos(cand["isdiffpos"])
    _check_light_curve(msg, docs, cand["jd"])
    for name in CUTOUT_FIELDS:
        assert msg[name] == docs.cutouts.get(name)
    assert msg["properties"] == alert["properties"]
    assert msg["classifications"] == {"acai_h": 0.25, "anomaly_score": -0.5}
    _check_filters(msg)
    assert json.loads(msg["cross_matches"]["NED"]) == [
        {"name": "NGC 1", "z": None, "distance_kpc": 12.5}
    ]
    assert json.loads(msg["cross_matches"]["Gaia_DR3"])[0]["source_id"] == 42
    assert msg["times"] == {**dict.fromkeys(("crossmatched", "enriched")), **TIMES}


def _check_light_curve(msg: dict[str, Any], docs: AlertDocs, jd: float) -> None:
    h = docs.history
    sources = {
        "prv_candidates": (h.prv_candidates, ("jd", "fid", "magpsf", "sigmapsf", "candid")),
        "prv_nondetections": (h.prv_nondetections, ("jd", "fid", "diffmaglim", "programid")),
        "fp_hists": (h.fp_hists, ("jd", "forcediffimflux", "forcediffimfluxunc", "procstatus")),
    }
    for name, (points, keys) in sources.items():
        expected = sorted((p for p in points if p["jd"] <= jd), key=lambda p: p["jd"])
        assert len(msg[name]) == len(expected), name
        for got, want in zip(msg[name], expected, strict=True):
            assert all(got[k] == want.get(k) for k in keys), (name, got["jd"])
    # Some sample packets hold "history" later than the alert itself: it is cut.
    detections = sorted((p for p in h.prv_candidates if p["jd"] <= jd), key=lambda p: p["jd"])
    assert [p["isdiffpos"] for p in msg["prv_candidates"]] == [
        normalise_isdiffpos(p["isdiffpos"]) for p in detections
    ]


def _check_filters(msg: dict[str, Any]) -> None:
    first, second = msg["filters"]
    assert (first["filter_id"], first["name"], first["version"]) == (
        str(FILTER_OID),
        "bright",
        "v2",
    )
    assert first["passed_at"] == NOW.timestamp()
    assert json.loads(first["annotations"]) == {
        "mag_now": 18.5,
        "seen": NOW.isoformat(),
        "ref": str(FILTER_OID),
        "n": 3,
    }
    assert (second["filter_id"], second["version"], json.loads(second["annotations"])) == (
        "7",
        None,
        {},
    )


def test_messages_decode_without_this_package() -> None:
    # Given an encoded message
    docs = _docs("boom-402", 1)[0]
    data = encode(build_message(ZTF, *_stored(docs), _passes(), TIMES))
    # When a consumer reads it with a plain Avro reader and no schema of its own
    records = list(fastavro.reader(io.BytesIO(data)))
    # Then it gets the same single record, and the header carries the documented schema
    assert records == [decode(data)]
    assert fastavro.reader(io.BytesIO(data)).writer_schema["version"] == SCHEMA_VERSION


def test_a_later_minor_version_reads_current_messages() -> None:
    # Given a message written with the current schema
    docs = _docs("kowalski", 1)[0]
    message = build_message(ZTF, *_stored(docs), _passes(), TIMES)
    data = encode(message)
    # When a reader uses a later version that adds a field with a default
    later = json.loads(json.dumps(schema_json("ZTF")))
    later["version"] = "1.3"
    later["fields"].append({"name": "host_galaxy", "type": ["null", "string"], "default": None})
    reader = fastavro.reader(io.BytesIO(data), reader_schema=fastavro.parse_schema(later))
    # Then every current field resolves and the new one takes its default
    assert next(iter(reader)) == {**message, "host_galaxy": None}


def test_version_1_0_and_1_1_readers_and_messages_mix() -> None:
    # Given schema 1.0 (1.1 without survey_matches) and a message of each version
    current = schema_json("ZTF")
    old = {**json.loads(json.dumps(current)), "version": "1.0"}
    old["fields"] = [f for f in old["fields"] if f["name"] != "survey_matches"]
    docs = _docs("kowalski", 1)[0]
    message = build_message(ZTF, *_stored(docs), _passes(), TIMES)
    new_data = encode(message)
    old_message = {k: v for k, v in message.items() if k != "survey_matches"}
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(old), [{**old_message, "schemavsn": "1.0"}])
    # When a 1.0 consumer reads the 1.1 message, Then it sees every field it knows
    read_old = fastavro.reader(io.BytesIO(new_data), reader_schema=fastavro.parse_schema(old))
    assert next(iter(read_old)) == old_message
    # And a 1.1 consumer reads a 1.0 message with no associated objects
    read_new = fastavro.reader(io.BytesIO(buf.getvalue()), reader_schema=load_schema("ZTF"))
    assert next(iter(read_new))["survey_matches"] == []


def test_history_is_cut_at_the_alert_and_to_visible_programmes() -> None:
    # Given an object whose aux document already holds a later point and a private one
    docs = _docs("kowalski", 1)[0]
    alert, aux, cutouts = _stored(docs)
    jd = alert["candidate"]["jd"]
    later = {**docs.history.prv_candidates[0], "jd": jd + 1.0}
    private = {**docs.history.prv_candidates[0], "jd": jd - 1.0, "programid": 2}
    aux["prv_candidates"] = [*aux["prv_candidates"], later, private]
    # When the message is built for public readers
    public = build_message(ZTF, alert, aux, cutouts, _passes(), TIMES, programids={1})
    everyone = build_message(ZTF, alert, aux, cutouts, _passes(), TIMES)
    # Then the later point is never included and the private one only when allowed
    assert all(p["jd"] <= jd for p in everyone["prv_candidates"])
    assert any(p["programid"] == 2 for p in everyone["prv_candidates"])
    assert all(p["programid"] == 1 for p in public["prv_candidates"])
    assert [p["jd"] for p in everyone["prv_candidates"]] == sorted(
        p["jd"] for p in everyone["prv_candidates"]
    )


def test_missing_enrichment_aux_and_cutouts_become_nulls() -> None:
    # Given an alert that was never enriched, with no aux or cutouts document
    docs = _docs("boom-402", 1)[0]
    # When its message is built
    msg = build_message(ZTF, docs.alert, None, None, _passes(), {})
    # Then the optional parts are empty or null and it still encodes
    assert msg["properties"] is None and msg["classifications"] == {} and msg["cross_matches"] == {}
    assert msg["prv_candidates"] == [] and msg["cutoutScience"] is None
    assert msg["times"] == dict.fromkeys(msg["times"])
    assert decode(encode(msg)) == msg


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("t", "t"),
        ("1", "t"),
        (True, "t"),
        (1, "t"),
        ("f", "f"),
        ("0", "f"),
        (False, "f"),
        (None, None),
    ],
)
def test_isdiffpos_is_normalised(raw: Any, expected: str | None) -> None:
    assert normalise_isdiffpos(raw) == expected


def test_stored_pass_documents_are_accepted() -> None:
    # Given a pass as the filter stage stores it (filter_name, fid)
    docs = _docs("boom-402", 1)[0]
    stored = {
        "_id": "x",
        "candid": docs.candid,
        "filter_id": FILTER_OID,
        "filter_name": "bright",
        "fid": "v3",
        "passed_at": NOW,
        "annotations": {"why": "bright"},
    }
    # When it is published
    (entry,) = build_message(ZTF, docs.alert, None, None, [stored], {})["filters"]
    # Then the name and version are taken from those keys
    assert (entry["name"], entry["version"], entry["annotations"]) == (
        "bright",
        "v3",
        '{"why":"bright"}',
    )


def test_naive_datetimes_are_utc() -> None:
    # pymongo hands back naive datetimes in UTC
    docs = _docs("boom-402", 1)[0]
    passed = [{**_passes()[1], "passed_at": NOW.replace(tzinfo=None)}]
    msg = build_message(ZTF, docs.alert, None, None, passed, {"received": NOW.replace(tzinfo=None)})
    assert msg["filters"][0]["passed_at"] == msg["times"]["received"] == NOW.timestamp()


def test_to_json_is_strict_json() -> None:
    text = to_json({"a": [float("inf"), np.float32(1.5)], "b": {1: np.bool_(True)}})
    assert json.loads(text) == {"a": [None, 1.5], "b": {"1": True}}


def test_bad_inputs_fail_with_the_field_named() -> None:
    docs = _docs("boom-402", 1)[0]
    with pytest.raises(OutputMessageError, match="unknown stage"):
        build_message(ZTF, docs.alert, None, None, [], {"recieved": 1.0})
    with pytest.raises(OutputMessageError, match=r"candidate\.fid"):
        build_message(
            ZTF,
            {**docs.alert, "candidate": {**docs.alert["candidate"], "fid": "g"}},
            None,
            None,
            [],
            {},
        )
    with pytest.raises(OutputMessageError, match=r"filters\[0\]\.name"):
        build_message(ZTF, docs.alert, None, None, [{**_passes()[1], "name": None}], {})
    message = build_message(ZTF, docs.alert, None, None, [], {})
    with pytest.raises(OutputMessageError, match="more fields"):
        encode({**message, "objectid": "typo"})
    with pytest.raises(OutputMessageError, match="cannot decode"):
        decode(b"not avro at all")
    with pytest.raises(UnknownSurvey, match="PTF"):
        load_schema("PTF")
