"""What the ingest stage writes for one alert, whatever the survey.

A survey module (``ztf.py``, later ``lsst.py``) turns a decoded packet into an
:class:`AlertDocs`; :mod:`boom_tasks.ingest.writer` writes it without knowing
the survey.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from boom_tasks.errors import AlertRejected


@dataclass
class History:
    """Light-curve points one alert contributes to its object's history.

    Each list is merged into ``<SURVEY>_alerts_aux`` de-duplicated by ``jd``.
    """

    prv_candidates: list[dict[str, Any]] = field(default_factory=list)
    prv_nondetections: list[dict[str, Any]] = field(default_factory=list)
    fp_hists: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AlertDocs:
    """Everything ingest stores for one alert.

    Attributes
    ----------
    candid
        The alert's unique id, ``_id`` of the alert and cutout documents.
    object_id
        The object it belongs to, ``_id`` of the aux document.
    ra, dec
        Position in degrees (ICRS).
    alert
        The alert document, without cutouts or history.
    cutouts
        Cutout images as bytes by field name; empty when the packet has none.
    history
        Points merged into the object's history.
    """

    candid: int
    object_id: str
    ra: float
    dec: float
    alert: dict[str, Any]
    cutouts: dict[str, bytes]
    history: History


def radec_geojson(ra: float, dec: float) -> dict[str, Any]:
    """Return the GeoJSON point MongoDB's 2dsphere index expects for (ra, dec).

    GeoJSON longitudes run over [-180, 180], so ``ra - 180`` is stored, as in
    Kowalski and BOOM: their clients and users' ``$geoWithin`` queries rely on it.
    """
    return {"type": "Point", "coordinates": [ra - 180.0, dec]}


def checked_position(ra: Any, dec: Any) -> tuple[float, float]:
    """Return (ra, dec) as floats after checking they are a real sky position.

    Raises
    ------
    AlertRejected
        If either is missing, not finite, or out of range.
    """
    if ra is None or dec is None:
        raise AlertRejected("missing position (candidate.ra/candidate.dec)")
    try:
        ra_f, dec_f = float(ra), float(dec)
    except (TypeError, ValueError):
        raise AlertRejected(f"position is not numeric: ra={ra!r} dec={dec!r}") from None
    if not (math.isfinite(ra_f) and math.isfinite(dec_f)):
        raise AlertRejected(f"position is not finite: ra={ra_f} dec={dec_f}")
    if not (0.0 <= ra_f < 360.0 and -90.0 <= dec_f <= 90.0):
        raise AlertRejected(f"position out of range: ra={ra_f} dec={dec_f}")
    return ra_f, dec_f
