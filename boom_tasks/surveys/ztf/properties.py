"""Per-alert properties stored under ``ZTF_alerts.properties``, as BOOM computes them.

Step 1: flag the candidate from its own catalogue cross-matches: ``star`` (a
        PS1 point source under it), ``near_brightstar`` (a bright Gaia or PS1
        star nearby) and ``rock`` (a known solar-system object).
Step 2: build the light curve as of this alert: detections, plus forced
        photometry with S/N > 3, up to and including the alert's ``jd``, one
        point per exposure and band.
Step 3: derive ``stationary`` (the light curve spans more than 0.01 day) and
        ``photstats`` per band: the peak, and rise and fade rates (mag/day)
        from weighted linear fits on either side of the peak.

Reference: BOOM (github.com/boom-astro/boom), read, not translated:

- ``src/enrichment/ztf.rs`` @1970bf8b, ``ZtfEnrichmentWorker::get_alert_properties``:
  the three flags and their defaults, the ``jd`` cut, the S/N cut on forced
  photometry, the output keys.
- ``src/alert/ztf.rs`` @03c63ec9, ``ZtfPrvCandidate::try_from`` and
  ``ZtfForcedPhot::try_from``: which detections have a magnitude, and how a
  forced flux becomes one.
- ``src/utils/lightcurves.rs`` (``prepare_photometry``, ``analyze_photometry``,
  ``weighted_least_squares_centered``): de-duplication, peak, fit windows,
  the fit. The code index stores this file at 7f4723bb, which still has the
  older unweighted fit reporting ``r_squared``. We follow the weighted fit
  with ``rate_error`` and ``red_chi2``, the version that current ztf.rs uses.

BOOM names the solar-system flag ``rock`` and has no ``sso`` key for ZTF. Upper
limits (``prv_nondetections``) are not used, because BOOM's photstats only read
magnitudes. Negative subtractions (``isdiffpos`` 'f'/'0') stay in the light
curve with their ``magpsf``, as in BOOM, because none of these properties
filters on the sign.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from typing import Any

from boom_tasks.ml.photometry import (
    MAG_ERR_FACTOR,
    Point,
    best_per_exposure,
    finite,
    is_stationary,
    number,
    photstats,
)


def _f32(value: float) -> float:
    """Return ``value`` as a 32-bit float: BOOM compares f32 fields with f32 literals."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


#: ZTF filter id → band (schema: 1=g, 2=r, 3=i), BOOM's ``fid2band``; other fids are dropped.
ZTF_BANDS: dict[int, str] = {1: "g", 2: "r", 3: "i"}

# -- star: a PS1 point source under the candidate (BOOM ``is_star``; the BTS
#    filter's "pointunderneath", Perley et al. 2020, ApJ 904, 35).
#: ``sgscore1`` (Tachibana & Miller 2018 star/galaxy score) above which the PS1 source is a star.
STAR_SGSCORE = _f32(0.76)
#: ...when that source lies within this many arcsec (``distpsnr1``, inclusive).
STAR_MAX_DIST = 2.0
#: Looser score accepted for a very red source, whose PS1 score is less reliable.
RED_STAR_SGSCORE = _f32(0.2)
#: ...only when it lies within this many arcsec (inclusive).
RED_STAR_MAX_DIST = 1.0
#: ...and is redder than this in r - z or r - i (mag, strict).
RED_STAR_MIN_COLOUR = 3.0

# -- near_brightstar: a bright star whose halo or ghosts make bogus
#    subtractions (BOOM ``is_near_brightstar``; the BTS filter's "brightstar").
#: Gaia bright star within this many arcsec (``neargaiabright``, inclusive)...
GAIA_BRIGHT_MAX_DIST = 20.0
#: ...and brighter than or equal to this G mag (``maggaiabright``).
GAIA_BRIGHT_MAX_MAG = 12.0
#: PS1 source 1, 2 or 3 with ``sgscore`` above this (strict) counts as a star...
PS1_BRIGHT_SGSCORE = _f32(0.49)
#: ...within this many arcsec (``distpsnrN``, inclusive)...
PS1_BRIGHT_MAX_DIST = 20.0
#: ...and brighter than or equal to this r mag (``srmagN``).
PS1_BRIGHT_MAX_MAG = 15.0
#: PS1's "undetermined" score. With such a source right under the candidate...
PS1_AMBIGUOUS_SGSCORE = 0.5
#: ...closer than this many arcsec (strict)...
PS1_AMBIGUOUS_MAX_DIST = 0.5
#: ...and brighter than this in g, r or i (strict), the candidate is flagged.
PS1_AMBIGUOUS_MAX_MAG = 17.0

# -- rock (BOOM ``is_rock``; the BTS filter uses 15 arcsec).
#: A known solar-system object closer than this many arcsec (``ssdistnr``, strict).
SSO_MAX_DIST = 12.0

# -- light curve
#: Forced photometry counts only above this S/N (strict), BOOM's ``SNT``.
FORCED_MIN_SNR = 3.0
#: The only forced-photometry ``procstatus`` that BOOM accepts ("0" = success).
FORCED_PROCSTATUS_OK = "0"
#: ZTF's sentinel for a missing forced-photometry flux.
FLUX_MISSING = -99999.0


def is_rock(candidate: dict[str, Any]) -> bool:
    """Return whether a known solar-system object lies under the candidate.

    A missing ``ssdistnr`` or ``ssmagnr`` gives False, and so does ZTF's
    -999 sentinel ("no known object"), because it fails ``>= 0``.
    """
    ssdistnr = number(candidate, "ssdistnr", math.inf)
    ssmagnr = number(candidate, "ssmagnr", math.inf)
    return 0.0 <= ssdistnr < SSO_MAX_DIST and ssmagnr >= 0.0


def is_star(candidate: dict[str, Any]) -> bool:
    """Return whether the nearest PS1 source is a star under the candidate.

    A missing ``sgscore1`` counts as 0 (galaxy), and missing distances and
    magnitudes count as infinite, so old schemas without PS1 fields (1.3 has
    ``sgscore`` but no ``sgscore1``) give False. The -999 sentinels fail
    every ``> 0`` or ``>= 0`` test.
    """
    sgscore1 = number(candidate, "sgscore1", 0.0)
    distpsnr1 = number(candidate, "distpsnr1", math.inf)
    if sgscore1 > STAR_SGSCORE and 0.0 <= distpsnr1 <= STAR_MAX_DIST:
        return True
    srmag1 = number(candidate, "srmag1", math.inf)
    if not (sgscore1 > RED_STAR_SGSCORE and 0.0 <= distpsnr1 <= RED_STAR_MAX_DIST and srmag1 > 0):
        return False
    redder = (number(candidate, key, math.inf) for key in ("szmag1", "simag1"))
    return any(mag > 0.0 and srmag1 - mag > RED_STAR_MIN_COLOUR for mag in redder)


def _bright_ps1_star(candidate: dict[str, Any], n: int) -> bool:
    sgscore = number(candidate, f"sgscore{n}", 0.0)
    dist = number(candidate, f"distpsnr{n}", math.inf)
    srmag = number(candidate, f"srmag{n}", math.inf)
    return (
        sgscore > PS1_BRIGHT_SGSCORE
        and dist <= PS1_BRIGHT_MAX_DIST
        and 0.0 < srmag <= PS1_BRIGHT_MAX_MAG
    )


def is_near_brightstar(candidate: dict[str, Any]) -> bool:
    """Return whether a bright Gaia or PS1 star lies near the candidate.

    Missing fields behave as in :func:`is_star`. Schemas before 3.3 have no
    ``neargaiabright``, so only the PS1 terms can fire for them. The last
    clause follows BOOM exactly: with ``sgscore1`` equal to 0.5 and
    ``distpsnr1`` < 0.5, a -999 (missing) ``sgmag1``/``srmag1``/``simag1``
    also passes its ``< 17`` test.
    """
    neargaiabright = number(candidate, "neargaiabright", math.inf)
    maggaiabright = number(candidate, "maggaiabright", math.inf)
    if 0.0 <= neargaiabright <= GAIA_BRIGHT_MAX_DIST and 0.0 < maggaiabright <= GAIA_BRIGHT_MAX_MAG:
        return True
    if any(_bright_ps1_star(candidate, n) for n in (1, 2, 3)):
        return True
    ambiguous = (
        number(candidate, "sgscore1", 0.0) == PS1_AMBIGUOUS_SGSCORE
        and number(candidate, "distpsnr1", math.inf) < PS1_AMBIGUOUS_MAX_DIST
    )
    mags = (number(candidate, key, math.inf) for key in ("sgmag1", "srmag1", "simag1"))
    return ambiguous and any(mag < PS1_AMBIGUOUS_MAX_MAG for mag in mags)


def _band(point: dict[str, Any]) -> str | None:
    """Return the band name of a point's ``fid``, or None for an unknown filter."""
    fid = point.get("fid")
    return ZTF_BANDS.get(fid) if isinstance(fid, int) else None


def detection_point(detection: dict[str, Any], rank: tuple[int, int]) -> Point | None:
    """Return a detection's magnitude, or None when BOOM would give it none.

    BOOM attaches a magnitude (and an S/N) only to detections with
    ``magpsf``, ``sigmapsf`` and ``isdiffpos``. The sign of ``isdiffpos``
    is not used. Non-finite values are dropped too, which BOOM does not
    need to do: its schema cannot hold them.
    """
    band = _band(detection)
    jd = number(detection, "jd", math.nan)
    mag = number(detection, "magpsf", math.nan)
    err = number(detection, "sigmapsf", math.nan)
    if band is None or detection.get("isdiffpos") is None or not finite(jd, mag, err):
        return None
    return Point(jd, mag, err, band, rank)


def forced_point(forced: dict[str, Any]) -> Point | None:
    """Return a forced-photometry point's magnitude, or None below S/N 3 or when unusable.

    Only ``procstatus`` "0" with ``magzpsci``, a flux and its error (not
    -99999) counts. The magnitude is taken from ``|forcediffimflux|`` at
    ``magzpsci``, as BOOM does at ingest: a fading source measured in a
    negative difference keeps a magnitude.
    """
    band = _band(forced)
    if band is None or str(forced.get("procstatus")) != FORCED_PROCSTATUS_OK:
        return None
    jd = number(forced, "jd", math.nan)
    zp = number(forced, "magzpsci", math.nan)
    flux = number(forced, "forcediffimflux", math.nan)
    unc = number(forced, "forcediffimfluxunc", math.nan)
    if not finite(jd, zp, flux, unc) or FLUX_MISSING in (flux, unc) or unc <= 0.0:
        return None
    flux = abs(flux)
    if flux / unc <= FORCED_MIN_SNR:
        return None
    return Point(jd, zp - 2.5 * math.log10(flux), MAG_ERR_FACTOR * unc / flux, band, (1, 0))


def forced_magnitude(forced: Mapping[str, Any]) -> tuple[float, float] | None:
    """Return a forced-photometry point's (magnitude, error), or None (see :func:`forced_point`)."""
    point = forced_point(dict(forced))
    return None if point is None else (point.mag, point.mag_err)


def light_curve(
    candidate: dict[str, Any],
    detections: Iterable[dict[str, Any]],
    forced: Iterable[dict[str, Any]] = (),
) -> list[Point]:
    """Return the alert's light curve as of its ``jd``, sorted by time.

    The candidate itself is always included, even when ``detections`` lacks it.
    Only one point is kept per exposure (``jd``) and band. A detection beats
    forced photometry of the same exposure, as in BOOM, where detections come
    first and its de-duplication keeps the first. Between two detections that
    share a ``jd`` (two candids from one exposure), BOOM keeps whichever is
    stored first. We prefer this alert's own candidate, then the lowest candid,
    so the result does not depend on input order.
    """
    now = number(candidate, "jd", math.nan)
    own = candidate.get("candid")
    points = [detection_point(candidate, (0, 0))]
    for det in detections:
        if det.get("candid") != own or own is None:
            points.append(detection_point(det, (0, 1 + (det.get("candid") or 0))))
    points.extend(forced_point(fp) for fp in forced)
    return best_per_exposure(points, now)


def alert_properties(
    candidate: dict[str, Any],
    detections: Iterable[dict[str, Any]],
    nondetections: Iterable[dict[str, Any]] | None = None,
    forced: Iterable[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Compute the properties BOOM stores under ``ZTF_alerts.properties``.

    Parameters
    ----------
    candidate
        The alert's ``candidate`` record.
    detections
        The object's detections (``prv_candidates`` of ``ZTF_alerts_aux``), in
        any order. Points after the alert's ``jd`` are ignored.
    nondetections
        The object's upper limits (``prv_nondetections``). Accepted so callers
        can pass the whole history, but not used: BOOM computes no property
        from upper limits.
    forced
        The object's forced photometry (``fp_hists``), or None.

    Returns
    -------
    dict
        ``rock``, ``star``, ``near_brightstar`` and ``stationary`` (bools), and
        ``photstats``: ``{"g"|"r"|"i": None | {"peak_jd", "peak_mag",
        "peak_mag_err", "dt", "rising", "fading"}}``, where ``rising`` and
        ``fading`` are None or the dict of :func:`weighted_linear_fit`.
        The values are plain Python floats, ints, bools and None.
    """
    points = light_curve(candidate, detections, forced or ())
    return {
        "rock": is_rock(candidate),
        "star": is_star(candidate),
        "near_brightstar": is_near_brightstar(candidate),
        "stationary": is_stationary(points),
        "photstats": photstats(points, ZTF_BANDS.values()),
    }


def properties(
    candidate: dict[str, Any], curve: Mapping[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """Return :func:`alert_properties` of an alert from its object's light curve by list name."""
    return alert_properties(
        candidate, curve["prv_candidates"], curve["prv_nondetections"], curve["fp_hists"]
    )
