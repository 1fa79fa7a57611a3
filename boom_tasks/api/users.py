"""API accounts in the ``users`` collection: ``_id`` = user name, a scrypt hash, permissions.

Accounts are provisioned by an operator (``boom users add``), as BOOM's are by an
admin. A user's ``catalogs`` are ``fnmatch`` patterns of the collections they may
read; None means the configured default (``api.default_catalogs``), so changing
the default reaches every account that never had its own list. A user's
``programids`` are the ZTF programids their filters may run on; None means
public data only (:data:`DEFAULT_PROGRAMIDS`). Admins may use any.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from boom_tasks.api.passwords import hash_password, verify_password
from boom_tasks.errors import BoomError
from boom_tasks.services.mongo import mongo_errors

#: The accounts collection, in the broker's database. The API never serves it.
USERS_COLLECTION = "users"

#: User names: what fits in a URL, a log line and a JWT subject without escaping.
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
#: ZTF programids of an account without its own list: public data only (1; 2 is the
#: ZTF partnership's, 3 Caltech's), the default BOOM gives its filters too.
DEFAULT_PROGRAMIDS = (1,)


class UserError(BoomError):
    """An account cannot be created, changed or removed as asked."""


@dataclass(frozen=True)
class User:
    """An authenticated API user.

    Attributes
    ----------
    name
        The user name (the document's ``_id``).
    catalogs
        Patterns of readable collections; None: the configured default.
    admin
        Admins also read the broker's operational collections, and see and
        change every user's filters, with any programids.
    programids
        ZTF programids the user's filters may run on; None: :data:`DEFAULT_PROGRAMIDS`.
    """

    name: str
    catalogs: tuple[str, ...] | None
    admin: bool
    programids: tuple[int, ...] | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> User:
        """Build a user from its stored document."""
        catalogs = doc.get("catalogs")
        programids = doc.get("programids")
        return cls(
            name=doc["_id"],
            catalogs=None if catalogs is None else tuple(catalogs),
            admin=bool(doc.get("admin", False)),
            programids=None if programids is None else tuple(int(p) for p in programids),
        )

    def allowed_programids(self) -> tuple[int, ...] | None:
        """Return the programids this user's filters may use; None (any) for an admin."""
        if self.admin:
            return None
        return DEFAULT_PROGRAMIDS if self.programids is None else self.programids

    def programids_beyond(self, programids: Sequence[int]) -> list[int]:
        """Return those of ``programids`` this user may not give a filter, sorted."""
        allowed = self.allowed_programids()
        if allowed is None:
            return []
        return sorted(set(programids) - set(allowed))


def add_user(
    db: Database,
    name: str,
    password: str,
    *,
    catalogs: list[str] | None = None,
    admin: bool = False,
    replace: bool = False,
    programids: Sequence[int] | None = None,
) -> User:
    """Create (or with ``replace``, overwrite) the account ``name``.

    Raises
    ------
    UserError
        If the name is invalid, the password empty, a programid negative, or the
        account exists and ``replace`` is False.
    """
    if not _NAME.fullmatch(name):
        raise UserError(f"invalid user name {name!r}: use 1-64 letters, digits, '_.@-'")
    if not password:
        raise UserError("the password must not be empty")
    if programids is not None and any(p < 0 for p in programids):
        raise UserError(f"programids must not be negative: {list(programids)}")
    now = dt.datetime.now(dt.UTC)
    doc = {
        "_id": name,
        "password": hash_password(password),
        "catalogs": catalogs,
        "admin": admin,
        "programids": None if programids is None else sorted(set(programids)),
        "updated_at": now,
    }
    users = db[USERS_COLLECTION]
    with mongo_errors(f"storing user {name}"):
        try:
            if replace:
                users.replace_one({"_id": name}, {**doc, "created_at": now}, upsert=True)
            else:
                users.insert_one({**doc, "created_at": now})
        except DuplicateKeyError:
            raise UserError(f"user {name!r} exists; pass --replace to overwrite it") from None
    return User.from_doc(doc)


def get_user(db: Database, name: str) -> User | None:
    """Return the account ``name``, or None if there is none."""
    with mongo_errors(f"reading user {name}"):
        doc = db[USERS_COLLECTION].find_one({"_id": name}, {"password": 0})
    return None if doc is None else User.from_doc(doc)


def authenticate(db: Database, name: str, password: str) -> User | None:
    """Return the account if ``password`` is its password, else None (same cost either way)."""
    with mongo_errors("checking a password"):
        doc = db[USERS_COLLECTION].find_one({"_id": name})
    if not verify_password(password, None if doc is None else doc.get("password")):
        return None
    assert doc is not None  # verify_password refuses a missing account
    return User.from_doc(doc)


def list_users(db: Database) -> list[User]:
    """Return every account, by name (hashes are not read)."""
    with mongo_errors("listing users"):
        docs = db[USERS_COLLECTION].find({}, {"password": 0}).sort("_id", 1)
        return [User.from_doc(d) for d in docs]


def remove_user(db: Database, name: str) -> bool:
    """Delete the account ``name``; return whether it existed.

    Its tokens stop working at once: every request looks its user up.
    """
    with mongo_errors(f"removing user {name}"):
        return db[USERS_COLLECTION].delete_one({"_id": name}).deleted_count == 1
