"""The main job (``boom night``, what ./ops/night.sh runs) on real services."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from boom_tasks.surveys.ztf import ZTF
from tests.alerts import packet_paths
from tests.conftest import ROOT

pytestmark = pytest.mark.services


def test_boom_night_replays_a_local_folder_and_reports_what_it_ingested(mongo_db, tmp_path):
    # Given a small local night: real alerts plus two corrupt packets, in nested folders
    night = tmp_path / "night"
    for folder in ("kowalski", "corrupt"):
        (night / folder).mkdir(parents=True)
        for path in packet_paths(folder):
            shutil.copy(path, night / folder / path.name)
    n_good = len(packet_paths("kowalski"))
    # (a night nobody else uses, so its topic starts empty)
    date = f"{random.randint(2019, 2023)}{random.randint(1, 12):02d}{random.randint(1, 28):02d}"
    # When the main job runs on it with one worker process
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "boom"),
            "night",
            "ZTF",
            "--date",
            date,
            "--from",
            str(night),
            "--workers",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Then it exits 0 and reports exactly what MongoDB now holds
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"{ZTF.alerts}: {n_good} alerts" in out
    assert mongo_db[ZTF.alerts].count_documents({}) == n_good
    objects = len(mongo_db[ZTF.alerts].distinct("objectId"))
    assert f"{ZTF.aux}: {objects} objects" in out
    assert f"{ZTF.quarantine}: 2 packets" in out and "Avro decoding failed" in out
    # And every alert went through crossmatch and ML before the workers were stopped
    assert f"enriched (properties, classifications): {n_good} alerts" in out
    assert mongo_db[ZTF.alerts].count_documents({"enriched_at": {"$exists": True}}) == n_good
    assert mongo_db[ZTF.aux].count_documents({"cross_matches": {"$exists": False}}) == 0
    # And the closing report says what the science actor studied, as MongoDB holds it
    studied = mongo_db[ZTF.alerts].count_documents({"science.exgal_transients": {"$exists": True}})
    assert (
        f"science actor exgal_transients: {studied} alerts, published to ZTF_exgal_transients"
        in out
    )
