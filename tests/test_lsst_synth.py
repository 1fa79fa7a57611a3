"""Synthetic Rubin alerts and the replay of LSST folders (pure functions, no servers).

Synthetic packets are made from the shared real packets; the replay is tested
on folders built in a temporary directory from those packets.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import shutil
import tarfile
from pathlib import Path
from typing import Any

import fastavro
import fastavro.schema
import pytest

from boom_tasks.replay.archive import ArchiveError
from boom_tasks.surveys.lsst import LSST
from boom_tasks.surveys.lsst.documents import parse_packet
from boom_tasks.surveys.lsst.packets import SchemaSource, decode_packet, package_schema_dir
from boom_tasks.surveys.lsst.replay import container_packets, count_packets, iter_packets
from boom_tasks.surveys.lsst.synth import (
    HISTORY_ID_BASE,
    HISTORY_ID_SPAN,
    OBJECT_ID_BASE,
    SOURCE_ID_BASE,
    history_id,
    load_sources,
    synth_alerts,
)
from tests.conftest import DATA

LSST_DATA = DATA / "lsst"
FINK = LSST_DATA / "fink"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SCHEMAS = SchemaSource()
#: Largest id of the real packets' diaSources and diaObjects (the 7.x simulation's).
REAL_ID_MAX = 4_000_000_000_000_000_000


def decode(packet: bytes) -> tuple[int, dict[str, Any]]:
    return decode_packet(packet, SCHEMAS)


def same(a: Any, b: Any) -> bool:
    """Deep equality in which NaN equals NaN (Rubin sends NaN for unmeasured floats)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    cos = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(r1 - r2)
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def position(record: dict[str, Any]) -> tuple[float, float]:
    return record["diaSource"]["ra"], record["diaSource"]["dec"]


def test_synthetic_alerts_are_new_distinct_alerts_on_the_sky() -> None:
    # Given every real packet (schemas 7.1, 7.3, 9.0 and 10.0), cycled twice
    sources = load_sources(LSST_DATA)
    n = 2 * len(sources)
    # When that many synthetic alerts are made, one per object
    decoded = [decode(p) for p in synth_alerts(LSST_DATA, n, seed=1)]
    # Then each decodes with its source's schema id, and has new distinct ids
    assert [sid for sid, _ in decoded] == [s.schema_id for s in sources] * 2
    records = [r for _, r in decoded]
    ids = [r["diaSource"]["diaSourceId"] for r in records]
    assert ids == list(range(SOURCE_ID_BASE, SOURCE_ID_BASE + n))
    objects = [r["diaSource"]["diaObjectId"] for r in records]
    assert objects == list(range(OBJECT_ID_BASE, OBJECT_ID_BASE + n))
    assert min(ids) > REAL_ID_MAX and max(ids + objects) < 2**63
    # And each sits somewhere valid on the sky, spread over both hemispheres
    positions = [position(r) for r in records]
    assert all(0.0 <= ra < 360.0 and -90.0 <= dec <= 90.0 for ra, dec in positions)
    assert min(dec for _, dec in positions) < -45 < 45 < max(dec for _, dec in positions)
    # And the broker ingests each as an ordinary object named after its diaObjectId
    for packet, obj in zip(synth_alerts(LSST_DATA, n, seed=1), objects, strict=True):
        docs = parse_packet(packet, NOW)
        assert docs.object_id == str(obj) and docs.alert["ssObjectId"] is None


def test_a_copy_keeps_its_source_content_but_not_its_identity() -> None:
    # Given one full cycle of copies of the real packets
    sources = load_sources(LSST_DATA)
    copies = [decode(p)[1] for p in synth_alerts(LSST_DATA, len(sources), seed=2)]
    changed = {"diaSourceId", "alertId", "diaSource", "diaObject", "prvDiaSources"}
    changed |= {"prvDiaForcedSources", "ssSource", "ssObject", "MPCORB", "mpc_orbits"}
    for src, record in zip(sources, copies, strict=True):
        # Then the copy has its source's fields and, outside identity and place, its values
        assert record.keys() == src.record.keys()
        assert same(
            {k: v for k, v in record.items() if k not in changed},
            {k: v for k, v in src.record.items() if k not in changed},
        )
        moved = {"diaSourceId", "diaObjectId", "ssObjectId", "ra", "dec", "trailRa", "trailDec"}
        moved |= {"psfRa", "psfDec", "dipoleRa", "dipoleDec"}
        old, new = src.record["diaSource"], record["diaSource"]
        assert same(
            {k: old[k] for k in old if k not in moved}, {k: new[k] for k in new if k not in moved}
        )
        # And its solar-system records are gone
        assert all(record.get(k) is None for k in ("ssSource", "ssObject", "MPCORB", "mpc_orbits"))


def test_the_history_moves_and_is_renumbered_with_its_alert() -> None:
    # Given the real alert with the longest history (300 diaSources, 400 forced points)
    sources = load_sources(LSST_DATA)
    index = max(range(len(sources)), key=lambda i: len(sources[i].record["prvDiaSources"] or []))
    src = sources[index]
    # When it becomes a synthetic alert elsewhere on the sky
    _, record = decode(next(synth_alerts(LSST_DATA, 1, seed=5, start=index)))
    ra, dec = position(record)
    obj = record["diaSource"]["diaObjectId"]
    assert separation_deg(ra, dec, src.ra, src.dec) > 1.0 / 3600
    # Then every point keeps its distance to the alert (to a milli-arcsecond), its
    # photometry, and takes the object's id and an id of its own in the history range
    for name, id_key in (
        ("prvDiaSources", "diaSourceId"),
        ("prvDiaForcedSources", "diaForcedSourceId"),
    ):
        new_points, old_points = record[name], src.record[name]
        assert len(new_points) == len(old_points) > 100
        for new, old in zip(new_points, old_points, strict=True):
            before = separation_deg(old["ra"], old["dec"], src.ra, src.dec)
            after = separation_deg(new["ra"], new["dec"], ra, dec)
            assert after == pytest.approx(before, abs=1e-3 / 3600)
            assert (
                same(new["psfFlux"], old["psfFlux"])
                and new["midpointMjdTai"] == old["midpointMjdTai"]
            )
            assert new["diaObjectId"] == obj
            assert new[id_key] == history_id(old[id_key], index)
        assert len({p[id_key] for p in new_points}) == len(new_points)
    # And the diaObject follows: same id, same distance
    old_obj, new_obj = src.record["diaObject"], record["diaObject"]
    assert new_obj["diaObjectId"] == obj
    before = separation_deg(old_obj["ra"], old_obj["dec"], src.ra, src.dec)
    assert separation_deg(new_obj["ra"], new_obj["dec"], ra, dec) == pytest.approx(before, abs=1e-6)


def test_history_ids_are_one_to_one_per_object_and_shifted_between_objects() -> None:
    real = [0, 1, 25401295582003262, 169298432598474793, 3527242430321524769]
    for number in (0, 1, 10**9):
        ids = [history_id(r, number) for r in real]
        assert len(set(ids)) == len(real)
        assert all(
            HISTORY_ID_BASE <= i < HISTORY_ID_BASE + HISTORY_ID_SPAN <= SOURCE_ID_BASE for i in ids
        )
    assert history_id(real[2], 0) != history_id(real[2], 1)


def test_alerts_of_one_object_share_its_id_and_position() -> None:
    # Given three alerts per synthetic object
    records = [decode(p)[1] for p in synth_alerts(FINK, 30, seed=3, alerts_per_object=3)]
    # Then consecutive triples share a diaObjectId, distinct from every other triple's
    groups = [records[i : i + 3] for i in range(0, 30, 3)]
    assert all(len({r["diaSource"]["diaObjectId"] for r in g}) == 1 for g in groups)
    assert len({g[0]["diaSource"]["diaObjectId"] for g in groups}) == 10
    # And an object's detections lie within an arcsecond of each other, while
    # different objects are far apart
    for g in groups:
        first = position(g[0])
        assert all(separation_deg(*first, *position(r)) < 1 / 3600 for r in g[1:])
    firsts = [position(g[0]) for g in groups]
    assert separation_deg(*firsts[0], *firsts[1]) > 1.0
    # And the diaSourceIds stay unique across objects
    assert len({r["diaSource"]["diaSourceId"] for r in records}) == 30


def test_the_same_seed_gives_the_same_bytes_and_another_seed_another_sky() -> None:
    first = list(synth_alerts(FINK, 40, seed=11, alerts_per_object=2))
    again = list(synth_alerts(FINK, 40, seed=11, alerts_per_object=2))
    other = list(synth_alerts(FINK, 40, seed=12, alerts_per_object=2))
    assert first == again
    pos = [position(decode(p)[1]) for p in first]
    pos_other = [position(decode(p)[1]) for p in other]
    assert all(a != b for a, b in zip(pos, pos_other, strict=True))


def test_disjoint_ranges_can_share_a_database() -> None:
    a = [decode(p)[1]["diaSource"] for p in synth_alerts(FINK, 20, alerts_per_object=4)]
    b = [decode(p)[1]["diaSource"] for p in synth_alerts(FINK, 20, alerts_per_object=4, start=20)]
    assert not {s["diaSourceId"] for s in a} & {s["diaSourceId"] for s in b}
    assert not {s["diaObjectId"] for s in a} & {s["diaObjectId"] for s in b}


def test_solar_system_sources_become_ordinary_objects() -> None:
    # Given a real alert of a solar-system object (no diaObject, an ssSource)
    sources = load_sources(FINK)
    index = next(i for i, s in enumerate(sources) if s.record["diaSource"]["ssObjectId"])
    assert sources[index].record["ssSource"] is not None
    # When it is copied
    packet = next(synth_alerts(FINK, 1, start=index))
    # Then the copy names a diaObject and is not a rock
    docs = parse_packet(packet, NOW)
    assert docs.object_id == str(OBJECT_ID_BASE + index)
    assert docs.alert["ssObjectId"] is None and docs.alert["ss_source"] is None
    assert LSST.properties(docs.alert["candidate"], {})["rock"] is False


def test_a_folder_with_nothing_usable_is_refused(tmp_path: Path) -> None:
    (tmp_path / "junk.avro").write_bytes(b"\x00\x00\x00\x03\x84garbage")
    with pytest.raises(ArchiveError, match="no usable LSST packet"):
        synth_alerts(tmp_path, 1)
    with pytest.raises(ValueError, match="alerts_per_object"):
        synth_alerts(FINK, 1, alerts_per_object=0)


def real_record(path: Path) -> tuple[int, dict[str, Any], Any]:
    """A real packet's schema id, record and the package's schema of that id.

    ``fastavro.schema.load_schema`` reads the sub-records from the files beside
    the alert's, and writes a container header that defines them all inline.
    """
    sid, record = decode(path.read_bytes())
    return sid, record, fastavro.schema.load_schema(str(SCHEMAS.package_files()[sid]))


def test_replay_splits_a_container_into_wire_packets(tmp_path: Path) -> None:
    # Given a container of two alerts, written with the package's schema, beside a wire packet
    wire = sorted(FINK.glob("*.avro"))[0]
    sid, record, schema = real_record(sorted((LSST_DATA / "boom").glob("*.avro"))[-1])
    second = {**record, "diaSourceId": record["diaSourceId"] + 1}
    with (tmp_path / "alerts.avro").open("wb") as fo:
        fastavro.writer(fo, schema, [record, second])
    shutil.copy(wire, tmp_path / wire.name)
    # When the folder is replayed
    packets = list(iter_packets(tmp_path))
    # Then each record is a wire packet of the schema's id decoding to the same
    # record, and the wire packet is sent untouched
    assert [name for name, _ in packets] == [wire.name, "alerts.avro#0", "alerts.avro#1"]
    assert packets[0][1] == wire.read_bytes()
    assert packets[1][1][:5] == b"\x00" + sid.to_bytes(4, "big")
    for (_, packet), want in zip(packets[1:], [record, second], strict=True):
        assert decode(packet)[0] == sid and same(decode(packet)[1], want)
    assert count_packets(tmp_path) == 3


def test_rubin_sample_alerts_of_every_version_replay() -> None:
    # Given lsst-alert-packet's fakeAlert.avro of each schema version (3.0 to 11.x)
    folder = package_schema_dir()
    assert folder is not None
    samples = sorted(folder.glob("*/*/sample_data/fakeAlert.avro"))
    assert len(samples) >= 15
    for path in samples:
        # When it is converted, Then it decodes with the id of its folder's version
        ((_, packet),) = container_packets(path.name, path.read_bytes())
        major, minor = path.parent.parent.parent.name, path.parent.parent.name
        sid, record = decode(packet)
        assert sid == int(major) * 100 + int(minor)
        assert same(record, next(iter(fastavro.reader(io.BytesIO(path.read_bytes())))))


def test_the_real_folder_and_its_tarball_replay_unchanged(tmp_path: Path) -> None:
    tarball = tmp_path / "lsst.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(LSST_DATA / "boom", arcname="boom")
    from_folder = dict(iter_packets(LSST_DATA / "boom"))
    assert from_folder == {p.name: p.read_bytes() for p in (LSST_DATA / "boom").glob("*.avro")}
    assert dict(iter_packets(tarball)) == from_folder
    assert count_packets(LSST_DATA) == 110 and count_packets(tarball) is None


def test_a_container_of_another_survey_is_refused(tmp_path: Path) -> None:
    # Given a ZTF packet (an Avro container of schema ztf.alert) among LSST packets
    ztf = sorted((DATA / "ztf" / "boom-402").glob("*.avro"))[0]
    shutil.copy(ztf, tmp_path / ztf.name)
    # When the folder is replayed as LSST, Then it fails naming the file and the schema
    with pytest.raises(ArchiveError, match=rf"{ztf.name}: .*'ztf\.alert', not a Rubin alert"):
        list(iter_packets(tmp_path))


def test_a_damaged_container_or_a_missing_source_is_an_archive_error(tmp_path: Path) -> None:
    _, record, schema = real_record(sorted(FINK.glob("*.avro"))[0])
    buf = io.BytesIO()
    fastavro.writer(buf, schema, [record])
    (tmp_path / "cut.avro").write_bytes(buf.getvalue()[:-5000])
    with pytest.raises(ArchiveError, match=r"cut\.avro: unreadable Avro container"):
        list(iter_packets(tmp_path))
    with pytest.raises(ArchiveError, match="does not exist"):
        iter_packets(tmp_path / "missing")
