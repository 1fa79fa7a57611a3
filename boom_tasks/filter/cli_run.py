"""``boom filters activate|deactivate|test``: the commands that run a filter on stored alerts."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from boom_tasks.filter.cli import _context, _programids, print_passes
from boom_tasks.filter.testing import (
    MatchRateTooHigh,
    Selection,
    check_match_rate,
    night_jd_range,
    run_trial,
    select_candids,
)

__all__ = ["MatchRateTooHigh", "activate", "deactivate", "test"]


def _stored(db: Any, filter_id: str, fid: str | None) -> tuple[dict, str, list[dict]]:
    from boom_tasks.filter.store import get_filter, version_pipeline

    doc = get_filter(db, filter_id)
    fid, pipeline = version_pipeline(doc, fid)
    return doc, fid, pipeline


def activate(args: argparse.Namespace, out: TextIO) -> int:
    """Check the match rate on a reference night, then activate (raises MatchRateTooHigh)."""
    from boom_tasks.filter.cache import signal_change
    from boom_tasks.filter.store import set_active
    from boom_tasks.surveys import get_survey

    settings, db, valkey = _context()
    doc, fid, pipeline = _stored(db, args.filter_id, args.version)
    survey = get_survey(doc["survey"])
    if not args.force:
        programids = doc["permissions"].get(survey.name, [])
        check = check_match_rate(
            db, survey, pipeline, programids, settings.filters, args.reference_night
        )
        print(check.summary(), file=out)
        check.require_within_limit(doc["name"], hint="tighten it (or --force)")
    set_active(db, args.filter_id, True, fid=fid)
    signal_change(valkey)
    print(f"filter {doc['name']} ({args.filter_id}) active, version {fid}", file=out)
    return 0


def deactivate(args: argparse.Namespace, out: TextIO) -> int:
    """Deactivate a filter, recording why."""
    from boom_tasks.filter.cache import signal_change
    from boom_tasks.filter.store import set_active

    _, db, valkey = _context()
    set_active(db, args.filter_id, False, reason=args.reason)
    signal_change(valkey)
    print(f"filter {args.filter_id} inactive: {args.reason}", file=out)
    return 0


def _test_pipeline(args: argparse.Namespace, db: Any) -> tuple[list[dict], list[int], str]:
    """Return the pipeline, programids and description of what ``test`` runs."""
    from boom_tasks.filter.validate import parse_pipeline, validate_pipeline
    from boom_tasks.surveys import get_survey

    text = args.filter
    if text.lstrip().startswith("[") or text.startswith("@"):
        from boom_tasks.filter.cli import _pipeline_arg

        aux = get_survey(args.survey).aux
        pipeline = validate_pipeline(parse_pipeline(_pipeline_arg(text)), aux_collection=aux)
        return pipeline, _programids(args.programids), "inline pipeline"
    doc, fid, pipeline = _stored(db, text, args.version)
    return pipeline, doc["permissions"].get(doc["survey"], []), f"{doc['name']} version {fid}"


def test(args: argparse.Namespace, out: TextIO) -> int:
    """Run a filter (stored or inline) on stored alerts and print what passes."""
    from boom_tasks.surveys import get_survey

    settings, db, _ = _context()
    survey = get_survey(args.survey)
    pipeline, programids, what = _test_pipeline(args, db)
    selection = Selection(
        jd_range=night_jd_range(args.night) if args.night else None,
        object_ids=args.objects,
        candids=args.candids,
    )
    candids = select_candids(db, survey, selection)
    report = run_trial(db, survey, pipeline, programids, candids, settings.filters)
    print(
        f"{what}: {len(report.passed)} of {report.tried} alerts pass ({report.rate:.2%})", file=out
    )
    print_passes(report.passed, args.show, out)
    return 0
