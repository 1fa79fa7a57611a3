"""Database server CPU per stage: the chain's stage functions run one after the other.

In the broker the stages run at once, so the database server's CPU over a run cannot
be split by stage, and each command's time includes its wait behind the others'. Here
one process runs the actors' own functions in batches, in chain order, and reads the
database server's CPU seconds (psutil, from its pid file) around each stage's calls:

Step 1: generate N alerts from the real ZTF packets (3 per object), a fresh database
        with the 25 bench filters, the catalogs of the configuration;
Step 2: for each batch of ``--batch`` alerts: ingest, crossmatch, ML, the
        configured science actors, filters (grouped), output (to a topic of its
        own), each timed (wall) and its server CPU and command count taken;
Step 3: print, per stage and per 1,000 alerts: wall seconds, database server CPU
        seconds, commands and this process's CPU seconds.
Run with the services of the configuration up and its catalogs loaded:
``.venv/bin/python bench/server_costs.py --n 1000``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymongo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.costs import server_cpu  # noqa: E402
from bench.pipeline import fresh_db, science_stage  # noqa: E402
from bench.runs import DATA  # noqa: E402
from boom_tasks.chain import CHAIN  # noqa: E402
from boom_tasks.config_base import project_path  # noqa: E402
from boom_tasks.crossmatch.stage import crossmatch_batch, plan_catalogs  # noqa: E402
from boom_tasks.filter.run import run_filters  # noqa: E402
from boom_tasks.filter.store import load_active  # noqa: E402
from boom_tasks.ingest.stage import ingest_packets  # noqa: E402
from boom_tasks.ml.registry import load_models  # noqa: E402
from boom_tasks.ml.stage import enrich_batch  # noqa: E402
from boom_tasks.output.publish import get_producer, publish_batch  # noqa: E402
from boom_tasks.science.stage import run_science  # noqa: E402
from boom_tasks.services.commands import COMMANDS  # noqa: E402
from boom_tasks.services.mongo import get_db  # noqa: E402
from boom_tasks.settings import get_settings  # noqa: E402
from boom_tasks.surveys.ztf import ZTF  # noqa: E402
from boom_tasks.surveys.ztf.synth import synth_alerts  # noqa: E402

STAGES = tuple(stage.name for stage in CHAIN)  # science too (none enabled: a row of 0)


class Account:
    """Per stage: wall, server CPU and this process's CPU seconds, and commands."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.rows: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def timed(self, stage: str, call: Callable[..., Any], *args: Any) -> Any:
        """Run ``call(*args)`` as ``stage``, adding its costs to the stage's row."""
        COMMANDS.set_label(stage)
        before_cmds = COMMANDS.thread_tally()[0]
        server, cpu, wall = server_cpu(self.data_dir)["mongo"], time.process_time(), time.time()
        result = call(*args)
        row = self.rows[stage]
        row["wall"] += time.time() - wall
        row["cpu"] += time.process_time() - cpu
        row["server"] += server_cpu(self.data_dir)["mongo"] - server
        row["commands"] += COMMANDS.thread_tally()[0] - before_cmds
        return result

    def table(self, n: int) -> str:
        """Render the rows per 1,000 alerts."""
        scale = 1000 / n
        lines = [
            f"{'per 1,000 alerts':<12}{'wall s':>10}{'server CPU s':>14}{'cmds':>8}"
            f"{'our CPU s':>11}"
        ]
        total: dict[str, float] = defaultdict(float)
        for stage in STAGES:
            row = self.rows[stage]
            for k, v in row.items():
                total[k] += v
            lines.append(
                f"{stage:<12}{row['wall'] * scale:>10.2f}{row['server'] * scale:>14.2f}"
                f"{row['commands'] * scale:>8.0f}{row['cpu'] * scale:>11.2f}"
            )
        lines.append(
            f"{'total':<12}{total['wall'] * scale:>10.2f}{total['server'] * scale:>14.2f}"
            f"{total['commands'] * scale:>8.0f}{total['cpu'] * scale:>11.2f}"
        )
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the stages in order over N alerts; print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--batch", type=int, default=100)
    args = p.parse_args(argv)
    os.environ["BOOM_MONGO__COMMAND_MONITORING"] = "true"  # counted by the stage's client
    settings = get_settings()
    client = pymongo.MongoClient(settings.mongo.uri)
    fresh_db(client, "bench_server_costs")
    catalogs = client[settings.mongo.catalog_database or settings.mongo.database]
    plans, problems = plan_catalogs(catalogs, settings.crossmatch["ZTF"])
    if problems:
        print(f"bench/server_costs.py: catalogs missing: {problems}", file=sys.stderr)
        return 2
    db = get_db(settings.mongo).client["bench_server_costs"]  # the monitored client
    models = load_models(settings.ml, "ZTF", project_path(settings.ml.models_dir))
    actors, publisher = science_stage(settings)
    filters = load_active(db, "ZTF")
    producer = get_producer(settings.kafka)
    output = settings.output.model_copy(update={"results_topic": f"bench-sc-{time.time_ns()}"})
    packets = list(
        synth_alerts(DATA / "ztf" / "fink-20181129", args.n, seed=5, alerts_per_object=3)
    )
    account = Account(settings.local.path())
    for start in range(0, args.n, args.batch):
        chunk = packets[start : start + args.batch]
        times = {"received": time.time()}
        candids = account.timed("ingest", ingest_packets, db, ZTF, chunk, "sc").candids
        account.timed("crossmatch", crossmatch_batch, db, ZTF, plans, candids)
        account.timed("ml", enrich_batch, db, ZTF, models, candids)
        science = (db, ZTF, actors, candids, settings.science, publisher)
        account.timed("science", run_science, *science)
        account.timed("filter", run_filters, db, ZTF, filters, candids, settings.filters)
        account.timed("output", publish_batch, db, ZTF, producer, candids, times, output)
    print(f"N = {args.n} alerts in batches of {args.batch}, one process, stages in turn")
    print(account.table(args.n))
    client.drop_database("bench_server_costs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
