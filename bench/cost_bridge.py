"""The bridge with the cost account: ``python bench/cost_bridge.py ZTF --topic T --exit-on-eof``.

Runs ``boom-bridge`` with the counting of :mod:`bench.costs` installed, every count
charged to the ``bridge`` row, and the process's wall and CPU seconds added at exit.
Run only by ``bench/pipeline.py --costs``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import costs


def main() -> int:
    """Run the bridge on ``sys.argv[1:]``; return its exit status."""
    costs.instrument()
    from boom_tasks.bridge.cli import run
    from boom_tasks.settings import get_settings

    costs.set_default_stage("bridge")
    started, cpu = time.monotonic(), time.process_time()
    try:
        return run(sys.argv[1:])
    finally:
        busy = {"busy_s": time.monotonic() - started, "cpu_s": time.process_time() - cpu}
        costs.flush(costs.sink(get_settings().valkey.url), {"bridge": busy})


if __name__ == "__main__":
    sys.exit(main())
