#!/usr/bin/env bash
# Start (or reuse) the local Valkey, Kafka and MongoDB servers of the configuration in
# force: $BOOM_CONFIG, else config/default.yaml. Arguments go to ops/services.py:
#   ./ops/up.sh                       # all three
#   BOOM_CONFIG=config/test.yaml ./ops/up.sh --only valkey,mongo
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$root/.venv/bin/python" ]; then
  echo "ops/up.sh: $root/.venv not found; run ./ops/install.sh first" >&2
  exit 1
fi
exec "$root/.venv/bin/python" "$root/ops/services.py" up "$@"
