"""The latest passes of each filter, shown on the overview as pictures.

The dashboard draws the pictures itself (:mod:`boom_tasks.pictures`), from the
stored documents, rather than linking to the API's picture route: an ``<img>``
cannot send the API's bearer token, the page has no script to fetch one, and the
dashboard already admits only operators. It also keeps working when no API runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pymongo import DESCENDING
from pymongo.database import Database

from boom_tasks.surveys.base import Survey

#: Passes shown per filter, newest first.
THUMBNAILS_PER_FILTER = 4
#: Filters shown per survey (those with the most recent passes first).
MAX_FILTERS = 12


@dataclass(frozen=True)
class Pass:
    """One alert a filter passed."""

    candid: int
    object_id: str
    passed_at: dt.datetime | None


@dataclass
class FilterPasses:
    """A filter's latest passes."""

    filter_id: str
    name: str
    passes: list[Pass] = field(default_factory=list)


def _newest(f: FilterPasses) -> float:
    return max((p.passed_at.timestamp() for p in f.passes if p.passed_at), default=0.0)


def latest_passes(
    db: Database, survey: Survey, per_filter: int = THUMBNAILS_PER_FILTER
) -> list[FilterPasses]:
    """Return the latest passes of each filter of ``survey``, the most recently active first.

    One indexed query per filter (``filter_id``), a handful per page: a ``$group``
    over every pass ever recorded would read the whole collection at each reload.
    """
    out = []
    for filter_id in db[survey.filter_passes].distinct("filter_id"):
        docs = list(
            db[survey.filter_passes]
            .find(
                {"filter_id": filter_id},
                {"candid": 1, "objectId": 1, "passed_at": 1, "filter_name": 1},
            )
            .sort([("passed_at", DESCENDING), ("candid", DESCENDING)])
            .limit(per_filter)
        )
        out.append(
            FilterPasses(
                filter_id=str(filter_id),
                name=str(docs[0].get("filter_name") or "?") if docs else "?",
                passes=[
                    Pass(int(d["candid"]), str(d.get("objectId")), d.get("passed_at")) for d in docs
                ],
            )
        )
    out.sort(key=_newest, reverse=True)
    return out[:MAX_FILTERS]
