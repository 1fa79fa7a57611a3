"""The pipeline the broker runs for one filter over one batch of alerts.

Step 1: keep the batch's alerts the filter may see: ``_id`` among the batch's
candids and, for a survey with programme permissions (ZTF), the programme among
the filter's (``Survey.permissions``; BOOM runs a filter only on the programids
it is permitted; Kowalski puts the same ``$in`` in its first ``$match``).
Step 2: only if the filter names an aux field (:func:`~.validate.aux_fields_in`),
join the object's aux document just before the first stage naming one, as BOOM
does, so the filter's cheap cuts shrink the batch before the join. The fields it
names are lifted to the root of the alert: the history arrays keep only points
the filter may see (its programids, for ZTF) from at most :data:`HISTORY_WINDOW_DAYS` before the
alert and never after it (a replayed night sees what the live night saw);
``cross_matches`` is an empty document for an object with none.
Step 3: the filter's own stages.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from boom_tasks.filter.joint import survey_match_stages
from boom_tasks.filter.validate import (
    AUX_HISTORY_FIELDS,
    AUX_JOIN_FIELD,
    SURVEY_MATCHES_FIELD,
    aux_fields_in,
)
from boom_tasks.surveys import SURVEYS

if TYPE_CHECKING:
    from boom_tasks.surveys.base import Permissions, Survey

#: How far back a filter sees an object's history, in days before the alert (BOOM's window).
HISTORY_WINDOW_DAYS = 365
#: Name each history point is tested under in ``$filter`` (``$$point.jd``).
POINT_VARIABLE = "point"


def run_pipeline(
    user_pipeline: list[dict[str, Any]],
    *,
    candids: list[int],
    programids: list[int],
    survey: Survey,
) -> list[dict[str, Any]]:
    """Return the aggregation pipeline that runs a filter over one batch of alerts.

    Parameters
    ----------
    user_pipeline
        The filter's stages, already accepted by
        :func:`~boom_tasks.filter.validate.validate_pipeline` when the filter was
        saved (not again here: a refusal per batch would fail the whole batch).
    candids
        The batch, as alert ``_id`` values.
    programids
        The programids the filter is permitted to see, for the alerts and for
        every history point (ignored by a survey without programme permissions).
    survey
        The survey: its aux collection (joined on ``objectId``) and permission model.
    """
    stages = [batch_match(candids, programids, survey.permissions)]
    join_at = next((i for i, stage in enumerate(user_pipeline) if aux_fields_in(stage)), None)
    if join_at is None:
        return [*stages, *user_pipeline]
    join = aux_stages(aux_fields_in(user_pipeline), programids, survey)
    return [*stages, *user_pipeline[:join_at], *join, *user_pipeline[join_at:]]


def chunked_run_pipelines(
    user_pipeline: list[dict[str, Any]],
    *,
    candids: Sequence[int],
    programids: Sequence[int],
    survey: Survey,
    step: int,
) -> Iterator[list[dict[str, Any]]]:
    """Yield :func:`run_pipeline` for each chunk of ``step`` candids, in order.

    A filter runs on many candids a chunk at a time (``filters.candids_per_query``):
    the filter stage on a batch, ``boom filters test`` and activation on a night.
    """
    for k in range(0, len(candids), step):
        yield run_pipeline(
            user_pipeline,
            candids=list(candids[k : k + step]),
            programids=list(programids),
            survey=survey,
        )


def batch_match(
    candids: Sequence[int], programids: Sequence[int], permissions: Permissions
) -> dict[str, Any]:
    """Return the ``$match`` keeping the batch's alerts of the permitted programids."""
    return {"$match": {"_id": {"$in": list(candids)}, **permissions.alert_match(programids)}}


def aux_stages(
    fields: Sequence[str], programids: Sequence[int], survey: Survey
) -> list[dict[str, Any]]:
    """Return the stages joining an alert's aux document and lifting ``fields`` to its root.

    The joined array is first reduced to its one document (an aux ``_id`` is the
    objectId) with ``$unwind`` (no document: no ``aux`` field, and every lifted field
    takes its empty default), and fields are read from that document. Reading
    ``$aux.prv_candidates`` straight off the joined array would make the
    expression traverse an array: correct MongoDB, but the local MongoDB
    stand-in returns such paths as missing. The lifted fields are computed and the
    joined document dropped (``$$REMOVE``) in one stage: each stage copies every
    document on the stand-in, which made a separate ``$addFields`` and ``$unset`` cost
    more than the join itself (3.9 s against 2.6 s per 1,000 alerts; docs/performance.md).
    """
    lifted = {
        f: _lifted(f, programids, survey.permissions) for f in fields if f != SURVEY_MATCHES_FIELD
    }
    # Only the fields named are joined: an aux document is mostly light curve (11 KB of
    # a ZTF object's 13 are non-detections), which every later stage would carry.
    joined = [f for f in fields if f != SURVEY_MATCHES_FIELD]
    if SURVEY_MATCHES_FIELD in fields:
        joined.append("aliases")  # the other surveys' objects are found through them
    join: list[dict[str, Any]] = [
        {
            "$lookup": {
                "from": survey.aux,
                "localField": "objectId",
                "foreignField": "_id",
                # (localField with a pipeline: MongoDB 5.0 or later)
                "pipeline": [{"$project": dict.fromkeys(joined or ["_id"], 1)}],
                "as": AUX_JOIN_FIELD,
            }
        },
        {"$unwind": {"path": f"${AUX_JOIN_FIELD}", "preserveNullAndEmptyArrays": True}},
    ]
    if SURVEY_MATCHES_FIELD not in fields:
        return [*join, {"$addFields": {**lifted, AUX_JOIN_FIELD: "$$REMOVE"}}]
    # The other surveys' objects are joined through the aux document's aliases.
    joint = survey_match_stages(survey, list(SURVEYS.values()), HISTORY_WINDOW_DAYS)
    return [
        *join,
        *([{"$addFields": lifted}] if lifted else []),
        *joint,
        {"$unset": AUX_JOIN_FIELD},
    ]


def _lifted(field: str, programids: Sequence[int], permissions: Permissions) -> dict[str, Any]:
    source = f"${AUX_JOIN_FIELD}.{field}"
    if field not in AUX_HISTORY_FIELDS:
        return {"$ifNull": [source, {}]}
    point = f"$${POINT_VARIABLE}"
    return {
        "$filter": {
            "input": {"$ifNull": [source, []]},
            "as": POINT_VARIABLE,
            "cond": {
                "$and": [
                    *permissions.point_conditions(point, programids),
                    {"$lte": [f"{point}.jd", "$candidate.jd"]},
                    {"$lt": [{"$subtract": ["$candidate.jd", f"{point}.jd"]}, HISTORY_WINDOW_DAYS]},
                ]
            },
        }
    }
