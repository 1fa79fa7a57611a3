"""Joint light curves at filter time: the other surveys' history of the same object.

A filter naming ``survey_matches`` (e.g. ``survey_matches.ZTF.prv_candidates``)
gets, for each other registered survey, the objects associated with this alert's
object (``aliases.<SURVEY>`` of its aux document, :mod:`boom_tasks.crossmatch.aliases`),
each as ``{objectId, <history lists>}``. The broker joins them itself, after the
aux join, with one ``$lookup`` per other survey. Their points are cut as the
alert's own are: up to the alert's ``jd``, within the history window, and only
the other survey's public data (its default permissions: ZTF programid 1), since
a filter holds permissions of its own survey only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from boom_tasks.filter.validate import AUX_JOIN_FIELD, SURVEY_MATCHES_FIELD

if TYPE_CHECKING:
    from boom_tasks.surveys.base import Survey

#: Name each joined object is read under in ``$map`` (``$$match.prv_candidates``).
MATCH_VARIABLE = "match"


def _joined(other: Survey) -> str:
    return f"_{SURVEY_MATCHES_FIELD}_{other.name}"


def history_cut(source: str, other: Survey, window_days: float) -> dict[str, Any]:
    """Return the ``$filter`` keeping ``other``'s public points of ``source`` up to the alert."""
    point = "$$point"
    public = other.permissions.point_conditions(point, other.permissions.default)
    return {
        "$filter": {
            "input": {"$ifNull": [source, []]},
            "as": "point",
            "cond": {
                "$and": [
                    *public,
                    {"$lte": [f"{point}.jd", "$candidate.jd"]},
                    {"$lt": [{"$subtract": ["$candidate.jd", f"{point}.jd"]}, window_days]},
                ]
            },
        }
    }


def survey_match_stages(
    survey: Survey, others: Sequence[Survey], window_days: float
) -> list[dict[str, Any]]:
    """Return the stages adding ``survey_matches.<OTHER>`` (run while the aux join is present).

    Parameters
    ----------
    survey
        The filter's survey.
    others
        Every registered survey; ``survey`` itself is skipped.
    window_days
        How far back points are kept, in days before the alert.
    """
    others = [o for o in others if o.name != survey.name]
    if not others:
        return [{"$addFields": {SURVEY_MATCHES_FIELD: {}}}]
    lookups = [
        {
            "$lookup": {
                "from": other.aux,
                "localField": f"{AUX_JOIN_FIELD}.aliases.{other.name}",
                "foreignField": "_id",
                "as": _joined(other),
            }
        }
        for other in others
    ]
    variable = f"$${MATCH_VARIABLE}"
    matches = {
        other.name: {
            "$map": {
                "input": f"${_joined(other)}",
                "as": MATCH_VARIABLE,
                "in": {
                    "objectId": f"{variable}._id",
                    **{
                        name: history_cut(f"{variable}.{name}", other, window_days)
                        for name in other.history_fields
                    },
                },
            }
        }
        for other in others
    }
    return [
        *lookups,
        {"$addFields": {SURVEY_MATCHES_FIELD: matches}},
        {"$unset": [_joined(o) for o in others]},
    ]
