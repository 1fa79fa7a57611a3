"""The Kubernetes manifests (ops/k8s), checked offline (docker-compose: test_compose.py).

Each overlay is rendered by the real ``kustomize build`` (installed from its Go module
by ops/install-k8s-tools.sh) and every object is validated: core objects against the
Kubernetes API schemas of the kubernetes-validate wheel (strict: an unknown field is an
error), ScaledObjects against KEDA's own CRD schema (from KEDA's Go module), made strict
the same way. Then what the manifests say is checked against the code: every Dramatiq
queue of the chain has a worker Deployment and a ScaledObject on its Valkey list, every
environment variable names a real settings field, the cluster config is the default one
but for its addresses. Only the last test needs a server: it checks, on the real
Valkey, that the lists the ScaledObjects measure are where Dramatiq puts the messages.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from boom_tasks.broker import NAMESPACE
from boom_tasks.chain import declared_queues
from boom_tasks.settings import load_settings
from boom_tasks.surveys import SURVEYS
from tests.conftest import ROOT
from tests.manifests import dramatiq_variable, queues_of, settings_field, worker_args

K8S = ROOT / "ops" / "k8s"
OVERLAYS = ("local", "production")
#: Kubernetes version the manifests are validated against (KEDA 2.18 is built on its API).
KUBERNETES_VERSION = "1.33.0"
#: Environment variables read by something other than the settings.
CONFIG_PATH_VAR = "BOOM_CONFIG"
#: Keys of boom.yaml that differ from config/default.yaml in the cluster.
CLUSTER_KEYS = {
    ("valkey", "host"),
    ("kafka", "bootstrap_servers"),
    ("mongo", "uri"),
    ("ml", "models_dir"),
    ("api", "host"),
    ("dashboard", "host"),
}


@pytest.fixture(scope="session")
def tools() -> tuple[Path, Path, Path]:
    """Install (or find) kustomize, KEDA's ScaledObject CRD and its Redis scaler's source.

    Fails (never skips) if they cannot be had.
    """
    proc = subprocess.run(
        [str(ROOT / "ops" / "install-k8s-tools.sh")], capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        pytest.fail(f"ops/install-k8s-tools.sh failed:\n{proc.stderr}", pytrace=False)
    kustomize, crd, scaler = proc.stdout.split()
    return Path(kustomize), Path(crd), Path(scaler)


def build(kustomize: Path, path: Path) -> list[dict[str, Any]]:
    """Render a kustomization with ``kustomize build``; fail with its message if it cannot."""
    proc = subprocess.run([str(kustomize), "build", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, f"kustomize build {path}: {proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="session")
def rendered(tools: tuple[Path, Path, Path]) -> dict[str, list[dict[str, Any]]]:
    return {name: build(tools[0], K8S / "overlays" / name) for name in OVERLAYS}


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Reject unknown fields where the CRD lists its fields, as ``kubectl --validate=strict``."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@pytest.fixture(scope="session")
def scaledobject_schema(tools: tuple[Path, Path, Path]) -> dict[str, Any]:
    crd = yaml.safe_load(tools[1].read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return _strict(version["schema"]["openAPIV3Schema"])


def validate(obj: dict[str, Any], scaledobject_schema: dict[str, Any]) -> None:
    """Validate one rendered object; raise on an invalid one or a kind with no schema."""
    if obj["apiVersion"] == "keda.sh/v1alpha1" and obj["kind"] == "ScaledObject":
        jsonschema.validate(obj, scaledobject_schema)
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def invalid(obj: dict[str, Any], scaledobject_schema: dict[str, Any]) -> str | None:
    """Return why an object is rejected, or None if it is valid."""
    try:
        validate(obj, scaledobject_schema)
    except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as e:
        return str(e).splitlines()[0]
    return None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_objects_are_valid(rendered, scaledobject_schema, overlay: str) -> None:
    # Given the overlay rendered by kustomize
    objects = rendered[overlay]
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "StatefulSet", "Service", "ScaledObject", "ConfigMap"} <= kinds
    # Then every object passes its schema (an unknown kind raises SchemaNotFoundError)
    errors = {
        f"{o['kind']}/{o['metadata']['name']}": invalid(o, scaledobject_schema) for o in objects
    }
    assert {k: e for k, e in errors.items() if e} == {}
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {
        "boom-local" if overlay == "local" else "boom"
    }


def test_broken_manifests_are_rejected(tools, scaledobject_schema, tmp_path: Path) -> None:
    # Given an overlay of the real base with two mistakes: a replica count as text, and
    # a misspelt ScaledObject field (maxReplicas for maxReplicaCount)
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "namespace": "broken",
                "resources": [os.path.relpath(K8S / "base", tmp_path)],
                "patches": [
                    {
                        "target": {"kind": "Deployment", "name": "api"},
                        "patch": "- {op: replace, path: /spec/replicas, value: two}",
                    },
                    {
                        "target": {"kind": "ScaledObject", "name": "worker-ztf-ml"},
                        "patch": "- {op: add, path: /spec/maxReplicas, value: 3}",
                    },
                ],
            }
        )
    )
    # When it is rendered and validated
    objects = build(tools[0], tmp_path)
    rejected = {
        f"{o['kind']}/{o['metadata']['name']}"
        for o in objects
        if invalid(o, scaledobject_schema) is not None
    }
    # Then exactly the two broken objects are rejected
    assert rejected == {"Deployment/api", "ScaledObject/worker-ztf-ml"}
    # And a kustomization naming a missing file does not render at all
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    proc = subprocess.run([str(tools[0]), "build", str(tmp_path)], capture_output=True)
    assert proc.returncode != 0


def redis_trigger_keys(scaler_source: str) -> set[str]:
    """Return the metadata keys KEDA's Redis scaler reads from a trigger's metadata.

    They are the ``keda:"name=a;b, order=...triggerMetadata..."`` tags of its struct.
    """
    keys: set[str] = set()
    for names, order in re.findall(r'keda:"name=([^,"]+),\s*order=([^,"]+)', scaler_source):
        if "triggerMetadata" in order:
            keys |= {n.strip() for n in names.split(";")}
    return keys


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_trigger_metadata_keys_are_known_to_keda(tools, rendered, overlay: str) -> None:
    # The CRD leaves a trigger's metadata free-form: a misspelt key would be ignored
    known = redis_trigger_keys(tools[2].read_text())
    assert {"address", "listName", "listLength", "activationListLength"} <= known
    assert "listLenght" not in known
    used = {
        key
        for o in rendered[overlay]
        if o["kind"] == "ScaledObject"
        for t in o["spec"]["triggers"]
        for key in t["metadata"]
    }
    assert used and used <= known


def test_workers_yaml_is_generated_from_the_chain() -> None:
    # ops/k8s/workers.py derives base/workers.yaml from CHAIN and SURVEYS
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), str(K8S / "workers.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_queue_has_a_worker_and_a_scaler(rendered, overlay: str) -> None:
    objects = rendered[overlay]
    workers = {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0]
        for o in objects
        if o["kind"] == "Deployment"
    }
    scalers = {
        o["spec"]["scaleTargetRef"]["name"]: o for o in objects if o["kind"] == "ScaledObject"
    }
    cluster = load_settings(K8S / "base" / "boom.yaml", environ={})
    expected = {q for qs in declared_queues(SURVEYS.values(), cluster).values() for q in qs}
    served: set[str] = set()
    for name, container in workers.items():
        if worker_args(container.get("command") or []) is None:
            continue
        # Each worker names its queues (without -Q it would consume every queue).
        queues = queues_of(container)
        assert queues, name
        served |= set(queues)
        # One process per container: the kubelet restarts a dead one.
        assert worker_args(container["command"]).processes == 1, name
        lists = {t["metadata"]["listName"] for t in scalers[name]["spec"]["triggers"]}
        for q in queues:
            assert {f"{NAMESPACE}:{q}", f"{NAMESPACE}:{q}.DQ"} <= lists, name
        for t in scalers[name]["spec"]["triggers"]:
            # KEDA lives in another namespace: the address names this one.
            assert t["type"] == "redis"
            assert (
                t["metadata"]["address"]
                == f"valkey.{scalers[name]['metadata']['namespace']}.svc:6379"
            )
    assert served == expected


def test_env_name_check_can_fail() -> None:
    assert settings_field("BOOM_INTAKE__LSST__SASL_PASSWORD")
    assert settings_field("BOOM_API__SECRET")
    assert not settings_field("BOOM_API__SECRETS")
    assert not settings_field("BOOM_INTAKE__HST__SASL_PASSWORD")
    assert not settings_field("BOOM_VALKEY__HOST__NAME")
    assert dramatiq_variable("dramatiq_queue_prefetch")
    assert not dramatiq_variable("dramatiq_queue_prefetched")


def _boom_env_names(objects: list[dict[str, Any]]) -> set[str]:
    names = set()
    for o in objects:
        pod = o.get("spec", {}).get("template", {}).get("spec", {})
        for c in pod.get("containers", []):
            if c["image"].split("/")[-1].split(":")[0] == "boom-tasks":
                names |= {e["name"] for e in c.get("env", [])}
    return names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifest_env_names_are_settings(rendered, overlay: str) -> None:
    names = _boom_env_names(rendered[overlay])
    assert {"BOOM_CONFIG", "BOOM_API__SECRET", "BOOM_INTAKE__LSST__SASL_PASSWORD"} <= names
    unknown = {
        n for n in names - {CONFIG_PATH_VAR} if not (settings_field(n) or dramatiq_variable(n))
    }
    assert unknown == set()


def test_secrets_are_wired(rendered) -> None:
    # Local: the generated Secret holds every non-optional key a container reads
    local = rendered["local"]
    secrets = {o["metadata"]["name"]: o for o in local if o["kind"] == "Secret"}
    refs = [
        e["valueFrom"]["secretKeyRef"]
        for o in local
        for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    ]
    assert len(refs) == 3
    for ref in refs:
        assert ref["name"] in secrets
        assert ref.get("optional") or ref["key"] in secrets[ref["name"]]["data"]
    # Production: no Secret in the rendered output (it is created by hand)
    assert not [o for o in rendered["production"] if o["kind"] == "Secret"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_valkey_keeps_an_aof_on_a_volume(rendered, overlay: str) -> None:
    (valkey,) = [
        o
        for o in rendered[overlay]
        if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "valkey"
    ]
    args = valkey["spec"]["template"]["spec"]["containers"][0]["args"]
    pairs = dict(zip(args[1::2], args[2::2], strict=True))
    assert pairs["--appendonly"] == "yes"
    assert pairs["--appendfsync"] == "everysec"
    assert pairs["--maxmemory-policy"] == "noeviction"
    assert re.fullmatch(r"\d+gb", pairs["--maxmemory"])
    mounts = valkey["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    claims = {t["metadata"]["name"] for t in valkey["spec"]["volumeClaimTemplates"]}
    assert {m["name"] for m in mounts if m["mountPath"] == pairs["--dir"]} <= claims


def test_cluster_config_is_generated_from_the_default(tmp_path) -> None:
    # ops/k8s/config.py derives base/boom.yaml from config/default.yaml
    python = str(ROOT / ".venv" / "bin" / "python")
    proc = subprocess.run([python, str(K8S / "config.py"), "--check"], capture_output=True)
    assert proc.returncode == 0, proc.stderr
    # And a key the cluster must change that left the default configuration is an error
    sys.path.insert(0, str(K8S))
    try:
        from config import cluster_config  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(K8S))
    default = (ROOT / "config" / "default.yaml").read_text()
    with pytest.raises(SystemExit, match="dashboard"):
        cluster_config(default.replace("\ndashboard:", "\nboard:"))


def test_cluster_config_is_the_default_but_addresses() -> None:
    cluster_file = K8S / "base" / "boom.yaml"
    cluster = yaml.safe_load(cluster_file.read_text())
    default = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())
    for section, key in CLUSTER_KEYS:
        assert cluster[section].pop(key) != default[section].pop(key)
    assert cluster == default
    settings = load_settings(cluster_file, environ={})
    assert settings.valkey.host == "valkey"


# --- what KEDA reads, on the real broker ---------------------------------------------------

#: Valkey database of this test (the other tests use 5-8); the manifests say 0.
VALKEY_DB = 9


def _desired_replicas(valkey: Any, scaler: dict[str, Any]) -> tuple[dict[str, int], int]:
    """Return each trigger's list length and the replicas KEDA's HPA asks for.

    KEDA reads a list's length (LLEN, after TYPE); the HPA asks ceil(length / listLength)
    per trigger, takes the largest, and clamps it to [minReplicaCount, maxReplicaCount].
    """
    lengths, wanted = {}, 0
    for t in scaler["spec"]["triggers"]:
        key = t["metadata"]["listName"]
        assert valkey.type(key) in (b"list", b"none")
        lengths[key] = valkey.llen(key)
        wanted = max(wanted, -(-lengths[key] // int(t["metadata"]["listLength"])))
    spec = scaler["spec"]
    return lengths, min(spec["maxReplicaCount"], max(spec["minReplicaCount"], wanted))


def test_scaledobjects_read_the_keys_dramatiq_writes(services, rendered) -> None:
    import redis
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.results import Results
    from dramatiq.results.backends import RedisBackend

    from boom_tasks.chain import declare_chain

    url = services.valkey.model_copy(update={"db": VALKEY_DB}).url
    valkey = redis.Redis.from_url(url)
    valkey.flushdb()
    broker = RedisBroker(url=url, namespace=NAMESPACE)
    broker.add_middleware(Results(backend=RedisBackend(url=url)))
    try:
        # Given 5 crossmatch batches queued by ingest, and one retry waiting its backoff
        actor = declare_chain(broker, [SURVEYS["ZTF"]], services)["ZTF"]["crossmatch"]
        for i in range(5):
            actor.send([i], {"received": 0.0})
        actor.send_with_options(args=([9], {"received": 0.0}), delay=60_000)
        scalers = {
            name: next(
                o
                for o in rendered[name]
                if o["kind"] == "ScaledObject" and o["metadata"]["name"] == "worker-ztf-crossmatch"
            )
            for name in OVERLAYS
        }
        # Then the ScaledObjects' lists hold them: 5 ready, 1 delayed
        lengths, production = _desired_replicas(valkey, scalers["production"])
        assert lengths == {"dramatiq:ztf_crossmatch": 5, "dramatiq:ztf_crossmatch.DQ": 1}
        # And KEDA asks ceil(5 / 2) = 3 pods in production, the local cap of 2 locally
        assert production == 3
        assert _desired_replicas(valkey, scalers["local"])[1] == 2
        # When a worker prefetches 2 of them, they leave the list KEDA measures
        consumer = broker.consume("ztf_crossmatch", prefetch=2, timeout=1000)
        fetched = [next(consumer), next(consumer)]
        assert all(fetched)
        assert _desired_replicas(valkey, scalers["production"])[0]["dramatiq:ztf_crossmatch"] == 3
        consumer.close()
        # And with only the delayed retry left, a stage scaled to zero still gets a pod
        valkey.delete("dramatiq:ztf_crossmatch")
        assert _desired_replicas(valkey, scalers["local"])[1] == 1
    finally:
        valkey.flushdb()
        broker.close()
