"""``boom filters update|activate|deactivate|test``: what runs or guards a filter version."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from boom_tasks.filter.cli import _context, _programids, print_passes
from boom_tasks.filter.store import get_filter, stored_programids, version_pipeline
from boom_tasks.filter.testing import (
    MatchRateTooHigh,
    Selection,
    check_match_rate,
    night_jd_range,
    run_trial,
    select_candids,
)

__all__ = ["MatchRateTooHigh", "activate", "deactivate", "test", "update"]


def _stored(db: Any, filter_id: str, fid: str | None) -> tuple[dict, str, list[dict]]:
    doc = get_filter(db, filter_id)
    fid, pipeline = version_pipeline(doc, fid)
    return doc, fid, pipeline


def _require_match_rate(
    settings: Any,
    db: Any,
    doc: dict,
    pipeline: list[dict],
    night: str | None,
    hint: str,
    out: TextIO,
) -> None:
    """Print the match-rate check of a version about to run; raise MatchRateTooHigh past it."""
    check = check_match_rate(db, doc, pipeline, settings.filters, night)
    print(check.summary(), file=out)
    check.require_within_limit(doc["name"], hint=hint)


def activate(args: argparse.Namespace, out: TextIO) -> int:
    """Check the match rate on a reference night, then activate (raises MatchRateTooHigh)."""
    from boom_tasks.filter.cache import signal_change
    from boom_tasks.filter.store import set_active

    settings, db, valkey = _context()
    doc, fid, pipeline = _stored(db, args.filter_id, args.version)
    if not args.force:
        hint = "tighten it (or --force)"
        _require_match_rate(settings, db, doc, pipeline, args.reference_night, hint, out)
    set_active(db, args.filter_id, True, fid=fid)
    signal_change(valkey)
    print(f"filter {doc['name']} ({args.filter_id}) active, version {fid}", file=out)
    return 0


def update(args: argparse.Namespace, out: TextIO) -> int:
    """Add a version and make it the active one; an active filter's is checked first."""
    from boom_tasks.filter.cache import signal_change
    from boom_tasks.filter.store import add_version
    from boom_tasks.filter.validate import parse_pipeline, validate_pipeline
    from boom_tasks.surveys import get_survey

    settings, db, valkey = _context()
    doc = get_filter(db, args.filter_id)
    aux = get_survey(doc["survey"]).aux
    if doc.get("active"):
        # The new version runs at once: the guard of `activate` applies to it too.
        pipeline = validate_pipeline(parse_pipeline(args.pipeline), aux_collection=aux)
        hint = "tighten it, or deactivate the filter first"
        _require_match_rate(settings, db, doc, pipeline, None, hint, out)
    fid = add_version(db, args.filter_id, args.pipeline, args.changelog, aux)
    signal_change(valkey)
    print(f"filter {args.filter_id}: version {fid} stored and made the active version", file=out)
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
    return pipeline, stored_programids(doc), f"{doc['name']} version {fid}"


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
