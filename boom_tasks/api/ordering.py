"""Sorting documents in Python the way MongoDB sorts them, for answers assembled here.

Cone searches fetch their documents in one query for all positions and split
them per position afterwards, so a user's ``sort`` is applied here rather than
by the database. Values of different types order as in BSON's comparison order;
a missing field sorts as null, as MongoDB's does.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

from bson import ObjectId

from boom_tasks.api.errors import BadRequest

#: BSON comparison order of the types an answer holds (MinKey and MaxKey aside).
_RANK_NULL, _RANK_NUMBER, _RANK_STRING, _RANK_OBJECT, _RANK_ARRAY = 1, 2, 3, 4, 5
_RANK_BINARY, _RANK_OBJECTID, _RANK_BOOL, _RANK_DATE, _RANK_OTHER = 6, 7, 8, 9, 10


def _value(doc: dict[str, Any], dotted: str) -> Any:
    """Return the value at a dotted path, or None where the path is missing."""
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _key(value: Any) -> tuple[int, Any]:
    """Return a key ordering ``value`` among values of any type as BSON does."""
    if value is None:
        return _RANK_NULL, 0
    if isinstance(value, bool):
        return _RANK_BOOL, value
    if isinstance(value, int | float):
        # NaN sorts before every other number in MongoDB.
        return _RANK_NUMBER, (value == value, value if value == value else 0)
    if isinstance(value, str):
        return _RANK_STRING, value
    if isinstance(value, dict):
        return _RANK_OBJECT, repr(sorted(value.items(), key=repr))
    if isinstance(value, list):
        return _RANK_ARRAY, repr(value)
    if isinstance(value, bytes):
        return _RANK_BINARY, (len(value), value)
    if isinstance(value, ObjectId):
        return _RANK_OBJECTID, value.binary
    if isinstance(value, dt.datetime):
        return _RANK_DATE, value.timestamp()
    return _RANK_OTHER, repr(value)


def _is_meta(direction: Any) -> bool:
    return isinstance(direction, dict) and list(direction) == ["$meta"]


def _sort_key(doc: dict[str, Any], field: str) -> tuple[int, Any]:
    return _key(_value(doc, field))


def check_sort(sort: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return a sort specification ``{field: 1, -1 or {"$meta": ...}, ...}`` as the driver takes it.

    Checked here because the driver would raise a TypeError of its own, not the
    server's message, for a direction such as ``"up"``, and for ``1.0``: a JSON
    number the database reads as 1 (JavaScript clients have no integers), so it
    is turned into the integer instead of refused.

    Raises
    ------
    BadRequest
        Naming the offending field.
    """
    checked: dict[str, Any] = {}
    for field, direction in (sort or {}).items():
        if _is_meta(direction):
            checked[field] = direction
        elif not isinstance(direction, bool) and direction in (1, -1):
            checked[field] = int(direction)
        else:
            raise BadRequest(f"sort: {field!r} must be 1 (ascending) or -1 (descending)")
    return checked or None


def sort_documents(docs: list[dict[str, Any]], sort: dict[str, Any]) -> list[dict[str, Any]]:
    """Return ``docs`` ordered by ``sort`` (``{field: 1 or -1}``); ties keep their order.

    ``$meta`` keys (text-search scores) have no value here and are ignored.
    """
    ordered = list(docs)
    keys = [(f, d) for f, d in sort.items() if not _is_meta(d)]
    # Stable sorts from the last key to the first give the lexicographic order.
    for field, direction in reversed(keys):
        ordered.sort(key=partial(_sort_key, field=field), reverse=direction == -1)
    return ordered
