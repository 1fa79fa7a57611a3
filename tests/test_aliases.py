"""Cross-survey association and joint light curves on real packets and a real database.

A real Rubin packet is re-encoded at the position (and one day after the time) of a
real ZTF alert, so that the two surveys see "the same object".
"""

from __future__ import annotations

import copy
import io
import math
import struct
from pathlib import Path

import fastavro
import pytest

from boom_tasks.crossmatch.stage import crossmatch_batch
from boom_tasks.filter.testing import run_trial
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.surveys.lsst import LSST
from boom_tasks.surveys.lsst.packets import SchemaSource
from boom_tasks.surveys.ztf import ZTF
from tests.alerts import ZTF_DATA, read_packet, reference_record
from tests.conftest import DATA

pytestmark = pytest.mark.services

ZTF_PACKET = ZTF_DATA / "kowalski" / "20231012_2475433850315015009.avro"
MJD_ZERO_JD = 2400000.5

#: An LSST filter keeping alerts whose object ZTF saw too, annotated with ZTF's points.
JOINT = [
    {"$match": {"$expr": {"$gt": [{"$size": "$survey_matches.ZTF"}, 0]}}},
    {
        "$project": {
            "objectId": 1,
            "annotations": {
                "ztf_points": {
                    "$let": {
                        "vars": {"m": {"$arrayElemAt": ["$survey_matches.ZTF", 0]}},
                        "in": {"$size": "$$m.prv_candidates"},
                    }
                }
            },
        }
    },
]


def _rich_lsst_packets() -> list[Path]:
    """Real v10 packets of a diaObject with a long history (the DDF alerts)."""
    out = []
    for path in sorted((DATA / "lsst" / "fink").glob("*.avro")):
        data = path.read_bytes()
        if struct.unpack(">I", data[1:5])[0] != 1000:
            continue
        record = _decode(data)
        if record["diaSource"]["diaObjectId"] and len(record["prvDiaSources"] or []) > 100:
            out.append(path)
    return out


def _decode(packet: bytes) -> dict:
    sid = struct.unpack(">I", packet[1:5])[0]
    return fastavro.schemaless_reader(io.BytesIO(packet[5:]), SchemaSource().get(sid))


def _moved(packet: bytes, ra: float, dec: float, jd: float) -> bytes:
    """Return the packet with its diaSource at (ra, dec) and its times shifted to ``jd``."""
    sid = struct.unpack(">I", packet[1:5])[0]
    record = copy.deepcopy(_decode(packet))
    shift = (jd - MJD_ZERO_JD) - record["diaSource"]["midpointMjdTai"]
    record["diaSource"]["ra"], record["diaSource"]["dec"] = ra, dec
    for point in [
        record["diaSource"],
        *(record["prvDiaSources"] or []),
        *(record["prvDiaForcedSources"] or []),
    ]:
        point["midpointMjdTai"] += shift
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, SchemaSource().get(sid), record)
    return b"\x00" + struct.pack(">I", sid) + buf.getvalue()


def _ingest_and_match(db, survey, packets: list[bytes]) -> list[int]:
    result = ingest_packets(db, survey, packets, "test")
    assert not result.rejected, [r.reason for r in result.rejected]
    crossmatch_batch(db, survey, [], result.candids)
    return result.candids


def test_a_ztf_and_an_lsst_object_at_one_position_get_each_others_alias(mongo_db, settings):
    db = mongo_db
    # Given a real ZTF alert, stored and crossmatched before LSST saw anything there
    ztf = reference_record(read_packet(ZTF_PACKET))
    ra, dec, jd = ztf["candidate"]["ra"], ztf["candidate"]["dec"], ztf["candidate"]["jd"]
    _ingest_and_match(db, ZTF, [read_packet(ZTF_PACKET)])
    assert "aliases" not in db[ZTF.aux].find_one({"_id": ztf["objectId"]})
    # When real Rubin alerts arrive 1 arcsec away (one of them), 3 arcsec away (the other)
    first, second = _rich_lsst_packets()[:2]
    one_arcsec = 1.0 / 3600 / math.cos(math.radians(dec))
    near = _moved(first.read_bytes(), ra + one_arcsec, dec, jd + 1.0)
    far = _moved(second.read_bytes(), ra + 3 * one_arcsec, dec, jd + 1.0)
    near_id, far_id = (str(_decode(p)["diaSource"]["diaObjectId"]) for p in (near, far))
    candids = _ingest_and_match(db, LSST, [near, far])
    # Then the near one and the ZTF object name each other; the far one has no alias
    assert db[LSST.aux].find_one({"_id": near_id})["aliases"] == {"ZTF": [ztf["objectId"]]}
    assert "aliases" not in db[LSST.aux].find_one({"_id": far_id})
    assert db[ZTF.aux].find_one({"_id": ztf["objectId"]})["aliases"] == {"LSST": [near_id]}
    # And a filter reading the joint light curve passes it with ZTF's public points as of
    # the LSST alert, as counted independently from the stored ZTF history
    report = run_trial(db, LSST, JOINT, [], candids, settings.filters)
    (passed,) = report.passed
    lsst_jd = db[LSST.alerts].find_one({"_id": passed["_id"]})["candidate"]["jd"]
    ztf_history = db[ZTF.aux].find_one({"_id": ztf["objectId"]})["prv_candidates"]
    expected = [p for p in ztf_history if p["programid"] == 1 and 0 <= lsst_jd - p["jd"] < 365]
    assert len(expected) > 10
    assert passed["annotations"] == {"ztf_points": len(expected)}
    assert passed["objectId"] == near_id


def test_association_is_found_whichever_survey_came_first_and_respects_footprints(
    mongo_db,
):
    db = mongo_db
    ztf = reference_record(read_packet(ZTF_PACKET))
    ra, dec, jd = ztf["candidate"]["ra"], ztf["candidate"]["dec"], ztf["candidate"]["jd"]
    (first,) = _rich_lsst_packets()[:1]
    # Given an LSST object stored first, at the ZTF object's position
    lsst = _moved(first.read_bytes(), ra, dec, jd - 1.0)
    lsst_id = str(_decode(lsst)["diaSource"]["diaObjectId"])
    _ingest_and_match(db, LSST, [lsst])
    # When the ZTF alert arrives later, Then the association is made from the ZTF side
    _ingest_and_match(db, ZTF, [read_packet(ZTF_PACKET)])
    assert db[ZTF.aux].find_one({"_id": ztf["objectId"]})["aliases"] == {"LSST": [lsst_id]}
    assert db[LSST.aux].find_one({"_id": lsst_id})["aliases"] == {"ZTF": [ztf["objectId"]]}
    # And replaying both changes nothing
    before = list(db[ZTF.aux].find()) + list(db[LSST.aux].find())
    _ingest_and_match(db, LSST, [lsst])
    _ingest_and_match(db, ZTF, [read_packet(ZTF_PACKET)])
    assert list(db[ZTF.aux].find()) + list(db[LSST.aux].find()) == before


def _moved_ztf(packet: bytes, ra: float, dec: float) -> bytes:
    """Return a ZTF container packet with its candidate at (ra, dec), its own schema kept."""
    reader = fastavro.reader(io.BytesIO(packet))
    record = next(reader)
    record["candidate"]["ra"], record["candidate"]["dec"] = ra, dec
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(reader.writer_schema), [record])
    return buf.getvalue()


def test_no_association_outside_the_other_surveys_footprint(mongo_db):
    db = mongo_db
    # Given a ZTF alert placed at dec -45, south of what Palomar can see (ZTF: dec >= -30)
    ztf = _moved_ztf(read_packet(ZTF_PACKET), 150.0, -45.0)
    _ingest_and_match(db, ZTF, [ztf])
    # When an LSST object appears 1 arcsec away
    (first,) = _rich_lsst_packets()[:1]
    lsst = _moved(first.read_bytes(), 150.0 + 1 / 3600 / math.cos(math.radians(45)), -45.0, 2.46e6)
    _ingest_and_match(db, LSST, [lsst])
    # Then its search skips ZTF there: neither side has an alias
    assert db[LSST.aux].count_documents({"aliases": {"$exists": True}}) == 0
    assert db[ZTF.aux].count_documents({"aliases": {"$exists": True}}) == 0
    # While the same pair inside both footprints is associated (the check is not vacuous)
    other = ZTF_DATA / "kowalski" / "20231012_2475433850315015008.avro"
    _ingest_and_match(db, ZTF, [_moved_ztf(read_packet(other), 150.0, -20.0)])
    (_, second) = _rich_lsst_packets()[:2]
    _ingest_and_match(db, LSST, [_moved(second.read_bytes(), 150.0, -20.0 + 1 / 3600, 2.46e6)])
    assert db[LSST.aux].count_documents({"aliases.ZTF": {"$exists": True}}) == 1


def test_an_lsst_message_carries_the_ztf_object_and_its_photometry(mongo_db):
    from boom_tasks.output.matches import read_matched, survey_matches
    from boom_tasks.output.message import build_message
    from boom_tasks.output.schema import decode, encode

    db = mongo_db
    # Given an LSST alert associated with a real ZTF object
    ztf = reference_record(read_packet(ZTF_PACKET))
    ra, dec, jd = ztf["candidate"]["ra"], ztf["candidate"]["dec"], ztf["candidate"]["jd"]
    _ingest_and_match(db, ZTF, [read_packet(ZTF_PACKET)])
    (first,) = _rich_lsst_packets()[:1]
    one_arcsec = 1.0 / 3600 / math.cos(math.radians(dec))
    (candid,) = _ingest_and_match(db, LSST, [_moved(first.read_bytes(), ra + one_arcsec, dec, jd)])
    # When its message is built as the output stage builds it
    alert = db[LSST.alerts].find_one({"_id": candid})
    aux = db[LSST.aux].find_one({"_id": alert["objectId"]})
    matches = survey_matches(aux, alert["candidate"]["jd"], read_matched(db, LSST, [aux]))
    message = decode(encode(build_message(LSST, alert, aux, None, [], {}, survey_matches=matches)))
    # Then it names the ZTF object 1 arcsec away and its public detections up to the alert
    (match,) = message["survey_matches"]
    assert (match["survey"], match["objectId"]) == ("ZTF", ztf["objectId"])
    assert match["distance_arcsec"] == pytest.approx(1.0, abs=0.01)
    stored = db[ZTF.aux].find_one({"_id": ztf["objectId"]})["prv_candidates"]
    expected = sorted(
        p["jd"] for p in stored if p["programid"] == 1 and p["jd"] <= alert["candidate"]["jd"]
    )
    assert [p["jd"] for p in match["prv_candidates"]] == expected and expected
    assert {p["isdiffpos"] for p in match["prv_candidates"]} <= {True, False}
    # And the ZTF object's message names the LSST object the same way
    ztf_alert = db[ZTF.alerts].find_one({"_id": ztf["candid"]})
    ztf_aux = db[ZTF.aux].find_one({"_id": ztf["objectId"]})
    ztf_jd = ztf_alert["candidate"]["jd"]
    back = survey_matches(ztf_aux, ztf_jd, read_matched(db, ZTF, [ztf_aux]))
    ztf_message = decode(
        encode(build_message(ZTF, ztf_alert, ztf_aux, None, [], {}, survey_matches=back))
    )
    (lsst_match,) = ztf_message["survey_matches"]
    assert (lsst_match["survey"], lsst_match["objectId"]) == ("LSST", alert["objectId"])
    # (the LSST light curve is dated at the ZTF alert's time: points after it are left out)
    lsst_points = db[LSST.aux].find_one({"_id": alert["objectId"]})["prv_candidates"]
    assert len(lsst_match["prv_candidates"]) == sum(p["jd"] <= ztf_jd for p in lsst_points) > 0
