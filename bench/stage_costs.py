"""Cost of the workers' running cost account: the ``StageCosts`` middleware per message.

Step 1: build the middleware as a worker does, command monitoring on;
Step 2: run its two hooks (before and after a message) on a ``ztf_ml`` message many
        times, against the real Valkey of the configuration (a database of its own);
Step 3: print the wall time per message (median, p95) and its CPU time, and check the
        counts landed.
Run with the test services up: ``BOOM_CONFIG=... .venv/bin/python bench/stage_costs.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from boom_tasks.monitor.costs import StageCosts, cost_key  # noqa: E402
from boom_tasks.services.valkey import get_client  # noqa: E402
from boom_tasks.settings import load_settings  # noqa: E402
from boom_tasks.surveys import SURVEYS  # noqa: E402

#: Valkey database of this bench (its key is deleted before and after).
BENCH_DB = 11


def main(argv: list[str] | None = None) -> int:
    """Time the middleware; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args(argv)
    environ = {
        **os.environ,
        "BOOM_VALKEY__DB": str(BENCH_DB),
        "BOOM_MONGO__COMMAND_MONITORING": "true",
    }
    settings = load_settings(None, environ)
    costs = StageCosts(settings, SURVEYS.values())
    message = SimpleNamespace(actor_name="ztf_ml")
    valkey = get_client(settings.valkey)
    valkey.delete(cost_key("ZTF", "ml"))
    walls, cpus = [], []
    for i in range(args.messages + 100):
        wall, cpu = time.perf_counter(), time.thread_time()
        costs.before_process_message(None, message)  # type: ignore[arg-type]
        costs.after_process_message(None, message)  # type: ignore[arg-type]
        if i >= 100:  # the first ones open the connection
            walls.append(time.perf_counter() - wall)
            cpus.append(time.thread_time() - cpu)
    recorded = int(valkey.hget(cost_key("ZTF", "ml"), "messages") or 0)
    valkey.delete(cost_key("ZTF", "ml"))
    walls.sort()
    print(
        f"StageCosts per message over {len(walls)}: wall median "
        f"{statistics.median(walls) * 1e3:.3f} ms, p95 {walls[int(0.95 * len(walls))] * 1e3:.3f}"
        f" ms; CPU mean {statistics.mean(cpus) * 1e6:.0f} us; messages recorded {recorded}"
    )
    return 0 if recorded == args.messages + 100 else 1


if __name__ == "__main__":
    sys.exit(main())
