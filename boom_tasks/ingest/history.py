"""Merging light-curve points into an object's stored history (pure functions).

Every alert repeats up to 30 days of its object's history, so the same point
arrives many times. Points are de-duplicated by ``jd`` (one exposure), refined by
the survey's point id where there is one (``Survey.point_id_fields``: ZTF's
``candid``, LSST's ``diaSourceId``): real ZTF alerts sometimes carry two distinct
detections of one object in the same exposure (e.g. ZTF17aadcuwj at
jd 2460201.9350347, candids ...5004 and ...5005), and both are kept.

The copies of one point disagree: a ``prv_candidate`` repeats the ``candidate``
it once was with rounded floats and fewer fields. The copy with more non-null
fields wins (so the alert's own full candidate record beats later summaries of
it), the other only fills its gaps. Merging is therefore idempotent and does not
depend on the order alerts arrive in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from boom_tasks.alert.base import History

#: The history arrays of an aux document, in the order they are stored (BOOM's layout;
#: a survey stores those of them it has, ``Survey.history_fields``).
HISTORY_FIELDS = ("prv_candidates", "prv_nondetections", "fp_hists")

#: Field telling apart two points of one ``jd`` when a survey names none.
DEFAULT_ID_FIELD = "candid"


def point_key(point: dict[str, Any], id_field: str = DEFAULT_ID_FIELD) -> tuple[float, int]:
    """Return the identity of a point: its ``jd`` and, where it has one, its ``id_field``."""
    return (point["jd"], point.get(id_field) or 0)


def _richness(point: dict[str, Any]) -> int:
    return sum(value is not None for value in point.values())


def fill_missing(kept: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Return ``kept`` with the fields it lacks (absent or null) taken from ``other``."""
    merged = dict(kept)
    for key, value in other.items():
        if value is not None and merged.get(key) is None:
            merged[key] = value
    return merged


def merge_points(
    stored: Iterable[dict[str, Any]],
    incoming: Iterable[dict[str, Any]],
    id_field: str = DEFAULT_ID_FIELD,
) -> list[dict[str, Any]]:
    """Merge two lists of points, one per :func:`point_key`, sorted by it.

    Parameters
    ----------
    stored
        Points already in the database (they win ties).
    incoming
        Points from new alerts.
    id_field
        Field telling apart two points of one ``jd`` (see :func:`point_key`).
    """
    by_key: dict[tuple[float, int], dict[str, Any]] = {}
    for point in [*stored, *incoming]:
        key = point_key(point, id_field)
        held = by_key.get(key)
        if held is None:
            by_key[key] = point
        elif _richness(point) > _richness(held):
            by_key[key] = fill_missing(point, held)
        else:
            by_key[key] = fill_missing(held, point)
    return [by_key[key] for key in sorted(by_key)]


def merge_history(
    stored: dict[str, Any] | None,
    histories: Iterable[History],
    fields: Sequence[str] = HISTORY_FIELDS,
    id_fields: Mapping[str, str] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Return the merged history arrays of one object.

    Parameters
    ----------
    stored
        The object's aux document, or None for a new object.
    histories
        History of each alert of the object in the batch.
    fields
        The survey's history lists (``Survey.history_fields``).
    id_fields
        Point id of each list (``Survey.point_id_fields``); :data:`DEFAULT_ID_FIELD`
        for a list it does not name.
    """
    histories = list(histories)
    stored = stored or {}
    ids = id_fields or {}
    return {
        name: merge_points(
            stored.get(name) or [],
            (p for h in histories for p in getattr(h, name)),
            ids.get(name, DEFAULT_ID_FIELD),
        )
        for name in fields
    }


def history_changed(stored: dict[str, Any] | None, merged: dict[str, list[dict[str, Any]]]) -> bool:
    """Tell whether writing ``merged`` would change the stored document.

    A replayed night must leave documents exactly as they were, ``updated_at``
    included, so an unchanged history is not written at all.
    """
    if stored is None:
        return True
    return any((stored.get(name) or []) != points for name, points in merged.items())
