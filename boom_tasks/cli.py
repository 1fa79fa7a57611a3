"""``boom``: the broker's command line. ``boom night`` replays a night end to end."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from boom_tasks import logs
from boom_tasks.api import users_cli
from boom_tasks.catalogs import cli as catalogs_cli
from boom_tasks.conductor import cli as report_cli
from boom_tasks.crossmatch import cli as crossmatch_cli
from boom_tasks.entry import EXIT_OK, exit_with, whole_number
from boom_tasks.errors import BoomError
from boom_tasks.filter import cli as filters_cli
from boom_tasks.replay.cli import add_night_arguments
from boom_tasks.replays import cli as replays_cli
from boom_tasks.schedule import cli as schedule_cli
from boom_tasks.science import cli as science_cli

#: The night the main job replays by default: a small public ZTF night (BOOM's example).
DEFAULT_NIGHT = "20240617"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="boom", description="boom-tasks alert broker.")
    sub = p.add_subparsers(dest="command", required=True)
    night = sub.add_parser("night", help="replay a night through Kafka, the bridge and workers")
    night.add_argument("survey", nargs="?", default="ZTF")
    add_night_arguments(night, default_date=DEFAULT_NIGHT)
    night.add_argument("--workers", type=whole_number(1, 64), default=2, help="worker processes")
    night.add_argument("--log-level", default="WARNING", type=logs.level_name)
    night.add_argument(
        "--demo",
        action="store_true",
        help="first run: demo database, catalog slices and example filters (docs/night-report.md)",
    )
    catalogs_cli.register(sub)
    crossmatch_cli.register(sub)
    filters_cli.register(sub)
    users_cli.register(sub)
    report_cli.register(sub)
    schedule_cli.register(sub)
    replays_cli.register(sub)
    science_cli.register(sub)
    return p


def _night(args: argparse.Namespace) -> int:
    from boom_tasks import night
    from boom_tasks.bridge.intake import intake_topic
    from boom_tasks.replay.cli import night_source
    from boom_tasks.replay.producer import produce_night
    from boom_tasks.settings import get_settings
    from boom_tasks.surveys import get_survey

    settings, survey = get_settings(), get_survey(args.survey)
    source = night_source(survey, args.date, args.source)
    if args.demo:
        from boom_tasks.conductor.demo import prepare

        settings = prepare(settings, survey, args.date, source)
    started = time.monotonic()
    topic = intake_topic(settings, survey, args.date)
    produced = produce_night(settings, survey, args.date, source, topic=topic)
    workers = night.start_workers(args.workers)
    try:
        bridge = [night.bin_path("boom-bridge"), survey.name, "--date", args.date, "--exit-on-eof"]
        if subprocess.run(bridge, check=False).returncode != 0:
            raise BoomError("the bridge failed; see its log above")
        night.wait_drained(settings, survey)
    finally:
        night.stop(workers)
    print(
        night.format_report(
            night.report(settings, survey, produced, time.monotonic() - started), survey
        )
    )
    from boom_tasks.conductor.summary import closing_report

    print(closing_report(settings, survey, args.date))
    return EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``boom``."""
    args = _parser().parse_args(report_cli.route(sys.argv[1:] if argv is None else argv))
    logs.configure(args.log_level)
    commands = {
        "night": _night,
        "catalogs": catalogs_cli.run,
        "crossmatch": crossmatch_cli.run,
        "filters": filters_cli.run,
        "users": users_cli.run,
        report_cli.COMMAND: report_cli.run,
        "schedule": schedule_cli.run,
        "replays": replays_cli.run,
        "science": science_cli.run,
    }
    exit_with("boom", lambda: commands[args.command](args))
