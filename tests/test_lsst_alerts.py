"""Rubin/LSST packets: framing, every schema version, BOOM's documents (no servers).

The reference decoder here is independent of ``boom_tasks``: the wire header is
read with ``struct``, the schema loaded with ``fastavro.schema.load_schema`` from
the ``lsst-alert-packet`` files, the datum read with ``fastavro.schemaless_reader``.
"""

from __future__ import annotations

import datetime as dt
import http.server
import io
import json
import math
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import load_schema, to_parsing_canonical_form

from boom_tasks.errors import AlertRejected
from boom_tasks.surveys.lsst import documents
from boom_tasks.surveys.lsst.documents import parse_packet, to_documents
from boom_tasks.surveys.lsst.packets import SchemaSource, decode_packet, package_schema_dir
from tests.conftest import DATA

LSST = DATA / "lsst"
PACKETS = sorted(LSST.glob("*/*.avro"))
SCHEMAS = package_schema_dir()
assert SCHEMAS is not None, "lsst-alert-packet is not installed"
SAMPLES = sorted(SCHEMAS.glob("*/*/sample_data/fakeAlert.avro"))
NOW = dt.datetime(2026, 3, 6, tzinfo=dt.UTC)
#: The solar-system alerts of fink/ (diaSourceId → ssObjectId; README beside the data).
SSO = {
    169298432645136561: 21164719644750924,
    169298432757858307: 21164715316492612,
    169298433291583519: 21164723922809665,
    169298433340342300: 21164719644750924,
    170094456480989258: 21163624394469969,
    170094456528175205: 21165806389311562,
}
TAI_UTC_DAYS = 37 / 86400


@cache
def reference_schema(sid: int) -> Any:
    major, minor = divmod(sid, 100)
    return load_schema(str(SCHEMAS / f"{major}/{minor}/lsst.v{major}_{minor}.alert.avsc"))


def reference_decode(packet: bytes) -> tuple[int, dict[str, Any]]:
    magic, sid = struct.unpack(">bI", packet[:5])
    assert magic == 0
    fo = io.BytesIO(packet[5:])
    record = fastavro.schemaless_reader(fo, reference_schema(sid))
    assert fo.tell() == len(packet) - 5
    return sid, record  # type: ignore[return-value]


def nan_safe(value: Any) -> Any:
    """Return ``value`` with NaN replaced by a marker, so that == compares it."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: nan_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nan_safe(v) for v in value]
    return value


def wire(sid: int, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, reference_schema(sid), record)
    return b"\x00" + struct.pack(">I", sid) + out.getvalue()


@pytest.fixture(scope="module")
def source() -> SchemaSource:
    return SchemaSource()


@pytest.fixture(scope="module")
def decoded() -> dict[Path, tuple[int, dict[str, Any]]]:
    return {path: reference_decode(path.read_bytes()) for path in PACKETS}


# --- decoding ---------------------------------------------------------------------------


def test_every_real_packet_decodes_with_its_schema_id(source):
    # Given the 110 real packets, When decoded, Then the ids are those of the data's README
    ids = {folder: Counter() for folder in ("boom", "fink")}
    for path in PACKETS:
        sid, record = decode_packet(path.read_bytes(), source)
        ids[path.parent.name][sid] += 1
        assert record["diaSource"]["diaSourceId"] == int(path.stem)
    assert ids == {"boom": Counter({701: 1, 703: 1, 900: 1}), "fink": Counter({900: 100, 1000: 7})}


def test_decoded_records_equal_an_independent_decode(source, decoded):
    for path, (sid, expected) in decoded.items():
        got_sid, got = decode_packet(path.read_bytes(), source)
        assert got_sid == sid
        assert nan_safe(got) == nan_safe(expected), path.name


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: "v" + ".".join(p.parts[-4:-2]))
def test_every_sample_alert_of_the_package_decodes_and_gives_documents(path, source):
    # Given Rubin's sample alert of one schema version: an Avro container file
    packet = path.read_bytes()
    assert packet.startswith(b"Obj\x01")
    major, minor = int(path.parts[-4]), int(path.parts[-3])
    expected = next(iter(fastavro.reader(io.BytesIO(packet))))
    # When decoded as it is, and re-framed in Rubin's wire format
    sid, record = decode_packet(packet, source)
    wire_sid, wire_record = decode_packet(wire(sid, record), source)  # type: ignore[arg-type]
    # Then both give the sample's record, with the version's id
    assert sid == wire_sid == major * 100 + minor
    assert nan_safe(record) == nan_safe(expected) == nan_safe(wire_record)
    docs = to_documents(record, NOW, schema_id=sid)
    assert docs.alert["schemavsn"] == f"{major}.{minor}"
    # (the samples leave diaSource.diaObjectId null: the diaObject record names the object)
    assert docs.object_id == str(record["diaObject"]["diaObjectId"])
    assert docs.alert["candidate"]["magpsf"] == pytest.approx(-2.5 * math.log10(1241.0) + 31.4)
    assert all(p["jd"] and p["diaSourceId"] for p in docs.history.prv_candidates)


# --- documents --------------------------------------------------------------------------


def check_photometry(point: dict[str, Any], source: dict[str, Any]) -> None:
    """Check BOOM's derived fields of one point against its diaSource, recomputed here."""
    assert point["jd"] == pytest.approx(
        source["midpointMjdTai"] + 2400000.5 - TAI_UTC_DAYS, abs=1e-9
    )
    assert point["band"] == source["band"]
    flux, err = source["psfFlux"], source["psfFluxErr"]
    assert point["magpsf"] == pytest.approx(-2.5 * math.log10(abs(flux)) + 31.4)
    assert point["sigmapsf"] == pytest.approx(2.5 / math.log(10) * err / abs(flux))
    assert point["diffmaglim"] == pytest.approx(-2.5 * math.log10(5 * err) + 31.4)
    assert point["isdiffpos"] is (flux > 0)
    assert point["snr_psf"] == pytest.approx(abs(flux) / err)


def test_documents_of_every_real_packet(decoded):
    for path, (sid, record) in decoded.items():
        docs = parse_packet(path.read_bytes(), NOW)
        source, alert = record["diaSource"], docs.alert
        cand = alert["candidate"]
        assert alert["_id"] == alert["candid"] == docs.candid == source["diaSourceId"]
        assert alert["schemavsn"] == f"{sid // 100}.{sid % 100}"
        assert alert["created_at"] == NOW
        # the candidate is the diaSource, field by field, ids of 0 stored as null
        for key, value in source.items():
            want = value or None if key in ("diaObjectId", "ssObjectId") else value
            assert nan_safe(cand[key]) == nan_safe(want), (path.name, key)
        check_photometry(cand, source)
        assert alert["coordinates"]["radec_geojson"] == {
            "type": "Point",
            "coordinates": [source["ra"] - 180.0, source["dec"]],
        }
        assert docs.cutouts == {k: record[k] for k in docs.cutouts}
        assert sorted(docs.cutouts) == ["cutoutDifference", "cutoutScience", "cutoutTemplate"]
        assert all(stamp.startswith(b"SIMPLE") for stamp in docs.cutouts.values())
        if docs.candid in SSO:
            assert docs.object_id == alert["objectId"] == f"sso{SSO[docs.candid]}"
            assert alert["ssObjectId"] == SSO[docs.candid] == source["ssObjectId"]
            assert alert["ss_source"]["ssObjectId"] == SSO[docs.candid]
        else:
            assert docs.object_id == alert["objectId"] == str(source["diaObjectId"])
            assert alert["ssObjectId"] is None and alert["ss_source"] is None


def test_six_solar_system_alerts_in_fink_data():
    sso = [p for p in PACKETS if parse_packet(p.read_bytes(), NOW).object_id.startswith("sso")]
    assert {int(p.stem) for p in sso} == set(SSO)


def test_history_points_have_jd_and_ids(decoded):
    for path, (_, record) in decoded.items():
        docs = parse_packet(path.read_bytes(), NOW)
        prv = docs.history.prv_candidates
        sources = {s["diaSourceId"]: s for s in record["prvDiaSources"] or []}
        # every earlier detection and the alert's own diaSource, once each
        assert sorted(p["diaSourceId"] for p in prv) == sorted({*sources, docs.candid})
        for point in prv:
            assert point["objectId"] == docs.object_id
            check_photometry(point, sources.get(point["diaSourceId"], record["diaSource"]))
        forced = record["prvDiaForcedSources"] or []
        assert len(docs.history.fp_hists) == len(forced)
        for point, fs in zip(docs.history.fp_hists, forced, strict=True):
            assert point["diaForcedSourceId"] == fs["diaForcedSourceId"]
            assert point["jd"] == pytest.approx(fs["midpointMjdTai"] + 2400000.5 - TAI_UTC_DAYS)
            significant = abs(fs["psfFlux"]) / fs["psfFluxErr"] > 3
            assert (point["magpsf"] is not None) is significant
            assert point["psfFlux"] == fs["psfFlux"]
        assert docs.history.prv_nondetections == []


def test_history_of_a_long_light_curve():
    docs = parse_packet((LSST / "fink" / "170094456523456557.avro").read_bytes(), NOW)
    assert len(docs.history.prv_candidates) == 377  # 376 earlier detections + this one
    assert len(docs.history.fp_hists) == 777
    assert docs.alert["candidate"]["ndethist"] == 377


def test_merged_history_does_not_depend_on_arrival_order():
    from boom_tasks.ingest.history import merge_history
    from boom_tasks.surveys.lsst import LSST as SURVEY

    # Given a real long light curve and the object's previous alert made from it
    # (its last earlier diaSource as the alert, the others as its history)
    packet = (LSST / "fink" / "170094456523456557.avro").read_bytes()
    sid, record = decode_packet(packet, SchemaSource())
    *earlier, last = sorted(record["prvDiaSources"], key=lambda s: s["midpointMjdTai"])
    before = {**record, "diaSource": last, "prvDiaSources": earlier}
    newer = to_documents(record, NOW, schema_id=sid).history
    older = to_documents(before, NOW, schema_id=sid).history
    fields, ids = SURVEY.history_fields, SURVEY.point_id_fields
    # When the two alerts are merged in either order, or one after the other
    in_order = merge_history(None, [older, newer], fields, ids)
    reversed_order = merge_history(None, [newer, older], fields, ids)
    one_by_one = merge_history(merge_history(None, [newer], fields, ids), [older], fields, ids)
    # Then the stored history is the same, each point once, sorted by time
    assert in_order == reversed_order == one_by_one
    points = in_order["prv_candidates"]
    assert len(points) == len({p["diaSourceId"] for p in points}) == 377
    assert [p["jd"] for p in points] == sorted(p["jd"] for p in points)
    # And merging again changes nothing (a replay)
    assert merge_history(in_order, [older, newer], fields, ids) == in_order


def test_derived_values_match_boom_on_its_own_test_alert():
    # Given the v9.0 alert of BOOM's tests; Then the values its test asserts
    docs = parse_packet((LSST / "boom" / "7912941781254298.avro").read_bytes(), NOW)
    cand = docs.alert["candidate"]
    assert cand["jd"] == pytest.approx(2460961.732664, abs=1e-6)
    assert cand["magpsf"] == pytest.approx(23.674994, abs=1e-5)
    assert cand["sigmapsf"] == pytest.approx(0.217043, abs=1e-6)
    assert cand["diffmaglim"] == pytest.approx(23.675514, abs=1e-5)
    assert cand["snr_psf"] == pytest.approx(5.002406, abs=1e-6)
    assert cand["snr"] == pytest.approx(5.0520844, abs=1e-6)  # Rubin's own, kept
    assert cand["isdiffpos"] is False and cand["band"] == "r"
    assert cand["chipsf"] == pytest.approx(1710.2283 / 1681, rel=1e-6)


def _record(name: str = "7912941781254298") -> dict[str, Any]:
    return reference_decode((LSST / "boom" / f"{name}.avro").read_bytes())[1]


def test_nan_flux_gives_no_magnitude_and_no_crash():
    record = _record()
    record["diaSource"]["psfFlux"] = math.nan
    cand = to_documents(record, NOW).alert["candidate"]
    assert cand["magpsf"] is cand["sigmapsf"] is cand["isdiffpos"] is cand["snr_psf"] is None
    assert cand["diffmaglim"] is not None  # the error still sets a limit


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("ra", math.nan, "position is not finite"),
        ("dec", math.inf, "position is not finite"),
        ("midpointMjdTai", math.nan, "midpointMjdTai is missing or not finite"),
    ],
)
def test_unusable_diasource_is_rejected(field, value, reason):
    record = _record()
    record["diaSource"][field] = value
    with pytest.raises(AlertRejected, match=reason):
        to_documents(record, NOW)


def test_alert_without_any_object_is_rejected():
    record = _record()
    record["diaSource"].update(diaObjectId=0, ssObjectId=None)
    record["diaObject"] = None
    with pytest.raises(AlertRejected, match="neither a diaObject nor a solar-system object"):
        to_documents(record, NOW)


def test_history_point_without_time_is_dropped():
    record = _record("25409136044802067")
    record["prvDiaSources"][0]["midpointMjdTai"] = math.nan
    docs = to_documents(record, NOW)
    assert len(docs.history.prv_candidates) == len(record["prvDiaSources"])  # 2 - 1 + own


# --- bad packets ------------------------------------------------------------------------

GOOD = (LSST / "fink" / "169298432598474793.avro").read_bytes()  # schema 900
ZTF_PACKET = sorted((DATA / "ztf" / "boom-402").glob("*.avro"))[0].read_bytes()


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (b"", r"^empty packet$"),
        (b"\x00\x00\x03", r"packet too short \(3 bytes\)"),
        (b"\x07" + GOOD[1:], r"bad magic byte 0x07: .*Obj"),
        (b'{"diaSourceId": 1}', r"bad magic byte 0x7b"),
        (b"\x00" + struct.pack(">I", 4242) + GOOD[5:], r"unknown schema id 4242 .*10\.0, 11\.0"),
        (GOOD[:-1000], r"does not decode with schema 900 \(v9\.0\): EOFError"),
        (GOOD + b"\x00\x00", r"^2 bytes left after the Avro datum of schema 900"),
        (b"\x00" + struct.pack(">I", 1100) + GOOD[5:], r"schema 1100 \(v11\.0\): IndexError"),
        (ZTF_PACKET, r"not an LSST alert: .*'ztf\.alert'"),
    ],
    ids=["empty", "short", "magic", "json", "unknown-id", "truncated", "trailing",
         "wrong-id", "ztf"],
)  # fmt: skip
def test_bad_packets_are_rejected_with_a_reason(packet, reason, source):
    with pytest.raises(AlertRejected, match=reason):
        decode_packet(packet, source)


def test_bit_flips_are_rejected_or_decode_never_crash(source):
    # Given 2000 packets, each with one bit flipped in the first 2 KB of the datum (the
    # diaSource and the record structure; the cutouts behind are opaque bytes)
    rng = random.Random(42)
    rejected = Counter()
    for _ in range(2000):
        flipped = bytearray(GOOD)
        flipped[rng.randrange(5, 2005)] ^= 1 << rng.randrange(8)
        # When decoded, Then each is a record (a flipped value) or rejected with a reason
        try:
            decode_packet(bytes(flipped), source)
        except AlertRejected as e:
            kind = e.reason.startswith("Avro datum does not decode") or "bytes left" in e.reason
            assert kind, e.reason
            assert " at 0x" not in e.reason  # no object address: one reason per kind
            rejected[e.reason.split(":")[1].strip()] += 1
    assert sum(rejected.values()) > 100, rejected


# --- schema registry --------------------------------------------------------------------


@contextmanager
def registry(schemas: dict[int, str]) -> Iterator[tuple[str, Counter[str]]]:
    """Serve ``GET /schemas/ids/<id>`` for ``schemas`` (404 otherwise); count requests."""
    requests: Counter[str] = Counter()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests[self.path] += 1
            sid = self.path.removeprefix("/schemas/ids/")
            if not sid.isdigit() or int(sid) not in schemas:
                self.send_error(404)
                return
            body = json.dumps({"schema": schemas[int(sid)]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


V9_TEXT = to_parsing_canonical_form(reference_schema(900))
PACKET_1000 = (LSST / "fink" / "170094456480989258.avro").read_bytes()


def test_registry_schema_is_used_and_cached():
    # Given a registry that serves schema 9.0 under id 900 and under 777 (unknown to the package)
    with registry({900: V9_TEXT, 777: V9_TEXT}) as (url, requests):
        source = SchemaSource(url)
        # When two 900 packets are decoded, Then the registry is asked once
        for name in ("169298432598474793", "169298432598474839"):
            decode_packet((LSST / "fink" / f"{name}.avro").read_bytes(), source)
        assert requests == Counter({"/schemas/ids/900": 1})
        # When a packet says 777, Then it decodes with the registry's schema (the package has none)
        sid, record = decode_packet(b"\x00" + struct.pack(">I", 777) + GOOD[5:], source)
        assert (sid, nan_safe(record)) == (777, nan_safe(reference_decode(GOOD)[1]))
        assert requests["/schemas/ids/777"] == 1


def test_package_is_the_fallback_for_ids_the_registry_lacks():
    with registry({900: V9_TEXT}) as (url, requests):
        source = SchemaSource(url)
        for _ in range(2):
            assert decode_packet(PACKET_1000, source)[0] == 1000
        assert requests == Counter({"/schemas/ids/1000": 1})  # a 404, then the cache
        # an id nobody has is rejected, naming the registry, and not asked again at once
        for _ in range(2):
            with pytest.raises(AlertRejected, match=r"unknown schema id 4242 .*127\.0\.0\.1"):
                decode_packet(b"\x00" + struct.pack(">I", 4242) + GOOD[5:], source)
        assert requests["/schemas/ids/4242"] == 1


def test_package_is_the_fallback_when_the_registry_is_unreachable():
    with socket.socket() as sock:  # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = SchemaSource(f"http://127.0.0.1:{port}", timeout=0.5)
    assert decode_packet(GOOD, source)[0] == 900
    assert decode_packet(PACKET_1000, source)[0] == 1000


def test_configure_sets_the_default_source_of_parse_packet():
    with registry({900: V9_TEXT}) as (url, requests):
        try:
            documents.configure(url)
            assert parse_packet(GOOD, NOW).candid == 169298432598474793
            assert requests == Counter({"/schemas/ids/900": 1})
        finally:
            documents.configure(None)
    assert documents.default_source().registry_url is None
