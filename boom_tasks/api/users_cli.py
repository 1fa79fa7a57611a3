"""``boom users add|list|remove``: the API's accounts (see :mod:`boom_tasks.api.users`)."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TextIO

from boom_tasks import logs
from boom_tasks.entry import EXIT_OK, programid_list
from boom_tasks.errors import BoomError


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``users`` command and its sub-commands to ``boom``'s sub-parsers."""
    parser = subparsers.add_parser("users", help="manage the HTTP API's accounts")
    parser.add_argument("--log-level", default="WARNING", type=logs.level_name)
    sub = parser.add_subparsers(dest="users_command", required=True)
    add = sub.add_parser("add", help="create an account (asks for the password)")
    add.add_argument("name")
    add.add_argument(
        "--password",
        help="the password (visible in the process list and shell history: prefer the prompt)",
    )
    add.add_argument(
        "--catalogs",
        nargs="+",
        metavar="PATTERN",
        help="collections the user may read, fnmatch patterns (default: api.default_catalogs)",
    )
    add.add_argument(
        "--programids",
        type=programid_list,
        metavar="1,2",
        help="ZTF programids the user's filters may run on, comma-separated "
        "(default: public data only, programid 1)",
    )
    add.add_argument(
        "--admin",
        action="store_true",
        help="may also read operational collections, and see and change every filter",
    )
    add.add_argument("--replace", action="store_true", help="overwrite an existing account")
    sub.add_parser("list", help="list accounts")
    remove = sub.add_parser("remove", help="delete an account (its tokens stop working)")
    remove.add_argument("name")
    return parser


def _password(args: argparse.Namespace) -> str:
    if args.password is not None:
        return str(args.password)
    if not sys.stdin.isatty():
        # getpass would fall back to reading stdin, and end in EOFError when it is empty.
        raise BoomError("no terminal to ask the password on: give it with --password")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise BoomError("the passwords differ; nothing stored")
    return first


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run a parsed ``boom users`` command; return the exit status."""
    from boom_tasks.api.users import add_user, list_users, remove_user
    from boom_tasks.services.mongo import get_db
    from boom_tasks.settings import get_settings

    out = out or sys.stdout
    db = get_db(get_settings().mongo)
    if args.users_command == "add":
        user = add_user(
            db,
            args.name,
            _password(args),
            catalogs=args.catalogs,
            admin=args.admin,
            replace=args.replace,
            programids=args.programids,
        )
        print(f"user {user.name} stored", file=out)
    elif args.users_command == "list":
        for user in list_users(db):
            catalogs = "default" if user.catalogs is None else " ".join(user.catalogs)
            ids = "default" if user.programids is None else ",".join(map(str, user.programids))
            print(
                f"{user.name}\t{'admin' if user.admin else 'user'}\tcatalogs: {catalogs}"
                f"\tprogramids: {ids}",
                file=out,
            )
    elif not remove_user(db, args.name):
        raise BoomError(f"no user {args.name!r}")
    else:
        print(f"user {args.name} removed", file=out)
    return EXIT_OK
