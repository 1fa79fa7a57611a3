"""Stored documents of one alert → the message published for it.

Step 1: take the alert's identity and position from its candidate.
Step 2: list the filters it passed, each filter's annotations as JSON text.
Step 3: take the object's light curve from its aux document as of this alert:
        points up to the alert's ``jd``, sorted by time, limited to the
        points the readers may see (the survey's permission model).
Step 4: add the cross-matches (JSON text per catalogue), cutouts, stage times and
        the provenance (run, code, filter, model and catalog versions:
        :mod:`~boom_tasks.output.provenance`).
Step 5: fit everything to the output schema with
        :func:`~boom_tasks.output.schema.conform`: plain Python types, and
        null for whatever is missing.

Everything here is pure: the output actor reads the documents and publishes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from boom_tasks.output.schema import OutputMessageError, conform, load_schema

if TYPE_CHECKING:
    from boom_tasks.surveys.base import Survey

#: The ``publisher`` of every message.
PUBLISHER = "boom-tasks"

#: Stages that may stamp an alert, in pipeline order (fields of ``times``).
TIME_STAGES = ("received", "ingested", "crossmatched", "enriched", "filtered", "published")

#: Cutout fields, the same in the cutouts document and in the message.
CUTOUT_FIELDS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")


def build_message(
    survey: Survey,
    alert: Mapping[str, Any],
    aux: Mapping[str, Any] | None,
    cutouts: Mapping[str, Any] | None,
    passes: list[dict[str, Any]],
    times: dict[str, float],
    *,
    programids: Collection[int] | None = None,
    survey_matches: list[dict[str, Any]] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the message published for one alert that passed filters.

    Parameters
    ----------
    survey
        The survey: its output schema, point format and permission model.
    alert
        The alert document (``<survey>_alerts``).
    aux
        The object's document (``<survey>_alerts_aux``), or None when it has none.
    cutouts
        The cutouts document (``<survey>_alerts_cutouts``), or None.
    passes
        One dict per filter passed: ``filter_id``, ``name``, ``version`` (may be
        None), ``passed_at`` (Unix seconds or a datetime) and ``annotations``
        (a dict of anything JSON can hold, plus datetimes, ObjectIds, numpy
        values). Stored pass documents, with ``filter_name`` and ``fid``, work too.
    times
        Unix seconds (or datetimes) by stage name, from :data:`TIME_STAGES`.
    programids
        Programids the message's readers may see (a survey with programme
        permissions). History points of other programmes are left out, as
        BOOM does with a filter's permissions. None keeps every point.
    survey_matches
        The other surveys' objects at this position and their photometry
        (:func:`boom_tasks.output.matches.survey_matches`), for a schema that has them.
    provenance
        What made the message
        (:func:`~boom_tasks.output.provenance.message_provenance`); None: unknown.

    Returns
    -------
    dict
        A message that :func:`~boom_tasks.output.schema.encode` accepts.

    Raises
    ------
    OutputMessageError
        If a document lacks what the schema requires (candid, objectId, jd,
        ra, dec), a value has the wrong type, or ``times`` names an unknown stage.
    """
    candidate = dict(alert.get("candidate") or {})
    history = aux or {}
    message = {
        "schemavsn": survey.output.schema_version,
        "publisher": PUBLISHER,
        "survey": survey.name,
        "candid": alert.get("candid", alert.get("_id")),
        "objectId": alert.get("objectId"),
        "jd": candidate.get("jd"),
        "ra": candidate.get("ra"),
        "dec": candidate.get("dec"),
        "filters": [filter_result(p) for p in passes],
        # A model that gave no score is listed in classifications_skipped instead.
        "classifications": {
            k: v for k, v in (alert.get("classifications") or {}).items() if v is not None
        },
        "classifications_skipped": alert.get("classifications_skipped") or {},
        "properties": alert.get("properties"),
        "cross_matches": cross_matches_json(history.get("cross_matches")),
        "candidate": survey.output.point(candidate),
        **light_curve(survey, history, candidate.get("jd"), programids),
        **{name: (cutouts or {}).get(name) for name in CUTOUT_FIELDS},
        "times": stage_times(times),
        "survey_matches": survey_matches or [],
        "provenance": provenance,
    }
    out: dict[str, Any] = conform(message, load_schema(survey.name))
    return out


def filter_result(passed: Mapping[str, Any]) -> dict[str, Any]:
    """Return one entry of ``filters``: ids as text, annotations as JSON text.

    ``passed`` may also be a stored pass document (``<survey>_filter_passes``),
    which names the filter ``filter_name`` and its version ``fid``.
    """
    name = passed.get("name", passed.get("filter_name"))
    version = passed.get("version", passed.get("fid"))
    return {
        "filter_id": None if passed.get("filter_id") is None else str(passed["filter_id"]),
        "name": name,
        "version": None if version is None else str(version),
        "passed_at": passed.get("passed_at"),
        "annotations": to_json(passed.get("annotations") or {}),
    }


def cross_matches_json(matches: Mapping[str, Any] | None) -> dict[str, str]:
    """Return each catalogue's rows as JSON text, by catalogue name.

    Rows differ from catalogue to catalogue (Gaia, PS1, NED, ... each has its
    own columns), so a typed record would tie the schema to the configured
    catalogues; a map keeps the catalogue names visible and each value one
    ``json.loads`` away.
    """
    return {str(name): to_json(rows) for name, rows in (matches or {}).items()}


def to_json(value: Any) -> str:
    """Return ``value`` as compact, strict JSON (non-finite numbers become null).

    Datetimes become ISO 8601 text, numpy values their Python equivalent, and
    anything else JSON cannot hold (ObjectIds, Decimal128) its ``str()``.
    """
    return json.dumps(_json_plain(value), allow_nan=False, separators=(",", ":"))


def _json_plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return [_json_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        # NaN and Infinity are not JSON: browsers' JSON.parse rejects them.
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def light_curve(
    survey: Survey,
    history: Mapping[str, Any],
    jd: Any,
    programids: Collection[int] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Return the object's history lists as of ``jd``, each sorted by time.

    A later alert of the object may already have added points to the aux
    document; leaving them out keeps a re-published message identical to the
    first one.
    """
    return {
        name: sorted(
            (
                survey.output.point(p)
                for p in _visible(survey, history.get(name) or [], jd, programids)
            ),
            key=lambda p: float(p["jd"]),
        )
        for name in survey.history_fields
    }


def _visible(
    survey: Survey,
    points: Iterable[Mapping[str, Any]],
    jd: Any,
    programids: Collection[int] | None,
) -> Iterable[Mapping[str, Any]]:
    for point in points:
        when = point.get("jd")
        if not isinstance(when, int | float) or (isinstance(jd, int | float) and when > jd):
            continue
        if survey.permissions.visible(point, programids):
            yield point


def stage_times(times: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``times`` keyed by every stage of :data:`TIME_STAGES` (None where absent).

    Raises
    ------
    OutputMessageError
        If ``times`` names a stage not in :data:`TIME_STAGES` (a typo would
        otherwise silently drop a timestamp).
    """
    unknown = sorted(set(times) - set(TIME_STAGES))
    if unknown:
        raise OutputMessageError(f"unknown stage(s) {unknown} in times; known: {TIME_STAGES}")
    return {stage: times.get(stage) for stage in TIME_STAGES}
