"""``boom filters``: add, update, list, show, validate, activate, deactivate and test filters.

This module parses; :mod:`boom_tasks.filter.cli_run` calls the commands of
:mod:`boom_tasks.filter.commands` (which the API's ``/filters`` routes call too)
and prints. The command line runs as an operator: every filter, any programids.
Every change is validated before it is stored and signalled to the filter workers,
which reload before their next batch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from boom_tasks import logs
from boom_tasks.entry import night_date, programid_list, whole_number
from boom_tasks.filter.cli_run import HANDLERS, Inline
from boom_tasks.filter.commands_base import FilterEnv, operator


def _pipeline_arg(text: str) -> str:
    """Return a pipeline given inline as JSON, or read from ``@FILE`` or a path."""
    path = Path(text[1:] if text.startswith("@") else text)
    if text.startswith("@") or (not text.lstrip().startswith("[") and path.is_file()):
        try:
            return path.read_text()
        except OSError as e:
            raise argparse.ArgumentTypeError(f"cannot read {path}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise argparse.ArgumentTypeError(f"cannot read {path}: not UTF-8 text") from None
    return text


def _filter_arg(text: str) -> str | Inline:
    """Return a stored filter's id, or an :class:`Inline` pipeline (JSON or ``@FILE``)."""
    if text.lstrip().startswith("[") or text.startswith("@"):
        return Inline(_pipeline_arg(text))
    return text


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``filters`` command and its sub-commands to ``boom``'s sub-parsers."""
    parser = subparsers.add_parser("filters", help="manage users' filters")
    parser.add_argument("--log-level", default="WARNING", type=logs.level_name)
    sub = parser.add_subparsers(dest="filters_command", required=True)
    add = sub.add_parser("add", help="store a new filter (inactive until activated)")
    add.add_argument("name")
    add.add_argument("pipeline", type=_pipeline_arg, help="JSON pipeline, or @FILE")
    add.add_argument("--survey", default="ZTF")
    add.add_argument("--programids", type=programid_list, default=[1], help="e.g. 1,2")
    add.add_argument("--user", default="admin", help="owner recorded on the filter")
    add.add_argument("--description", default="")
    upd = sub.add_parser("update", help="add a version (it becomes the active version)")
    upd.add_argument("filter_id")
    upd.add_argument("pipeline", type=_pipeline_arg, help="JSON pipeline, or @FILE")
    upd.add_argument("--changelog", default="")
    lst = sub.add_parser("list", help="list filters")
    lst.add_argument("--survey")
    show = sub.add_parser("show", help="print one filter, every version, as JSON")
    show.add_argument("filter_id")
    val = sub.add_parser("validate", help="check a pipeline without storing it")
    val.add_argument("pipeline", type=_pipeline_arg, help="JSON pipeline, or @FILE")
    val.add_argument("--survey", default="ZTF")
    act = sub.add_parser("activate", help="activate after checking its match rate")
    act.add_argument("filter_id")
    act.add_argument("--version", help="version (fid) to activate; default: the latest")
    act.add_argument("--reference-night", type=night_date, help="YYYYMMDD (default: newest)")
    act.add_argument("--force", action="store_true", help="skip the match-rate check")
    deact = sub.add_parser("deactivate", help="stop running a filter")
    deact.add_argument("filter_id")
    deact.add_argument("--reason", default="deactivated by an operator")
    _register_test(sub)
    return parser


def _register_test(sub: argparse._SubParsersAction) -> None:
    test = sub.add_parser("test", help="run a filter on stored alerts; publishes nothing")
    test.add_argument("filter", type=_filter_arg, help="filter id, or a JSON pipeline / @FILE")
    test.add_argument("--survey", default="ZTF", help="for an inline pipeline")
    test.add_argument("--version", help="version (fid) of a stored filter")
    test.add_argument("--night", type=night_date, help="YYYYMMDD (default: the newest stored)")
    test.add_argument("--objects", nargs="+", default=[], metavar="OBJECT_ID")
    test.add_argument(
        "--candids", nargs="+", type=whole_number(1, 2**63 - 1), default=[], metavar="CANDID"
    )
    test.add_argument("--programids", type=programid_list, default=[1], help="inline: e.g. 1,2")
    test.add_argument("--show", type=whole_number(0), default=20, help="passing alerts to print")


def _env() -> FilterEnv:
    """Return the environment of the command line: the configured database and Valkey."""
    from boom_tasks.filter.cache import signal_change
    from boom_tasks.services.mongo import get_db
    from boom_tasks.services.valkey import get_client
    from boom_tasks.settings import get_settings

    settings = get_settings()
    db = get_db(settings.mongo)
    return FilterEnv(db, settings.filters, lambda: signal_change(get_client(settings.valkey)))


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run a parsed ``boom filters`` command; return the exit status."""
    caller = operator(getattr(args, "user", "admin"))
    return HANDLERS[args.filters_command](args, _env(), caller, out or sys.stdout)
