"""``boom science list|run|enable``: see the science actors, backfill one, enable it again.

``boom science run NAME --night YYYYMMDD`` runs an actor (configured or not: a new
one can be tried before it is enabled) over a night's stored alerts, in batches,
as the ``<survey>_science`` stage would: same selection, same stored field, same
output topic (unless ``--no-publish``), same health record. Alerts that already
have a result of the actor's version are skipped unless ``--redo``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from boom_tasks import logs
from boom_tasks.entry import EXIT_FAILED, EXIT_OK, night_date

#: Candids per backfill batch (the bridge's batch size in production).
BACKFILL_BATCH = 1000


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``science`` command to ``boom``'s sub-parsers."""
    parser = subparsers.add_parser("science", help="science actors: list, backfill, enable")
    parser.add_argument("--log-level", default="WARNING", type=logs.level_name)
    sub = parser.add_subparsers(dest="science_command", required=True)
    sub.add_parser("list", help="the configured actors and every actor's health")
    run = sub.add_parser("run", help="run an actor over a night's stored alerts")
    run.add_argument("name", help="module under actors/ (or a dotted module path)")
    run.add_argument("--night", required=True, type=night_date, help="UTC date YYYYMMDD")
    run.add_argument("--survey", default="ZTF")
    run.add_argument("--redo", action="store_true", help="also alerts already done")
    run.add_argument("--no-publish", action="store_true", help="store results, publish nothing")
    enable = sub.add_parser("enable", help="enable an actor disabled after repeated failures")
    enable.add_argument("name")
    enable.add_argument("--survey", default="ZTF")
    return parser


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run a parsed ``boom science`` command; return the exit status."""
    out = out or sys.stdout
    commands = {"list": list_actors, "run": backfill, "enable": enable_actor}
    return commands[args.science_command](args, out)


def list_actors(args: argparse.Namespace, out: TextIO) -> int:
    """Print the configured actors, then the health of every actor that has run."""
    from boom_tasks.science.health import health
    from boom_tasks.science.loader import load_actors
    from boom_tasks.services.mongo import get_db
    from boom_tasks.settings import get_settings

    settings = get_settings()
    actors = load_actors(settings.science.actors)
    print(f"{len(actors)} configured science actor(s):", file=out)
    for a in actors:
        topic = a.output_topic or "no topic"
        print(f"  {a.name} v{a.version} [{', '.join(a.surveys)}] → {a.field}, {topic}", file=out)
        if a.description:
            print(f"      {a.description}", file=out)
    for doc in health(get_db(settings.mongo)):
        state = f"DISABLED: {doc.get('disabled_reason')}" if doc.get("disabled") else "enabled"
        print(
            f"{doc['_id']}: {state}; {doc.get('batches', 0)} batches "
            f"({doc.get('failed_batches', 0)} failed, {doc.get('failures', 0)} in a row), "
            f"{doc.get('alerts', 0)} alerts, {doc.get('results', 0)} results",
            file=out,
        )
    return EXIT_OK


def backfill(args: argparse.Namespace, out: TextIO) -> int:
    """Run one actor over a night's stored alerts; exit 1 if a batch failed."""
    from boom_tasks.filter.testing import Selection, night_jd_range, select_candids
    from boom_tasks.science.actor import kafka_publisher
    from boom_tasks.science.loader import load_actor
    from boom_tasks.science.stage import run_actor
    from boom_tasks.services.mongo import get_db
    from boom_tasks.settings import get_settings
    from boom_tasks.surveys import get_survey

    settings, survey = get_settings(), get_survey(args.survey)
    actor = load_actor(args.name)
    if survey.name not in actor.surveys:
        print(f"{actor.name} does not run on {survey.name} ({', '.join(actor.surveys)})", file=out)
        return EXIT_FAILED
    db = get_db(settings.mongo)
    candids = select_candids(db, survey, Selection(jd_range=night_jd_range(args.night)))
    publisher = None if args.no_publish else kafka_publisher(settings)
    started, totals, errors = time.monotonic(), [0, 0, 0, 0.0], []
    for k in range(0, len(candids), BACKFILL_BATCH):
        batch = candids[k : k + BACKFILL_BATCH]
        o = run_actor(db, survey, actor, batch, settings.science, publisher, redo=args.redo)
        for i, v in enumerate((o.selected, o.results, o.published, o.seconds)):
            totals[i] += v
        if o.error:
            errors.append(o.error)
            print(f"batch {k // BACKFILL_BATCH + 1} failed: {o.error}", file=out)
    selected, results, published, seconds = totals
    per_alert = f", {1000 * seconds / selected:.1f} ms per selected alert" if selected else ""
    print(
        f"{actor.name} on {survey.name} night {args.night}: {len(candids)} alerts, "
        f"{selected} selected, {results} results, {published} published; run() took "
        f"{seconds:.2f} s{per_alert}; {time.monotonic() - started:.2f} s in all; "
        f"{len(errors)} failed batch(es)",
        file=out,
    )
    return EXIT_FAILED if errors else EXIT_OK


def enable_actor(args: argparse.Namespace, out: TextIO) -> int:
    """Enable an actor again (its failures in a row reset)."""
    from boom_tasks.science.health import enable
    from boom_tasks.services.mongo import get_db
    from boom_tasks.settings import get_settings
    from boom_tasks.surveys import get_survey

    survey = get_survey(args.survey).name  # an unknown survey is named as such
    if not enable(get_db(get_settings().mongo), survey, args.name):
        print(f"no science actor {args.name} has run on {survey}", file=out)
        return EXIT_FAILED
    print(f"science actor {args.name} enabled on {survey}", file=out)
    return EXIT_OK
