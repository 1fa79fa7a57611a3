"""Write ``ops/k8s/base/boom.yaml``: ``config/default.yaml`` with the cluster's addresses.

The cluster runs the default configuration; only where the servers are (their Service
names), where the HTTP servers listen (every interface of the pod) and where the
models are (their volume) differ. The file is derived, comments and all, so that a
key added to the default configuration reaches the cluster by re-running this::

    .venv/bin/python ops/k8s/config.py           # rewrite base/boom.yaml
    .venv/bin/python ops/k8s/config.py --check   # exit 1 if the file is stale (tests)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from generated import write_or_check

ROOT = Path(__file__).resolve().parents[2]
#: The configuration the cluster's is derived from.
DEFAULT = ROOT / "config" / "default.yaml"
#: The file this script writes (the ConfigMap ``boom-config`` of ``base/kustomization.yaml``).
OUT = Path(__file__).resolve().parent / "base" / "boom.yaml"

HEADER = """\
# boom-tasks configuration in the cluster (ConfigMap boom-config, mounted at
# /etc/boom/boom.yaml, BOOM_CONFIG). Written by ops/k8s/config.py from
# config/default.yaml: edit that file and re-run the script, never this one. Only the
# servers' addresses (Service names), the HTTP servers' interfaces (the pod's) and the
# models' folder (their volume) differ. Secrets (API key, Kafka passwords) come from the
# Secret boom-secrets as BOOM_ variables, never from here.
"""

#: (section, key) -> the value in the cluster (with its comment, if any).
CLUSTER_VALUES: dict[tuple[str, str], str] = {
    ("valkey", "host"): "valkey",
    ("kafka", "bootstrap_servers"): "kafka:9092",
    ("mongo", "uri"): "mongodb://mongo:27017",
    ("ml", "models_dir"): "/models   # the boom-models volume",
    ("api", "host"): "0.0.0.0",
    ("dashboard", "host"): "0.0.0.0",
}

_SECTION = re.compile(r"^([A-Za-z_]\w*):")
_KEY = re.compile(r"^  ([A-Za-z_]\w*):")


def cluster_config(default: str) -> str:
    """Return the cluster's configuration text derived from the default one's.

    Raises
    ------
    SystemExit
        If a key of :data:`CLUSTER_VALUES` is no longer in the default configuration.
    """
    lines = default.splitlines()
    body = lines[next(i for i, line in enumerate(lines) if not line.startswith("#")) :]
    out, section, done = [], "", set()
    for line in body:
        if m := _SECTION.match(line):
            section = m.group(1)
        elif (m := _KEY.match(line)) and (section, m.group(1)) in CLUSTER_VALUES:
            key = (section, m.group(1))
            line = f"  {key[1]}: {CLUSTER_VALUES[key]}"
            done.add(key)
        out.append(line)
    if missing := set(CLUSTER_VALUES) - done:
        raise SystemExit(f"ops/k8s/config.py: not in {DEFAULT.name}: {sorted(missing)}")
    return HEADER + "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the file, or with ``--check`` tell whether it is up to date."""
    return write_or_check(
        OUT, lambda: cluster_config(DEFAULT.read_text()), __doc__.splitlines()[0], argv
    )


if __name__ == "__main__":
    sys.exit(main())
