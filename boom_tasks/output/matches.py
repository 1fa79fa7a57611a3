"""The other surveys' view of a published alert's object: ``survey_matches``.

Step 1: read the aux documents of the objects the alert's object is associated
        with (``aliases.<SURVEY>``, :mod:`boom_tasks.crossmatch.aliases`), one
        ``$in`` per other survey for the whole batch;
Step 2: for each, give the other survey's objectId, its distance from this object
        and its detections up to the alert's ``jd``, public data only (the other
        survey's default permissions: a message is read by everyone on the topic).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pymongo.database import Database

from boom_tasks.crossmatch.match import geojson_position
from boom_tasks.services.mongo import find_in, mongo_errors
from boom_tasks.sky.sphere import ARCSEC_PER_DEG, angular_separation
from boom_tasks.surveys import SURVEYS
from boom_tasks.surveys.base import Survey

#: Photometry of the other survey's detections carried in a message.
PHOTOMETRY_FIELDS = ("jd", "band", "magpsf", "sigmapsf", "diffmaglim", "isdiffpos")

#: Spellings of a positive and a negative subtraction across surveys (bool, 't'/'f', '1'/'0').
_TRUE, _FALSE = {"t", "1", "true"}, {"f", "0", "false"}

#: Aux documents of associated objects: survey name → objectId → document.
Matched = dict[str, dict[str, dict[str, Any]]]


def read_matched(db: Database, survey: Survey, aux_docs: Iterable[Mapping[str, Any]]) -> Matched:
    """Return the aux documents of every object the given objects are associated with."""
    aux_docs = list(aux_docs)
    out: Matched = {}
    for other in SURVEYS.values():
        if other.name == survey.name:
            continue
        ids = sorted({i for d in aux_docs for i in (d.get("aliases") or {}).get(other.name, [])})
        if ids:
            fields = {"coordinates": 1, "prv_candidates": 1}
            with mongo_errors(f"reading associated {other.name} objects"):
                out[other.name] = {d["_id"]: d for d in find_in(db[other.aux], "_id", ids, fields)}
    return out


def _distance(a: dict[str, Any], b: dict[str, Any]) -> float:
    try:
        pa, pb = geojson_position(a), geojson_position(b)
    except (KeyError, TypeError, ValueError):
        return float("nan")  # every aux document has coordinates; NaN says one did not
    return float(angular_separation(pa[0], pa[1], pb[0], pb[1]) * ARCSEC_PER_DEG)


def as_bool(value: Any) -> bool | None:
    """Return ``isdiffpos`` as a bool whatever the survey's spelling; None if unknown."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _photometry(point: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: point.get(k) for k in PHOTOMETRY_FIELDS}
    out["isdiffpos"] = as_bool(out["isdiffpos"])
    return out


def survey_matches(aux: Mapping[str, Any] | None, jd: Any, matched: Matched) -> list[dict]:
    """Return ``survey_matches`` of one message: each associated object and its photometry.

    Parameters
    ----------
    aux
        The alert's object (its ``aliases`` and ``coordinates``), or None.
    jd
        The alert's time: later points of the other survey are left out.
    matched
        From :func:`read_matched`.
    """
    out: list[dict[str, Any]] = []
    for name, ids in ((aux or {}).get("aliases") or {}).items():
        other = SURVEYS.get(name)
        for object_id in ids:
            doc = matched.get(name, {}).get(object_id)
            if other is None or doc is None:
                continue
            public = other.permissions.default
            points = [
                _photometry(p)
                for p in doc.get("prv_candidates") or []
                if isinstance(p.get("jd"), int | float)
                and (not isinstance(jd, int | float) or p["jd"] <= jd)
                and other.permissions.visible(p, public)
            ]
            out.append(
                {
                    "survey": name,
                    "objectId": object_id,
                    "distance_arcsec": _distance(dict(aux or {}), doc),
                    "prv_candidates": sorted(points, key=lambda p: p["jd"]),
                }
            )
    return out
