#!/usr/bin/env bash
# Make sure Debian's Chromium is installed: the dashboard's browser test drives it
# (Playwright never downloads a browser here). Installs it with apt-get when we are
# root or have sudo; otherwise says what to run, and fails.
set -euo pipefail
if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  apt=(apt-get)
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  apt=(sudo apt-get)
else
  echo "ops/chromium.sh: Chromium is missing and I cannot install it (not root, no sudo):" >&2
  echo "  run: sudo apt-get install -y chromium" >&2
  exit 1
fi
echo "ops/chromium.sh: installing Debian's chromium (the dashboard's browser test needs it)"
"${apt[@]}" update -qq && "${apt[@]}" install -y -qq chromium
