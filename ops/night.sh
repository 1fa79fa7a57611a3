#!/usr/bin/env bash
# The first run: install, start the local services, and replay a night of ZTF alerts
# through Kafka, the bridge and the workers, in a demo database of its own, with slices
# of the shipped catalogs and the example filters of docs/filters.md; it ends with the
# night report (docs/night-report.md). Honours BOOM_CONFIG (ports, databases).
#   ./ops/night.sh                                  # public night 20240617 (downloaded once, cached)
#   ./ops/night.sh --from ../shared/data/ztf        # a local folder or .tar.gz instead
set -euo pipefail
cd "$(dirname "$0")/.."
./ops/install.sh
.venv/bin/python ops/services.py up
exec .venv/bin/boom night ZTF --demo "$@"
