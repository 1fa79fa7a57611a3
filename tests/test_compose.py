"""docker-compose.yaml: one worker service per stage of the chain, checked offline.

No Docker engine here: the file is parsed and checked against the chain, and
``docker compose config`` (or Debian's ``docker-compose config``, which needs no engine
either) must accept it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from boom_tasks.chain import CHAIN, declared_queues
from boom_tasks.settings import load_settings
from boom_tasks.surveys import SURVEYS
from tests.conftest import ROOT
from tests.manifests import queues_of, settings_field, worker_args


def test_compose_has_one_worker_service_per_stage() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert "worker" not in services
    queues = declared_queues(SURVEYS.values(), load_settings(ROOT / "config" / "default.yaml"))
    for stage in CHAIN:
        svc = services[stage.name]
        assert queues_of(svc) == queues[stage.name]
        assert worker_args(svc["command"]).processes == 1
        assert svc["restart"] == "unless-stopped"
        # --scale needs neither a fixed container name nor a published port
        assert "container_name" not in svc and "ports" not in svc
    assert services["scheduler"]["command"] == ["boom-scheduler"]
    names = {n for svc in services.values() for n in (svc.get("environment") or {})}
    boom = {n for n in names if n.startswith("BOOM_")}
    assert boom and all(settings_field(n) for n in boom)


def test_compose_file_is_accepted_by_compose(tmp_path: Path) -> None:
    # `docker compose` needs no engine for `config`; Debian's docker-compose neither.
    docker = shutil.which("docker")
    plugin = docker and subprocess.run([docker, "compose", "version"], capture_output=True)
    if docker and plugin and plugin.returncode == 0:
        cmd = [docker, "compose"]
    elif shutil.which("docker-compose"):
        cmd = ["docker-compose"]
    else:
        pytest.fail("no docker compose: ops/test.sh installs it (ops/test-tools.sh)")
    env = {**os.environ, "BOOM_API_SECRET": "x" * 32}
    compose = str(ROOT / "docker-compose.yaml")
    proc = subprocess.run(
        [*cmd, "-f", compose, "config", "--services"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert {stage.name for stage in CHAIN} | {"scheduler", "bridge", "api"} <= set(
        proc.stdout.split()
    )
    # And it refuses a service that is not a mapping (compose does validate)
    (tmp_path / "bad.yaml").write_text("services:\n  ingest: [dramatiq]\n")
    bad = subprocess.run([*cmd, "-f", str(tmp_path / "bad.yaml"), "config"], capture_output=True)
    assert bad.returncode != 0
