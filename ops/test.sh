#!/usr/bin/env bash
# Run the checks and the test suite against real local services (config/test.yaml).
# Installs what the tests need first: .venv (ops/install.sh), Debian packages the tests drive (ops/test-tools.sh).
# The services are started by the tests' fixtures and stopped at the end, unless
# BOOM_KEEP_SERVICES=1 (faster reruns while developing).
set -euo pipefail
cd "$(dirname "$0")/.."
./ops/install.sh
./ops/test-tools.sh
export BOOM_CONFIG=config/test.yaml
if [ "${BOOM_KEEP_SERVICES:-0}" != 1 ]; then
  trap '.venv/bin/python ops/services.py down >/dev/null 2>&1 || true' EXIT
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy boom_tasks actors
.venv/bin/pytest "$@"
