#!/usr/bin/env bash
# Start, stop or show the local Valkey, Kafka and MongoDB servers of the configuration
# in force ($BOOM_CONFIG, else config/default.yaml). Arguments go to ops/services.py:
#   ./ops/services.sh up                                    # all three (reused if up)
#   ./ops/services.sh down                                  # data stays in local.data_dir
#   BOOM_CONFIG=config/test.yaml ./ops/services.sh status
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$root/.venv/bin/python" ]; then
  echo "ops/services.sh: $root/.venv not found; run ./ops/install.sh first" >&2
  exit 1
fi
exec "$root/.venv/bin/python" "$root/ops/services.py" "$@"
