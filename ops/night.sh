#!/usr/bin/env bash
# The main job: install, start the local services, replay a night of ZTF alerts
# through Kafka, the bridge and the workers, and print what was ingested.
#   ./ops/night.sh                                  # public night 20240617 (downloaded once, cached)
#   ./ops/night.sh --from ../shared/data/ztf        # a local folder or .tar.gz instead
set -euo pipefail
cd "$(dirname "$0")/.."
./ops/install.sh
.venv/bin/python ops/services.py up
exec .venv/bin/boom night ZTF "$@"
