"""The full fault run of issue 11: a night through the whole chain under repeated faults.

Step 1 (faults): N alerts generated from the real ZTF packets go through Kafka, the
        bridge, ``boom-workers`` and every stage with active filters and Kafka
        output, while ``--kills`` SIGKILLs strike at random moments (a worker
        process, a worker's dramatiq parent, or the bridge) and Valkey (SIGKILL,
        AOF on), Kafka and the MongoDB server are each restarted once;
Step 2 (malformed): ``--malformed`` bad packets (truncated, bit flips, wrong or
        absent schema, empty, oversized, valid Avro of another schema) mixed into
        ``--night`` real alerts, with no fault injected: zero worker crashes;
Step 3: for each, print alerts lost, duplicated documents, alerts not enriched or
        not filtered, passes unpublished or published twice (per candid, filter,
        version), work left in a queue, dead letters and why, what was quarantined
        and why, and the recovery time after each fault. Exit 1 if anything was
        lost, doubled or unexplained.

Run it on the local servers of the configuration in force, e.g.:
``BOOM_CONFIG=/tmp/boom-faults.yaml .venv/bin/python bench/faults.py --alerts 5000``.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from boom_tasks.settings import get_settings  # noqa: E402
from tests.faults.chaos import (  # noqa: E402
    BRIDGE,
    KAFKA,
    MONGO,
    PARENT,
    VALKEY,
    WORKER,
    ChaosRun,
    RunConfig,
    RunResult,
    format_faults,
)
from tests.faults.checks import format_figures  # noqa: E402


def schedule(kills: int, rng: random.Random) -> list[tuple[str, float]]:
    """Return ``kills`` SIGKILLs (two of them the bridge's) and the three server restarts.

    Each strikes once the given fraction of the alerts has been ingested, drawn at
    random between 5 % and 90 %.
    """
    kinds = [BRIDGE, BRIDGE] + [rng.choice([WORKER, WORKER, PARENT]) for _ in range(kills - 2)]
    kinds += [VALKEY, KAFKA, MONGO]
    return [(kind, round(rng.uniform(0.05, 0.9), 3)) for kind in kinds]


def report(title: str, result: RunResult) -> bool:
    """Print a run's figures; return True if it lost, doubled and left nothing."""
    print(
        f"\n== {title}: {result.seconds:.0f}s, {result.bridge_starts} bridge starts, "
        f"{result.worker_exits} worker process exits"
    )
    print(format_figures(result.figures))
    if result.faults:
        print("faults (recovery: processing again after the fault):")
        print(format_faults(result.faults))
    return result.figures.ok()


def main() -> int:
    """Run both steps; exit 0 only if both are clean."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alerts", type=int, default=5000, help="alerts of the fault run")
    p.add_argument("--kills", type=int, default=10, help="SIGKILLs of workers and the bridge")
    p.add_argument("--malformed", type=int, default=10_000, help="malformed packets (step 2)")
    p.add_argument("--night", type=int, default=2000, help="real alerts beside them (step 2)")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--filters", type=int, default=10, help="active benchmark filters")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--skip", choices=["faults", "malformed"], help="run one step only")
    args = p.parse_args()
    settings, rng = get_settings(), random.Random(args.seed)
    logs = Path(tempfile.mkdtemp(prefix="boom-faults-"))
    print(f"logs in {logs}")
    ok = True
    common = {"processes": args.processes, "threads": args.threads, "filters": args.filters}
    common |= {"batch_size": 100, "max_queued": 400, "timeout_s": 3600.0}
    if args.skip != "faults":
        config = RunConfig(args.alerts, schedule(args.kills, rng), seed=args.seed, **common)
        (logs / "faults").mkdir()
        started = time.monotonic()
        result = ChaosRun(settings, config, logs / "faults").run()
        ok &= report(f"faults: {args.alerts} alerts", result)
        print(f"(step 1 took {time.monotonic() - started:.0f}s with the checks)")
    if args.skip != "malformed":
        config = RunConfig(args.night, [], malformed=args.malformed, seed=args.seed + 1, **common)
        (logs / "malformed").mkdir()
        result = ChaosRun(settings, config, logs / "malformed").run()
        ok &= report(f"malformed: {args.malformed} bad packets among {args.night}", result)
        if result.worker_exits:
            print(f"FAIL: {result.worker_exits} worker processes died on malformed packets")
            ok = False
    print("\nOK: nothing lost, doubled or unexplained" if ok else "\nFAILED: see the figures")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
