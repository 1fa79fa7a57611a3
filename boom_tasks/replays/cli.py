"""``boom replays list|show ID|backfill FILTER|republish FILTER TOPIC|reprocess|reingest``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from boom_tasks import logs
from boom_tasks.entry import EXIT_FAILED, EXIT_OK, night_date, whole_number

#: ``--nights``: at least one, at most about a century (a date past year 9999 overflows).
_nights = whole_number(1, 36_500)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``replays`` command to ``boom``; its commands set ``replays_command``."""
    parser = subparsers.add_parser("replays", help="run and inspect replays of stored nights")
    parser.add_argument("--log-level", default="WARNING", type=logs.level_name)
    sub = parser.add_subparsers(dest="replays_command", required=True)
    listing = sub.add_parser("list", help="the latest replay runs")
    listing.add_argument("--limit", type=whole_number(1), default=20)
    show = sub.add_parser("show", help="one run: parameters, state, progress, counts")
    show.add_argument("run_id")
    backfill = sub.add_parser("backfill", help="run a filter over the last nights' alerts")
    backfill.add_argument("filter_id")
    backfill.add_argument("--nights", type=_nights, default=1, help="nights back (default 1)")
    backfill.add_argument("--night", type=night_date, help="last night (default: newest stored)")
    backfill.add_argument("--version", help="filter version fid (default: the active one)")
    republish = sub.add_parser("republish", help="a night's passes of a filter into a topic")
    republish.add_argument("filter_id")
    republish.add_argument("topic", help="the Kafka topic to publish to")
    republish.add_argument("--night", type=night_date, help="night (default: newest stored)")
    republish.add_argument("--version", help="only passes of this filter version (fid)")
    again = sub.add_parser("reprocess", help="crossmatch, ML and filters again over stored nights")
    again.add_argument("survey")
    again.add_argument("--night", type=night_date, help="last night (default: newest stored)")
    again.add_argument("--nights", type=_nights, default=1, help="nights back (default 1)")
    reingest = sub.add_parser("reingest", help="a night's packets through the whole chain")
    reingest.add_argument("survey")
    reingest.add_argument("--date", type=night_date, required=True, help="night as YYYYMMDD")
    source = reingest.add_mutually_exclusive_group()
    source.add_argument("--from", dest="source", help="folder or tarball of the night's packets")
    source.add_argument("--topic", help="Kafka topic to read from its start")
    return parser


def format_run(run: dict[str, Any]) -> str:
    """Return one run as ``boom replays show`` prints it."""
    progress = run.get("progress") or {}
    lines = [
        f"{run['_id']}  {run['kind']}  {run['survey']}  {run['state']}",
        f"  progress {progress.get('done', 0)}/{progress.get('total')} alerts",
        f"  params   {json.dumps(run.get('params') or {}, default=str)}",
        f"  counts   {json.dumps(run.get('counts') or {})}",
    ]
    for key in ("created_at", "running_at", "done_at", "failed_at"):
        if run.get(key):
            lines.append(f"  {key:<10} {run[key].isoformat(timespec='seconds')}")
    if run.get("error"):
        lines.append(f"  error    {run['error']}")
    return "\n".join(lines)


def _start(args: argparse.Namespace, settings: Any) -> dict[str, Any]:
    """Start the replay the command names and run it to its end; return the run."""
    from boom_tasks.replays import commands

    command = args.replays_command
    if command == "backfill":
        return commands.filter_backfill(
            settings, args.filter_id, args.nights, args.version, args.night, check=False
        )
    if command == "republish":
        night = args.night or "latest"
        return commands.republish(
            settings, args.filter_id, args.topic, night, args.version, check=False
        )
    if command == "reprocess":
        night = args.night or "latest"
        return commands.reprocess(settings, args.survey, night, args.nights, check=False)
    return commands.reingest(settings, args.survey, args.date, args.source, args.topic, check=False)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run one ``boom replays`` command; return the exit code (1 if the replay failed)."""
    from boom_tasks.replays import store
    from boom_tasks.services.mongo import get_db
    from boom_tasks.settings import get_settings

    out = out or sys.stdout
    settings = get_settings()
    db = get_db(settings.mongo)
    if args.replays_command == "list":
        for r in store.list_runs(db, settings, args.limit):
            p = r.get("progress") or {}
            print(f"{r['_id']}  {r['state']:<7} {p.get('done', 0)}/{p.get('total')}", file=out)
        return EXIT_OK
    if args.replays_command == "show":
        print(format_run(store.get_run(db, settings, args.run_id)), file=out)
        return EXIT_OK
    done = _start(args, settings)
    print(format_run(done), file=out)
    return EXIT_OK if done["state"] == "done" else EXIT_FAILED
