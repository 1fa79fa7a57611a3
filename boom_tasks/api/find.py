"""A user's find, checked and bounded: the options shared by find and cone searches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.collection import Collection

from boom_tasks.api.encoding import from_extended_json
from boom_tasks.api.limits import AnswerBudget, Limits, check_read_only, raw
from boom_tasks.api.models import FindQuery
from boom_tasks.api.ordering import check_sort
from boom_tasks.services.mongo import user_query


@dataclass(frozen=True)
class FindOptions:
    """A find request once checked: BSON values in place of Extended JSON, a time budget."""

    filter: dict[str, Any]
    projection: dict[str, Any] | None
    sort: dict[str, Any] | None
    skip: int
    limit: int
    max_time_ms: int


def prepare_find(body: FindQuery, limits: Limits) -> FindOptions:
    """Check a find request and return its options.

    Raises
    ------
    BadRequest
        For a writing or JavaScript operator, a malformed sort, or a time budget
        over the cap.
    """
    check_read_only(body.filter, "filter")
    check_read_only(body.projection, "projection")
    sort = check_sort(body.sort)
    return FindOptions(
        filter=from_extended_json(body.filter),
        projection=from_extended_json(body.projection) if body.projection else None,
        sort=sort,
        skip=body.skip or 0,
        limit=body.limit or 0,
        max_time_ms=limits.max_time_ms(body.max_time_ms),
    )


def run_find(collection: Collection, options: FindOptions, budget: AnswerBudget) -> list[dict]:
    """Run a find within its time budget and the answer-size budget.

    Raises
    ------
    QueryRejected, QueryTimeout, ServiceUnavailable
        As :func:`boom_tasks.services.mongo.user_query` translates the driver's errors.
    BadRequest
        If the answer outgrows the budget.
    """
    with user_query(options.max_time_ms):
        cursor = raw(collection).find(
            options.filter,
            options.projection,
            skip=options.skip,
            limit=options.limit,
            sort=list(options.sort.items()) if options.sort else None,
            max_time_ms=options.max_time_ms,
        )
        return list(budget.read(cursor))


def keep_id(projection: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
    """Return ``projection`` made to keep ``_id``, and whether the user had excluded it.

    Answers assembled from several queries (cone searches) join on ``_id``; it is
    removed again afterwards when the user asked for ``{"_id": 0}``.
    """
    if not projection or projection.get("_id", 1) not in (0, False):
        return projection, False
    # {"_id": 0} alone means every other field: no projection, then _id removed here.
    rest = {k: v for k, v in projection.items() if k != "_id"}
    return (rest or None), True
