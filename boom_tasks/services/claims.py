"""Claims in MongoDB: the first process to insert a key wins, every other one is told no.

A unique ``_id`` is the whole mechanism: two schedulers (or two replay runners)
insert the same key, the server accepts exactly one, the others get a duplicate
key error, translated here so callers never catch pymongo's.
"""

from __future__ import annotations

from typing import Any

from pymongo import errors as pymongo_errors
from pymongo.collection import Collection

from boom_tasks.services.mongo import mongo_errors


def insert_once(collection: Collection, doc: dict[str, Any], what: str) -> bool:
    """Insert ``doc``; return False if a document with its ``_id`` already exists.

    Parameters
    ----------
    collection
        Where the claims live.
    doc
        The claim, with its ``_id`` (the key only one process may hold).
    what
        What is claimed, for error messages.

    Raises
    ------
    ServiceUnavailable, PermanentError
        As :func:`~boom_tasks.services.mongo.mongo_errors` translates other failures.
    """
    with mongo_errors(f"claiming {what}"):
        try:
            collection.insert_one(doc)
        except pymongo_errors.DuplicateKeyError:
            return False
    return True
