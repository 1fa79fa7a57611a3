"""Malformed packets the full fault run met, replayed as regressions (no server but MongoDB)."""

from __future__ import annotations

import copy
import io

import fastavro
import pytest

from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.surveys.ztf import ZTF
from tests.alerts import packet_paths, read_packet

pytestmark = pytest.mark.services


def _rename_candidate_field(packet: bytes, old: str, new: str) -> bytes:
    """Return the packet rewritten with ``candidate.<old>`` named ``<new>`` in its schema.

    A bit flip in the schema's text does this: the packet still decodes, without the field.
    """
    reader = fastavro.reader(io.BytesIO(packet))
    schema, record = copy.deepcopy(reader.writer_schema), next(iter(reader))
    (candidate,) = [f for f in schema["fields"] if f["name"] == "candidate"]
    for f in candidate["type"]["fields"]:
        if f["name"] == old:
            f["name"] = new
    record["candidate"][new] = record["candidate"].pop(old)
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(schema), [record])
    return out.getvalue()


def test_an_alert_without_jd_is_quarantined_and_its_batch_ingested(mongo_db):
    real = [read_packet(p) for p in packet_paths("kowalski")[:4]]
    # Given a batch of real packets, one of which decodes without candidate.jd
    spoiled = _rename_candidate_field(real[3], "jd", "jf")
    # When it is ingested
    result = ingest_packets(mongo_db, ZTF, [*real[:3], spoiled], "malformed")
    # Then that packet is quarantined with the reason, and the others are stored
    assert [r.reason for r in result.rejected] == ["missing or invalid candidate.jd: None"]
    assert len(result.candids) == 3
    assert mongo_db[ZTF.quarantine].count_documents({"reason": {"$regex": "candidate.jd"}}) == 1
