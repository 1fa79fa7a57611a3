"""Synthetic alerts: many new, distinct, decodable packets made from the real ones.

Pure functions on the shared real packets: no server needed.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import Any

import fastavro
import pytest

from boom_tasks.alert.avro import decode_first_record
from boom_tasks.replay.archive import ArchiveError
from boom_tasks.surveys.ztf.synth import CANDID_BASE, load_sources, object_id, synth_alerts
from tests.conftest import ZTF_DATA

FINK = ZTF_DATA / "fink-20181129"  # 479 alerts of one night, schema 3.2
OBJECT_ID = re.compile(r"^ZTF\d{2}[a-z]{7}$")


def read(packet: bytes) -> tuple[dict[str, Any], Any]:
    """Decode with fastavro's own reader: the record and the embedded writer schema."""
    reader = fastavro.reader(io.BytesIO(packet))
    return next(iter(reader)), reader.writer_schema  # type: ignore[return-value]


def keys(record: dict[str, Any]) -> dict[str, Any]:
    """The field set of an alert: top level, candidate, and each history entry."""
    return {
        "top": set(record),
        "candidate": set(record["candidate"]),
        "prv": [set(p) for p in record.get("prv_candidates") or []],
    }


def same(a: Any, b: Any) -> bool:
    """Equal values, counting NaN (missing magnitudes in old schemas) as equal to NaN."""
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return both_nan or a == b


def separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    cos = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(r1 - r2)
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def test_synthetic_alerts_are_distinct_decodable_alerts_on_the_sky():
    # Given the real packets of every schema version in the shared data
    n = 1200

    # When that many synthetic alerts are made, one per object
    records = [read(p)[0] for p in synth_alerts(ZTF_DATA, n, seed=1)]

    # Then each decodes, with its own candid and a ZTF-shaped objectId of its own
    candids = [r["candid"] for r in records]
    assert candids == list(range(CANDID_BASE, CANDID_BASE + n))
    assert all(r["candidate"]["candid"] == r["candid"] for r in records)
    object_ids = [r["objectId"] for r in records]
    assert len(set(object_ids)) == n
    assert all(OBJECT_ID.match(o) for o in object_ids)
    # And each sits somewhere valid on the sky, spread over both hemispheres
    positions = [(r["candidate"]["ra"], r["candidate"]["dec"]) for r in records]
    assert all(0.0 <= ra < 360.0 and -90.0 <= dec <= 90.0 for ra, dec in positions)
    assert min(dec for _, dec in positions) < -45 < 45 < max(dec for _, dec in positions)


def usable_real_alerts(folder: Path) -> list[tuple[dict[str, Any], Any]]:
    """Real packets that decode and name their object, in sorted order, as decoded."""
    usable = []
    for path in sorted(folder.rglob("*.avro")):
        try:
            record, schema = read(path.read_bytes())
        except Exception:  # the corrupt ones
            continue
        if record.get("objectId"):
            usable.append((record, schema))
    return usable


def test_a_synthetic_alert_keeps_its_source_structure_schema_and_content():
    # Given the usable real packets of every version, in the order they are cycled through
    sources = usable_real_alerts(ZTF_DATA)
    assert len({r.get("schemavsn") for r, _ in sources}) >= 8

    # When one full cycle of synthetic alerts is made
    packets = list(synth_alerts(ZTF_DATA, len(sources), seed=2))

    # Then each has its source's field set and writer schema, and the same content
    # except identity and position (cutouts and photometry untouched)
    moved = {"candid", "objectId", "candidate", "prv_candidates"}
    for packet, (src, src_schema) in zip(packets, sources, strict=True):
        record, schema = read(packet)
        assert keys(record) == keys(src)
        assert schema == src_schema
        assert {k: v for k, v in record.items() if k not in moved} == {
            k: v for k, v in src.items() if k not in moved
        }
        unchanged = set(record["candidate"]) - {"ra", "dec", "candid"}
        assert all(same(record["candidate"][k], src["candidate"][k]) for k in unchanged)
        # And the broker's own decoder reads it too
        assert decode_first_record(packet)["candid"] == record["candid"]


def test_history_entries_move_with_their_alert():
    # Given a real alert whose history holds detections near it (schema 4.02)
    source = ZTF_DATA / "boom-402"
    src = load_sources(source)[0]
    detections = [p for p in src.record["prv_candidates"] if p.get("ra") is not None]
    assert detections

    # When it becomes a synthetic alert elsewhere on the sky
    record, _ = read(next(synth_alerts(source, 1, seed=5)))
    cand = record["candidate"]

    # Then each past detection is as far from the new position as it was from the old
    # one (to a milli-arcsecond), and upper limits stay without a position
    for new, old in zip(record["prv_candidates"], src.record["prv_candidates"], strict=True):
        if old.get("ra") is None:
            assert new.get("ra") is None and new == old
            continue
        before = separation_deg(old["ra"], old["dec"], src.ra, src.dec)
        after = separation_deg(new["ra"], new["dec"], cand["ra"], cand["dec"])
        assert after == pytest.approx(before, abs=1e-3 / 3600)
        assert new["jd"] == old["jd"] and new["magpsf"] == old["magpsf"]
    assert separation_deg(cand["ra"], cand["dec"], src.ra, src.dec) > 1.0 / 3600


def test_the_same_seed_gives_the_same_bytes_and_another_seed_another_sky():
    # Given the same arguments twice, and once with another seed
    first = list(synth_alerts(FINK, 50, seed=11, alerts_per_object=2))
    again = list(synth_alerts(FINK, 50, seed=11, alerts_per_object=2))
    other = list(synth_alerts(FINK, 50, seed=12, alerts_per_object=2))

    # Then the same seed reproduces every byte, and another seed moves every object
    assert first == again
    pos = [(r["candidate"]["ra"], r["candidate"]["dec"]) for r in map(decode_first_record, first)]
    pos_other = [
        (r["candidate"]["ra"], r["candidate"]["dec"]) for r in map(decode_first_record, other)
    ]
    assert all(a != b for a, b in zip(pos, pos_other, strict=True))


def test_alerts_of_one_object_share_its_id_and_position():
    # Given three alerts per synthetic object
    records = list(map(decode_first_record, synth_alerts(FINK, 30, seed=3, alerts_per_object=3)))

    # Then consecutive triples share an objectId, distinct from every other triple's
    groups = [records[i : i + 3] for i in range(0, 30, 3)]
    assert all(len({r["objectId"] for r in g}) == 1 for g in groups)
    assert len({g[0]["objectId"] for g in groups}) == 10
    # And an object's detections lie within an arcsecond of each other, while
    # different objects are far apart
    for g in groups:
        c = [(r["candidate"]["ra"], r["candidate"]["dec"]) for r in g]
        assert separation_deg(*c[0], *c[1]) < 1 / 3600
        assert separation_deg(*c[0], *c[2]) < 1 / 3600
    firsts = [(g[0]["candidate"]["ra"], g[0]["candidate"]["dec"]) for g in groups]
    assert separation_deg(*firsts[0], *firsts[1]) > 1.0
    # And the candids stay unique across objects
    assert len({r["candid"] for r in records}) == 30


def test_disjoint_ranges_can_share_a_database():
    # Given two streams made from the same packets with disjoint index ranges
    a = list(map(decode_first_record, synth_alerts(FINK, 20, alerts_per_object=4)))
    b = list(map(decode_first_record, synth_alerts(FINK, 20, alerts_per_object=4, start=20)))

    # Then no candid and no objectId is shared between them
    assert not {r["candid"] for r in a} & {r["candid"] for r in b}
    assert not {r["objectId"] for r in a} & {r["objectId"] for r in b}


def test_unusable_source_packets_are_skipped():
    # Given a folder mixing prototype packets with no objectId and usable ones
    folder = ZTF_DATA / "ztf-avro-alert"

    # When alerts are made from it
    records = list(map(decode_first_record, synth_alerts(folder, 40)))

    # Then only packets with an objectId served (16 of the 22)
    assert len(load_sources(folder)) == 16
    assert all(OBJECT_ID.match(r["objectId"]) for r in records)


def test_a_folder_with_nothing_usable_is_refused():
    # Given only packets that are corrupt in their source repository
    # When alerts are asked of them
    # Then the call itself fails, saying nothing could serve
    with pytest.raises(ArchiveError, match="no usable ZTF packet"):
        synth_alerts(ZTF_DATA / "corrupt", 1)


def test_object_ids_count_in_base_26():
    # Given object numbers at the edges of each letter
    # Then they map to ZTF-shaped ids, a-z per place, and refuse what does not fit
    assert object_id(0) == "ZTF99aaaaaaa"
    assert object_id(27) == "ZTF99aaaaabb"
    assert object_id(26**7 - 1) == "ZTF99zzzzzzz"
    with pytest.raises(ValueError):
        object_id(26**7)
