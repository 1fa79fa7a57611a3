"""Provenance on output messages, and the new schema versions old consumers still read."""

from __future__ import annotations

import datetime as dt
import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro
import pytest

from boom_tasks.output.message import build_message
from boom_tasks.output.provenance import (
    LIVE,
    message_provenance,
    model_version,
    read_stack,
)
from boom_tasks.output.schema import decode, encode
from boom_tasks.surveys.lsst import LSST
from boom_tasks.surveys.ztf import ZTF
from tests import test_lsst_output as lsst_case
from tests import test_output_schema as ztf_case

STACK = {
    "boom_tasks_version": "0.1.0",
    "models": [{"name": "acai_h", "version": "acai/acai_h.onnx#0123456789ab"}],
    "catalogs": [{"name": "gcvs", "loaded_at": "2026-11-30T12:00:00+00:00"}],
}


def _schema_file(name: str) -> dict[str, Any]:
    path = resources.files("boom_tasks.output").joinpath("schema", name)
    return fastavro.parse_schema(json.loads(path.read_text()))


def _ztf_message(run: str = "replay-abc") -> dict[str, Any]:
    docs = ztf_case._docs("kowalski", 1)[0]
    passes = ztf_case._passes()
    provenance = message_provenance(STACK, passes, run)
    return build_message(
        ZTF, *ztf_case._stored(docs), passes, ztf_case.TIMES, provenance=provenance
    )


def test_message_provenance_names_run_filters_models_and_catalogs() -> None:
    # Given the passes of a replay
    passes = [{"filter_id": 7, "fid": "v3"}, {"filter_id": "f2", "version": None}]
    # When its provenance is made
    prov = message_provenance(STACK, passes, "r-1")
    # Then the run is the replay's, and each filter carries its version
    assert (prov["run"], prov["replay"]) == ("r-1", True)
    assert prov["filters"] == [
        {"filter_id": "7", "version": "v3"},
        {"filter_id": "f2", "version": None},
    ]
    assert prov["models"] == STACK["models"] and prov["catalogs"] == STACK["catalogs"]
    assert message_provenance(STACK, passes)["replay"] is False


def test_model_version_hashes_the_files(tmp_path: Path) -> None:
    (tmp_path / "a.onnx").write_bytes(b"one")
    first = model_version(tmp_path, ("a.onnx",))
    (tmp_path / "b.onnx").write_bytes(b"two")
    assert first.startswith("a.onnx#") and len(first.split("#")[1]) == 12
    assert model_version(tmp_path, ("b.onnx",)) != first.replace("a.onnx", "b.onnx")
    assert model_version(tmp_path, ("gone.onnx",)) == "gone.onnx#missing"


def test_v1_2_message_carries_provenance_and_a_v1_1_reader_reads_it() -> None:
    # Given a ZTF message of schema 1.2 with its provenance
    message = _ztf_message()
    data = encode(message)
    assert decode(data)["provenance"]["run"] == "replay-abc"
    assert decode(data)["schemavsn"] == "1.2"
    # When a consumer still on schema 1.1 reads it
    old = _schema_file("ztf_results_v1.avsc")
    record = next(iter(fastavro.reader(io.BytesIO(data), reader_schema=old)))
    # Then it gets every field it knows, unchanged, and no provenance
    assert record == {k: v for k, v in message.items() if k != "provenance"}


def test_v1_2_reader_reads_a_v1_1_message_with_null_provenance() -> None:
    # Given a message written by 1.1 (before provenance)
    message = {k: v for k, v in _ztf_message().items() if k != "provenance"}
    buf = io.BytesIO()
    fastavro.writer(buf, _schema_file("ztf_results_v1.avsc"), [{**message, "schemavsn": "1.1"}])
    # When read with 1.2
    new = _schema_file("ztf_results_v1.2.avsc")
    record = next(iter(fastavro.reader(io.BytesIO(buf.getvalue()), reader_schema=new)))
    # Then its provenance is null
    assert record["provenance"] is None and record["candid"] == message["candid"]


def test_lsst_v1_1_message_is_read_by_a_v1_0_reader() -> None:
    # Given an LSST message of schema 1.1 with provenance
    _, alert, aux, cutouts = lsst_case.stored(lsst_case.PACKETS[0])
    passes = lsst_case.passes()
    prov = message_provenance(STACK, passes, LIVE)
    message = build_message(LSST, alert, aux, cutouts, passes, lsst_case.TIMES, provenance=prov)
    data = encode(message)
    assert decode(data)["schemavsn"] == "1.1" and decode(data)["provenance"]["run"] == LIVE
    # When a 1.0 consumer reads it, Then it sees every other field unchanged
    old = _schema_file("lsst_results_v1.avsc")
    record = next(iter(fastavro.reader(io.BytesIO(data), reader_schema=old)))
    assert "provenance" not in record and record["candid"] == message["candid"]
    assert set(record) == set(message) - {"provenance"}


@pytest.mark.services
def test_stack_reads_catalog_load_dates_and_model_versions(services, mongo_db) -> None:
    # Given a catalog whose load finished, and another never loaded
    loaded = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    mongo_db["catalogs_meta"].insert_one(
        {"_id": "gcvs", "status": "complete", "updated_at": loaded}
    )
    # When the provenance of ZTF's stack is read
    stack = read_stack(services, ZTF)
    # Then each configured catalog has its load date, or null
    dates = {c["name"]: c["loaded_at"] for c in stack["catalogs"]}
    assert dates["gcvs"] == "2026-11-30T12:00:00+00:00"
    assert all(v is None for k, v in dates.items() if k != "gcvs")
    # And each configured model a version read from its real file(s)
    versions = {m["name"]: m["version"] for m in stack["models"]}
    assert set(versions) == {m.name for m in services.ml.models["ZTF"]}
    assert all(not v.endswith("#missing") for v in versions.values())
