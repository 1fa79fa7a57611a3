"""``boom-scheduler`` (the process) and ``boom schedule list|add|remove|run-now``.

The process runs the stored jobs at their cron times until SIGINT/SIGTERM; the
commands read and change the same job store, so a running scheduler sees a job
added or removed at its next look (``schedule.poll_s``).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from boom_tasks import logs
from boom_tasks.entry import EXIT_OK, exit_with
from boom_tasks.errors import ConfigError
from boom_tasks.schedule import commands

if TYPE_CHECKING:
    from boom_tasks.settings import Settings

log = logging.getLogger("boom_tasks.schedule")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``schedule`` command (``list``, ``add``, ``remove``, ``run-now``) to ``boom``.

    Returns
    -------
    argparse.ArgumentParser
        The ``schedule`` parser; its commands set ``schedule_command``.
    """
    parser = subparsers.add_parser("schedule", help="list and change boom-scheduler's jobs")
    parser.add_argument("--log-level", default="WARNING", type=logs.level_name)
    sub = parser.add_subparsers(dest="schedule_command", required=True)
    sub.add_parser("list", help="list stored jobs, their next run and last runs")
    add = sub.add_parser("add", help="add (or replace) a job")
    add.add_argument("id", help="job name")
    add.add_argument("--cron", required=True, help="crontab in UTC, e.g. '30 13 * * *'")
    add.add_argument("--job", required=True, help="function run: package.module:function")
    add.add_argument("--kwargs", default="{}", help="its keyword arguments as a JSON object")
    remove = sub.add_parser("remove", help="remove a job")
    remove.add_argument("id")
    now = sub.add_parser("run-now", help="run a stored job once, now, in this process")
    now.add_argument("id")
    return parser


def _kwargs(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--kwargs is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise ConfigError("--kwargs must be a JSON object, e.g. '{\"nights\": 3}'")
    return value


def _list(out: TextIO) -> int:
    from boom_tasks.settings import get_settings

    jobs = commands.list_jobs(get_settings())
    if not jobs:
        print("no scheduled jobs", file=out)
    for job in jobs:
        nxt = job.next_run.isoformat(timespec="seconds") if job.next_run else "paused"
        print(f"{job.id}  {job.job}  {job.trigger}  next {nxt}  ({job.origin})", file=out)
        if job.kwargs:
            print(f"    kwargs {json.dumps(job.kwargs)}", file=out)
        for run in job.runs:
            print(f"    {run['scheduled_for']}  {run['state']}  {run.get('error', '')}", file=out)
    return EXIT_OK


def _add(args: argparse.Namespace, out: TextIO) -> int:
    from boom_tasks.settings import get_settings

    kwargs = _kwargs(args.kwargs)
    stored = commands.add_job(get_settings(), args.id, args.cron, args.job, kwargs)
    print(
        f"job {stored.id} stored: {stored.job} at {stored.cron!r} UTC, next {stored.next_run}",
        file=out,
    )
    return EXIT_OK


def _remove(args: argparse.Namespace, out: TextIO) -> int:
    from boom_tasks.settings import get_settings

    commands.remove_job(get_settings(), args.id)
    print(f"job {args.id} removed", file=out)
    return EXIT_OK


def _run_now(args: argparse.Namespace, out: TextIO) -> int:
    from boom_tasks.settings import get_settings

    key = commands.run_now(get_settings(), args.id)
    print(f"job {args.id} ran ({key})", file=out)
    return EXIT_OK


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run one ``boom schedule`` command; return the exit code."""
    out = out or sys.stdout
    handlers = {
        "list": lambda: _list(out),
        "add": lambda: _add(args, out),
        "remove": lambda: _remove(args, out),
        "run-now": lambda: _run_now(args, out),
    }
    return handlers[args.schedule_command]()


def serve(stop: threading.Event, settings: Settings | None = None) -> None:
    """Run the scheduler until ``stop`` is set: configured jobs stored, store polled.

    The store is looked at every ``schedule.poll_s`` seconds, so jobs added by
    ``boom schedule add`` (another process) are run without a restart.
    ``settings`` defaults to this process's.
    """
    from boom_tasks.schedule.scheduler import build_scheduler, sync_config_jobs
    from boom_tasks.settings import get_settings

    settings = settings or get_settings()
    scheduler = build_scheduler(settings)
    commands.start_store(scheduler, paused=True)
    try:
        sync_config_jobs(scheduler, settings.schedule.jobs)
        scheduler.resume()
        log.info("boom-scheduler: %d job(s) stored", len(scheduler.get_jobs()))
        while not stop.wait(settings.schedule.poll_s):
            scheduler.wakeup()
    finally:
        # Running jobs finish (and record their outcome) before the process ends.
        scheduler.shutdown(wait=True)


def _main(argv: list[str] | None) -> int:
    p = argparse.ArgumentParser(prog="boom-scheduler", description="Run scheduled jobs.")
    p.add_argument("--log-level", default="INFO", type=logs.level_name)
    args = p.parse_args(argv)
    logs.configure(args.log_level)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("boom-scheduler: %s received; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    serve(stop)
    return EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``boom-scheduler``."""
    exit_with("boom-scheduler", lambda: _main(argv))
