"""``boom night report SURVEY YYYYMMDD``: build, store and print one night's report."""

from __future__ import annotations

import argparse

from boom_tasks import logs
from boom_tasks.entry import EXIT_FAILED, EXIT_OK, night_date

#: ``boom night report ...`` is routed to this sub-command (``boom night`` takes a survey).
COMMAND = "report"


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``report`` (also reachable as ``boom night report``) to ``boom``'s sub-parsers."""
    p = subparsers.add_parser(COMMAND, help="a night's report: counts per stage, what stopped")
    p.add_argument("survey", help="survey name, e.g. ZTF")
    p.add_argument("night", type=night_date, help="night as YYYYMMDD (UTC)")
    p.add_argument("--log-level", default="WARNING", type=logs.level_name)
    return p


def route(argv: list[str]) -> list[str]:
    """Return ``argv`` with ``night report ...`` spelled as this sub-command."""
    return [COMMAND, *argv[2:]] if argv[:2] == ["night", COMMAND] else argv


def run(args: argparse.Namespace) -> int:
    """Print the night's report (and store it in ``<SURVEY>_nights``); 1 if flagged.

    Raises
    ------
    NoNightData
        If nothing is known of the night (a clear message, exit code 1).
    """
    from boom_tasks.conductor.render import format_report
    from boom_tasks.conductor.report import report_night, store_report, stored_report
    from boom_tasks.conductor.summary import filter_names
    from boom_tasks.services.mongo import get_db
    from boom_tasks.settings import get_settings
    from boom_tasks.surveys import get_survey

    settings, survey = get_settings(), get_survey(args.survey)
    report = report_night(settings, survey, args.night)
    db = get_db(settings.mongo)
    stored = stored_report(db, survey, args.night)
    # A report built on demand keeps the night's "closed" mark: only the job closes nights.
    report["closed"] = bool(stored and stored.get("closed"))
    store_report(db, survey, report)
    print(format_report(report, filter_names(db, survey)))
    return EXIT_FAILED if report["flagged"] else EXIT_OK
