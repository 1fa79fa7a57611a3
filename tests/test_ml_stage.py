"""The model registry and the ML stage, on the real models and real alerts."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from boom_tasks.ingest.history import merge_history
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.ml.config import ACAI_FEATURES, DEFAULT_MODELS, MLSettings, ModelInput, ModelSpec
from boom_tasks.ml.errors import ModelConfigError
from boom_tasks.ml.predict import AlertContext, predict
from boom_tasks.ml.registry import load_model, load_models
from boom_tasks.ml.stage import enrich_batch, stamps_needed
from boom_tasks.settings import load_settings
from boom_tasks.surveys import ZTF
from boom_tasks.surveys.ztf.packets import parse_packet
from tests.alerts import packet_paths, read_packet
from tests.conftest import DATA, ROOT

MODELS = DATA / "models"
ANOMALY, ACAI = DEFAULT_MODELS["ZTF"]


def _acai(**changes) -> ModelSpec:
    return ACAI.model_copy(update=changes)


# --- registry: every mistake fails at load, with the model and input named -------------


def test_the_shipped_models_load_and_fit_their_files():
    models = load_models(MLSettings(), "ZTF", MODELS)
    assert [m.spec.name for m in models] == ["anomaly_score", "acai_h"]
    assert sorted(models[0].sessions) == [1, 2]


def test_a_wrong_input_shape_fails_at_load_with_a_clear_message():
    wrong = ModelInput(name="features", kind="candidate", fields=ACAI_FEATURES[:24])
    spec = _acai(inputs=[wrong, ACAI.inputs[1]])
    with pytest.raises(ModelConfigError) as e:
        load_model(spec, MODELS)
    assert "model acai_h: input 'features' (candidate) would be (N, 24)" in str(e.value)
    assert "expects ['unk__64', 25]" in str(e.value)


def test_a_wrong_cutout_size_fails_at_load():
    triplets = ACAI.inputs[1].model_copy(update={"size": 64})
    with pytest.raises(ModelConfigError, match=r"'triplets' \(cutouts\) would be \(N, 64, 64, 3\)"):
        load_model(_acai(inputs=[ACAI.inputs[0], triplets]), MODELS)


def test_a_features_file_of_the_wrong_length_fails_at_load(tmp_path):
    (tmp_path / "fink_aad").mkdir()
    for name in ("forest_r_AAD.onnx", "forest_g_AAD.onnx", "g_means.csv"):
        (tmp_path / "fink_aad" / name).symlink_to(MODELS / "fink_aad" / name)
    lines = (MODELS / "fink_aad" / "r_means.csv").read_text().splitlines()
    (tmp_path / "fink_aad" / "r_means.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ModelConfigError, match=r"'X' \(lightcurve\) would be \(N, 17\)"):
        load_model(ANOMALY, tmp_path)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"file": "acai/missing.onnx"}, "ONNX file not found"),
        ({"output": "probability"}, "no output 'probability'"),
        ({"inputs": [ACAI.inputs[0]]}, r"ONNX inputs not configured: \['triplets'\]"),
    ],
)
def test_other_config_mistakes_fail_at_load(changes, message):
    with pytest.raises(ModelConfigError, match=message):
        load_model(_acai(**changes), MODELS)


def test_a_new_model_is_a_config_entry_and_a_file(tmp_path):
    # Given a config that adds a model (here the ACAI file again, under another name)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "ml:\n  models_dir: " + str(MODELS) + "\n  models:\n    ZTF:\n"
        "      - name: acai_again\n        file: acai/acai_h.d1_dnn_20201130.onnx\n"
        "        inputs:\n"
        "          - {name: features, kind: candidate, fields: ["
        + ", ".join(ACAI_FEATURES)
        + "]}\n"
        "          - {name: triplets, kind: cutouts, size: 63,\n"
        "             cutouts: [cutoutScience, cutoutTemplate, cutoutDifference]}\n"
    )
    # When the settings are loaded and the models built, no code involved
    ml = load_settings(cfg, environ={}).ml
    (model,) = load_models(ml, "ZTF", Path(ml.models_dir))
    # Then it scores alerts like the shipped entry does
    alerts = [_context(read_packet(p)) for p in packet_paths("boom-402")]
    shipped = load_model(ACAI, MODELS)
    assert predict(model, alerts).scores == predict(shipped, alerts).scores


def test_a_worker_with_a_bad_model_entry_refuses_to_start(services):
    env = {**os.environ, "BOOM_ML__MODELS_DIR": "/nonexistent"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dramatiq"), "boom_tasks.actors", "--processes", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 78
    assert "worker cannot start: model anomaly_score: ONNX file not found" in proc.stderr


# --- the stage on real services ------------------------------------------------------------


def _context(packet: bytes) -> AlertContext:
    """What a broker sees of one packet alone: its own candidate, history and cutouts."""
    docs = parse_packet(packet, dt.datetime.now(dt.UTC))
    history = merge_history(None, [docs.history])
    return AlertContext(
        docs.candid,
        docs.alert["candidate"],
        history["prv_candidates"],
        history["prv_nondetections"],
        docs.cutouts,
        docs.alert.get("schemavsn"),
    )


FOLDERS = ["kowalski", "boom-402", "fink-20181129", "ampel-ztf-20210720", "ampel-ztf"]


@pytest.fixture(scope="module")
def enriched(services):
    import pymongo

    db = pymongo.MongoClient(services.mongo.uri)[f"{services.mongo.database}_ml"]
    for name in db.list_collection_names():
        db.drop_collection(name)
    packets = [read_packet(p) for folder in FOLDERS for p in packet_paths(folder)]
    candids = ingest_packets(db, ZTF, packets, "ml").candids
    models = load_models(MLSettings(), "ZTF", MODELS)
    result = enrich_batch(db, ZTF, models, candids)
    yield db, models, candids, result, packets
    db.client.drop_database(db.name)


def test_every_alert_gets_properties_and_scores_or_a_reason(enriched):
    db, _, candids, result, _ = enriched
    assert result.alerts == len(candids)
    docs = list(
        db[ZTF.alerts].find(
            {},
            {
                "properties": 1,
                "classifications": 1,
                "classifications_skipped": 1,
                "candidate.drb": 1,
            },
        )
    )
    assert len(docs) == len(candids)
    for d in docs:
        assert {"star", "near_brightstar", "rock", "stationary", "photstats"} <= set(
            d["properties"]
        )
        assert np.isfinite(d["classifications"]["anomaly_score"])
        acai = d["classifications"].get("acai_h")
        reason = d.get("classifications_skipped", {}).get("acai_h")
        # acai_h: a score in [0, 1], or the reason it was skipped, never both or neither
        assert (acai is None) != (reason is None), d["_id"]
        if acai is not None:
            assert 0.0 <= acai <= 1.0
        elif "drb" not in d["candidate"]:
            assert reason.startswith("missing candidate field(s): drb")
    assert result.scored["acai_h"] >= 40 and result.skipped["acai_h"] >= 400


def test_scores_are_what_the_packet_alone_gives_and_deterministic(enriched):
    # The stage reads the light curve from aux, cut at the alert's jd: for the newest alert
    # of an object, that is the packet's own history, so the score must be the same.
    db, models, _, _, _ = enriched
    paths = packet_paths("kowalski") + packet_paths("boom-402")
    contexts = [_context(read_packet(p)) for p in paths]
    newest = {}
    for c in contexts:
        oid = db[ZTF.alerts].find_one({"_id": c.candid}, {"objectId": 1})["objectId"]
        if oid not in newest or c.candidate["jd"] > newest[oid].candidate["jd"]:
            newest[oid] = c
    assert newest
    for model in models:
        alone = predict(model, list(newest.values()))
        for c in newest.values():
            stored = (
                db[ZTF.alerts].find_one({"_id": c.candid})["classifications"].get(model.spec.name)
            )
            assert stored == alone.scores.get(c.candid), (model.spec.name, c.candid)


def test_a_redelivered_batch_is_skipped_and_a_redo_writes_the_same_values(enriched):
    db, models, candids, _, _ = enriched
    before = {d["_id"]: d for d in db[ZTF.alerts].find({}, {"properties": 1, "classifications": 1})}
    assert enrich_batch(db, ZTF, models, candids).alerts == 0
    assert enrich_batch(db, ZTF, models, candids, redo=True).alerts == len(candids)
    after = {d["_id"]: d for d in db[ZTF.alerts].find({}, {"properties": 1, "classifications": 1})}
    assert after == before


def test_the_stage_reads_only_the_stamps_the_models_use():
    # Given the shipped models (acai reads all three stamps) and a variant reading two
    models = load_models(MLSettings(), "ZTF", MODELS)
    two = ACAI.inputs[1].model_copy(update={"cutouts": ["cutoutScience", "cutoutDifference"]})
    spec = _acai(inputs=[ACAI.inputs[0], two])
    # Then the cutouts read are those stamps, and none without a cutout model
    assert stamps_needed(models) == ["cutoutDifference", "cutoutScience", "cutoutTemplate"]
    assert stamps_needed([_Loaded(spec)]) == ["cutoutDifference", "cutoutScience"]
    assert stamps_needed([m for m in models if not m.spec.needs_cutouts()]) == []


class _Loaded:
    """Just the spec of a loaded model: all :func:`stamps_needed` reads."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
