"""Merging light-curve points into an object's stored history (pure functions).

Every alert repeats up to 30 days of its object's history, so the same point
arrives many times, sometimes with fewer fields (a ``prv_candidate`` is a subset
of the ``candidate`` it once was). Points are keyed by ``jd``: one exposure,
one point. Merging fills missing fields and never overwrites a stored value, so
it is idempotent and the result does not depend on the order alerts arrive in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from boom_tasks.alert.base import History

#: The history arrays of an aux document, in the order they are stored.
HISTORY_FIELDS = ("prv_candidates", "prv_nondetections", "fp_hists")

#: Key that identifies a point: its exposure's mid-time (Julian date).
POINT_KEY = "jd"


def fill_missing(stored: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    """Return ``stored`` with the fields it lacks (absent or null) taken from ``incoming``."""
    merged = dict(stored)
    for key, value in incoming.items():
        if value is not None and merged.get(key) is None:
            merged[key] = value
    return merged


def merge_points(
    stored: Iterable[dict[str, Any]], incoming: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Merge two lists of points, one point per ``jd``, sorted by ``jd``.

    Parameters
    ----------
    stored
        Points already in the database (their values win on conflict).
    incoming
        Points from new alerts.
    """
    by_jd: dict[float, dict[str, Any]] = {}
    for point in [*stored, *incoming]:
        jd = point[POINT_KEY]
        by_jd[jd] = fill_missing(by_jd[jd], point) if jd in by_jd else point
    return [by_jd[jd] for jd in sorted(by_jd)]


def merge_history(
    stored: dict[str, Any] | None, histories: Iterable[History]
) -> dict[str, list[dict[str, Any]]]:
    """Return the merged history arrays of one object.

    Parameters
    ----------
    stored
        The object's aux document, or None for a new object.
    histories
        History of each alert of the object in the batch.
    """
    histories = list(histories)
    stored = stored or {}
    return {
        name: merge_points(stored.get(name) or [], (p for h in histories for p in getattr(h, name)))
        for name in HISTORY_FIELDS
    }


def history_changed(stored: dict[str, Any] | None, merged: dict[str, list[dict[str, Any]]]) -> bool:
    """Tell whether writing ``merged`` would change the stored document.

    A replayed night must leave documents exactly as they were, ``updated_at``
    included, so an unchanged history is not written at all.
    """
    if stored is None:
        return True
    return any((stored.get(name) or []) != merged[name] for name in HISTORY_FIELDS)
