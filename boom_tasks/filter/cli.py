"""``boom filters``: add, update, list, activate, deactivate and test users' filters.

Every change is validated before it is stored and signalled to the filter workers
(:func:`boom_tasks.filter.cache.signal_change`), which reload before their next batch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO


def _pipeline_arg(text: str) -> str:
    """Return a pipeline given inline as JSON, or read from ``@FILE`` or a path."""
    path = Path(text[1:] if text.startswith("@") else text)
    if text.startswith("@") or (not text.lstrip().startswith("[") and path.is_file()):
        return path.read_text()
    return text


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``filters`` command and its sub-commands to ``boom``'s sub-parsers."""
    parser = subparsers.add_parser("filters", help="manage users' filters")
    parser.add_argument("--log-level", default="WARNING")
    sub = parser.add_subparsers(dest="filters_command", required=True)
    add = sub.add_parser("add", help="store a new filter (inactive until activated)")
    add.add_argument("name")
    add.add_argument("pipeline", type=_pipeline_arg, help="JSON pipeline, or @FILE")
    add.add_argument("--survey", default="ZTF")
    add.add_argument("--programids", default="1", help="comma-separated, e.g. 1,2")
    add.add_argument("--user", default="admin")
    add.add_argument("--description", default="")
    upd = sub.add_parser("update", help="add a version (it becomes the active version)")
    upd.add_argument("filter_id")
    upd.add_argument("pipeline", type=_pipeline_arg, help="JSON pipeline, or @FILE")
    upd.add_argument("--changelog", default="")
    lst = sub.add_parser("list", help="list filters")
    lst.add_argument("--survey")
    act = sub.add_parser("activate", help="activate after checking its match rate")
    act.add_argument("filter_id")
    act.add_argument("--version", help="version (fid) to activate; default: the latest")
    act.add_argument("--reference-night", help="YYYYMMDD (default: the newest stored night)")
    act.add_argument("--force", action="store_true", help="skip the match-rate check")
    deact = sub.add_parser("deactivate", help="stop running a filter")
    deact.add_argument("filter_id")
    deact.add_argument("--reason", default="deactivated by an operator")
    test = sub.add_parser("test", help="run a filter on stored alerts; publishes nothing")
    test.add_argument("filter", help="filter id, or a JSON pipeline / @FILE")
    test.add_argument("--survey", default="ZTF")
    test.add_argument("--version", help="version (fid) of a stored filter")
    test.add_argument("--night", help="YYYYMMDD")
    test.add_argument("--objects", nargs="+", default=[], metavar="OBJECT_ID")
    test.add_argument("--candids", nargs="+", type=int, default=[], metavar="CANDID")
    test.add_argument("--programids", default="1", help="for an inline pipeline")
    test.add_argument("--show", type=int, default=20, help="passing alerts to print")
    return parser


def _programids(text: str) -> list[int]:
    return [int(p) for p in text.split(",") if p.strip()]


def _context() -> tuple[Any, Any, Any]:
    from boom_tasks.services.mongo import get_db
    from boom_tasks.services.valkey import get_client
    from boom_tasks.settings import get_settings

    settings = get_settings()
    return settings, get_db(settings.mongo), get_client(settings.valkey)


def _add(args: argparse.Namespace, out: TextIO) -> int:
    from boom_tasks.filter.cache import signal_change
    from boom_tasks.filter.store import add_filter
    from boom_tasks.surveys import get_survey

    _, db, valkey = _context()
    survey = get_survey(args.survey)
    filter_id = add_filter(
        db,
        name=args.name,
        survey=survey.name,
        pipeline=args.pipeline,
        programids=_programids(args.programids),
        user_id=args.user,
        description=args.description,
        aux_collection=survey.aux,
    )
    signal_change(valkey)
    print(f"filter {args.name!r} stored as {filter_id} (inactive: boom filters activate)", file=out)
    return 0


def _list(args: argparse.Namespace, out: TextIO) -> int:
    from boom_tasks.filter.store import list_filters

    _, db, _ = _context()
    docs = list_filters(db, args.survey)
    if not docs:
        print("no filters (boom filters add NAME PIPELINE)", file=out)
    for d in docs:
        state = "active" if d.get("active") else "inactive"
        why = (
            f" ({d['disabled_reason']})" if not d.get("active") and d.get("disabled_reason") else ""
        )
        print(
            f"{d['_id']}  {d['name']:<24} {d['survey']}  {state}{why}  version {d['active_fid']}"
            f"  ({len(d.get('fv', []))} versions)",
            file=out,
        )
    return 0


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run a parsed ``boom filters`` command; return the exit status."""
    from boom_tasks.filter import cli_run

    out = out or sys.stdout
    commands = {
        "add": _add,
        "update": cli_run.update,
        "list": _list,
        "activate": cli_run.activate,
        "deactivate": cli_run.deactivate,
        "test": cli_run.test,
    }
    return commands[args.filters_command](args, out)


def print_passes(passed: list[dict[str, Any]], show: int, out: TextIO) -> None:
    """Print the first ``show`` passing alerts with their annotations."""
    for doc in passed[:show]:
        notes = json.dumps(doc.get("annotations", {}), default=str, sort_keys=True)
        print(f"  {doc['_id']}  {doc.get('objectId')}  {notes}", file=out)
    if len(passed) > show:
        print(f"  ... and {len(passed) - show} more", file=out)
