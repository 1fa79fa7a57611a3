"""What each ``boom filters`` sub-command prints: call one command, print its result.

:mod:`boom_tasks.filter.cli` parses the arguments and builds the environment; the
functions here call :mod:`boom_tasks.filter.commands` and print. Errors are the
commands' own and reach :func:`boom_tasks.entry.exit_with`, which prints them as
``boom: error: ...`` and exits with :data:`boom_tasks.entry.EXIT_ERROR`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any, TextIO

from boom_tasks.entry import EXIT_OK
from boom_tasks.filter import commands, commands_trial
from boom_tasks.filter.commands_base import Caller, FilterEnv
from boom_tasks.filter.commands_trial import Chosen
from boom_tasks.filter.testing import MatchRateCheck, Selection, night_jd_range

__all__ = ["HANDLERS", "Inline", "print_passes"]


@dataclass(frozen=True)
class Inline:
    """A pipeline given on the command line (JSON text) in place of a stored filter's id."""

    text: str


def _print_check(check: MatchRateCheck | None, out: TextIO) -> None:
    if check is not None:
        print(check.summary(), file=out)


def add(args: argparse.Namespace, env: FilterEnv, caller: Caller, out: TextIO) -> int:
    """Store a new filter, inactive."""
    doc = commands.add(
        env,
        caller,
        name=args.name,
        survey=args.survey,
        pipeline=args.pipeline,
        programids=args.programids,
        description=args.description,
    )
    print(
        f"filter {args.name!r} stored as {doc['_id']} (inactive: boom filters activate)", file=out
    )
    return EXIT_OK


def list_(args: argparse.Namespace, env: FilterEnv, caller: Caller, out: TextIO) -> int:
    """Print one line per filter: id, name, survey, state, active version."""
    docs = commands.list_(env, caller, args.survey)
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
    return EXIT_OK


def show(args: argparse.Namespace, env: FilterEnv, caller: Caller, out: TextIO) -> int:
    """Print one filter, every version included, as JSON."""
    doc = commands.show(env, caller, args.filter_id)
    print(json.dumps(doc, default=str, indent=2, sort_keys=True), file=out)
    return EXIT_OK


def validate(args: argparse.Namespace, env: FilterEnv, caller: Caller, out: TextIO) -> int:
    """Print the pipeline as it would be stored."""
    pipeline = commands.validate(env, caller, args.pipeline, args.survey)
    print(json.dumps(pipeline, default=str, indent=2), file=out)
    return EXIT_OK


def update(args: argparse.Namespace, env: FilterEnv, caller: Caller, out: TextIO) -> int:
    """Add a version and make it the active one; an active filter's is checked first."""
    added = commands.update(env, caller, args.filter_id, args.pipeline, changelog=args.changelog)
    _print_check(added.check, out)
    print(
        f"filter {args.filter_id}: version {added.fid} stored and made the active version", file=out
    )
    return EXIT_OK


def activate(args: argparse.Namespace, env: FilterEnv, caller: Caller, out: TextIO) -> int:
    """Check the match rate on a reference night, then activate."""
    done = commands.activate(
        env,
        caller,
        args.filter_id,
        fid=args.version,
        reference_night=args.reference_night,
        force=args.force,
    )
    _print_check(done.check, out)
    print(f"filter {done.name} ({done.filter_id}) active, version {done.fid}", file=out)
    return EXIT_OK


def deactivate(args: argparse.Namespace, env: FilterEnv, caller: Caller, out: TextIO) -> int:
    """Deactivate a filter, recording why."""
    done = commands.deactivate(env, caller, args.filter_id, args.reason)
    print(f"filter {done.filter_id} inactive: {done.reason}", file=out)
    return EXIT_OK


def _chosen(args: argparse.Namespace) -> Chosen | None:
    """Return the alerts ``--night``, ``--objects`` or ``--candids`` select (None: newest night)."""
    if args.candids:
        return Chosen(Selection(candids=args.candids), f"{len(args.candids)} candids")
    if args.objects:
        return Chosen(Selection(object_ids=args.objects), f"{len(args.objects)} objects")
    if args.night:
        return Chosen(Selection(jd_range=night_jd_range(args.night)), f"night {args.night}")
    return None


def test(args: argparse.Namespace, env: FilterEnv, caller: Caller, out: TextIO) -> int:
    """Run a filter (stored or inline) on stored alerts and print what passes."""
    if isinstance(args.filter, Inline):
        result = commands_trial.test_pipeline(
            env,
            caller,
            args.filter.text,
            survey=args.survey,
            programids=args.programids,
            chosen=_chosen(args),
        )
        what = "inline pipeline"
    else:
        result = commands_trial.test_stored(
            env, caller, args.filter, fid=args.version, chosen=_chosen(args)
        )
        assert result.filter is not None
        what = f"{result.filter['name']} version {result.filter['fid']}"
    print(
        f"{what} on {result.selection}: {len(result.passed)} of {result.tried} alerts pass "
        f"({result.rate:.2%})",
        file=out,
    )
    print_passes(result.passed, args.show, out)
    return EXIT_OK


def print_passes(passed: list[dict[str, Any]], show: int, out: TextIO) -> None:
    """Print the first ``show`` passing alerts with their annotations."""
    for doc in passed[:show]:
        notes = json.dumps(doc.get("annotations", {}), default=str, sort_keys=True)
        print(f"  {doc['_id']}  {doc.get('objectId')}  {notes}", file=out)
    if len(passed) > show:
        print(f"  ... and {len(passed) - show} more", file=out)


#: The function of each sub-command (``args.filters_command``).
HANDLERS = {
    "add": add,
    "update": update,
    "list": list_,
    "show": show,
    "validate": validate,
    "activate": activate,
    "deactivate": deactivate,
    "test": test,
}
