"""Per-alert properties stored under ``LSST_alerts.properties``.

Step 1: flag ``rock`` (a solar-system source): Rubin associates it with an
        ``ssObjectId`` itself, so the flag is that id being set.
Step 2: build the light curve as of this alert: detections with a magnitude,
        plus forced photometry above S/N 3 (the ingest stage gives those a
        magnitude), up to and including the alert's ``jd``, one point per
        exposure and band.
Step 3: ``stationary`` and ``photstats`` per band (peak, rise and fade rates),
        with the same functions as ZTF's (:mod:`boom_tasks.ml.photometry`).

Reference: BOOM (github.com/boom-astro/boom) ``src/enrichment/lsst.rs``, read,
not translated: it runs the same ``prepare_photometry``/``analyze_photometry``
on LSST's detections and forced photometry as on ZTF's. ZTF's ``star`` and
``near_brightstar`` read ZTF's PS1 and Gaia cross-match fields, which a Rubin
packet does not carry, so they are not computed here (a catalog crossmatch
gives the same information per object).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from boom_tasks.ml.photometry import Point, best_per_exposure, finite, is_stationary, photstats

#: Rubin's filters, in wavelength order.
BANDS = ("u", "g", "r", "i", "z", "y")


def _point(doc: Mapping[str, Any], rank: tuple[int, int]) -> Point | None:
    """Return a point's magnitude, or None when it has none (or is not finite)."""
    band = doc.get("band")
    values = [doc.get(key) for key in ("jd", "magpsf", "sigmapsf")]
    if band not in BANDS or not all(isinstance(v, int | float) for v in values):
        return None
    jd, mag, err = (float(v) for v in values)  # type: ignore[arg-type]
    if not finite(jd, mag, err):
        return None
    return Point(jd, mag, err, band, rank)


def light_curve(
    candidate: Mapping[str, Any],
    detections: Iterable[Mapping[str, Any]],
    forced: Iterable[Mapping[str, Any]] = (),
) -> list[Point]:
    """Return the alert's light curve as of its ``jd``, sorted by time.

    The alert's own diaSource wins its exposure, then the lowest diaSourceId,
    then detections over forced photometry, whatever the input order.
    """
    now = candidate.get("jd")
    if not isinstance(now, int | float) or not math.isfinite(now):
        return []
    own = candidate.get("diaSourceId")
    points = [_point(candidate, (0, 0))]
    for det in detections:
        if det.get("diaSourceId") != own or own is None:
            points.append(_point(det, (0, 1 + (det.get("diaSourceId") or 0))))
    points.extend(_point(fp, (1, 0)) for fp in forced)
    return best_per_exposure(points, float(now))


def properties(
    candidate: dict[str, Any], curve: Mapping[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """Return the properties of an LSST alert.

    Parameters
    ----------
    candidate
        The alert's ``candidate`` (its diaSource with BOOM's derived fields).
    curve
        The object's history lists as of the alert (``prv_candidates``, ``fp_hists``).

    Returns
    -------
    dict
        ``rock`` and ``stationary`` (bools) and ``photstats``:
        ``{band: None | {"peak_jd", "peak_mag", "peak_mag_err", "dt", "rising",
        "fading"}}`` for each of ``ugrizy``.
    """
    points = light_curve(candidate, curve.get("prv_candidates", []), curve.get("fp_hists", []))
    return {
        "rock": bool(candidate.get("ssObjectId")),
        "stationary": is_stationary(points),
        "photstats": photstats(points, BANDS),
    }
