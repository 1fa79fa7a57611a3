#!/usr/bin/env bash
# Stop the local servers that ops/up.sh started for the configuration in force
# ($BOOM_CONFIG, else config/default.yaml). Their data stays in local.data_dir.
#   ./ops/down.sh [--only valkey,kafka,mongo]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$root/.venv/bin/python" ]; then
  echo "ops/down.sh: $root/.venv not found; run ./ops/install.sh first" >&2
  exit 1
fi
exec "$root/.venv/bin/python" "$root/ops/services.py" down "$@"
