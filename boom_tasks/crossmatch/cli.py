"""``boom crossmatch reprocess``: recompute stored cross-matches for existing objects."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from boom_tasks import logs
from boom_tasks.entry import EXIT_FAILED, EXIT_OK, whole_number


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``crossmatch`` command (``reprocess``) to ``boom``'s sub-parsers."""
    parser = subparsers.add_parser("crossmatch", help="recompute objects' catalog matches")
    parser.add_argument("--log-level", default="INFO", type=logs.level_name)
    sub = parser.add_subparsers(dest="crossmatch_command", required=True)
    redo = sub.add_parser(
        "reprocess", help="recompute cross-matches of existing objects (e.g. a new catalog)"
    )
    redo.add_argument("survey", nargs="?", default="ZTF")
    redo.add_argument(
        "--catalog",
        action="append",
        help="redo only this configured catalog (repeatable; default: every configured one)",
    )
    redo.add_argument("--object", action="append", help="redo only this objectId (repeatable)")
    redo.add_argument(
        "--batch-size", type=whole_number(1), help="objects per batch (default: 1000)"
    )
    return parser


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run a parsed ``boom crossmatch`` command; return the exit status."""
    from tqdm import tqdm

    from boom_tasks.crossmatch.reprocess import DEFAULT_BATCH, reprocess, select_specs
    from boom_tasks.services.mongo import get_catalog_db, get_db
    from boom_tasks.settings import get_settings
    from boom_tasks.surveys import get_survey

    out = out or sys.stdout
    settings, survey = get_settings(), get_survey(args.survey)
    specs = select_specs(settings.crossmatch.get(survey.name, []), args.catalog)
    db = get_db(settings.mongo)
    with tqdm(desc=f"{survey.name} objects", unit="obj", file=sys.stderr) as bar:
        report = reprocess(
            db,
            survey,
            specs,
            objects=args.object,
            batch_size=args.batch_size or DEFAULT_BATCH,
            progress=bar.update,
            catalog_db=get_catalog_db(settings.mongo),
        )
    for problem in report.problems:
        print(f"skipped {problem}", file=out)
    print(
        f"{survey.name}: {report.objects} objects crossmatched with "
        f"{', '.join(report.catalogs) or 'no catalog'}; {report.written} changed",
        file=out,
    )
    return EXIT_FAILED if report.problems and not report.catalogs else EXIT_OK
