#!/usr/bin/env bash
# Install the Debian packages the test suite drives, when they are missing:
#   chromium        the dashboard's browser tests (Playwright never downloads a browser here);
#   docker-compose  tests/test_compose.py renders docker-compose.yaml (`config` needs no engine).
# Installs with apt-get when we are root or have sudo; otherwise says what to run, and fails.
set -euo pipefail
missing=()
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || missing+=(chromium)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then
  apt=(apt-get)
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  apt=(sudo apt-get)
else
  echo "ops/test-tools.sh: ${missing[*]} missing and I cannot install (not root, no sudo):" >&2
  echo "  run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "ops/test-tools.sh: installing Debian's ${missing[*]} (the tests need them)"
"${apt[@]}" update -qq && "${apt[@]}" install -y -qq "${missing[@]}"
