"""Light-curve statistics shared by every survey's ``properties`` (pure functions).

A survey's properties module turns its history points into :class:`Point`
magnitudes (its own field names and flux conventions); everything after that,
one point per exposure and band, ``stationary`` and ``photstats`` (peak, rise
and fade rates), is the same for every survey and follows BOOM's
``src/utils/lightcurves.rs`` (``prepare_photometry``, ``analyze_photometry``,
``weighted_least_squares_centered``), read, not translated.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, NamedTuple

#: 2.5 / ln(10): turns a relative flux error into a magnitude error.
MAG_ERR_FACTOR = 2.5 / math.log(10.0)
#: The minimum span in days for ``stationary``, and for fitting each side of
#: a peak (14.4 min: two visits on one night).
MIN_SPAN_DAYS = 0.01
#: Below this weighted spread of times (day²/mag²) BOOM treats the fit as singular.
MIN_SXX = 1e-10


class Point(NamedTuple):
    """One magnitude of the light curve. ``rank`` orders copies of one exposure."""

    jd: float
    mag: float
    mag_err: float
    band: str
    rank: tuple[int, int]


def number(doc: dict[str, Any], key: str, default: float) -> float:
    """Return ``doc[key]`` as a float, or ``default`` when absent, null or not a number."""
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


def finite(*values: float) -> bool:
    """Tell whether every value is a finite number."""
    return all(math.isfinite(v) for v in values)


def best_per_exposure(points: Iterable[Point | None], now: float) -> list[Point]:
    """Return one point per exposure (``jd``) and band up to ``now``, sorted by time.

    Of two points of one exposure and band the lower ``rank`` wins, so the
    result does not depend on the order of ``points``; None entries (points a
    survey could not turn into a magnitude) are dropped.
    """
    best: dict[tuple[float, str], Point] = {}
    for p in points:
        if p is not None and p.jd <= now:
            held = best.get((p.jd, p.band))
            if held is None or p.rank < held.rank:
                best[(p.jd, p.band)] = p
    return sorted(best.values(), key=lambda p: (p.jd, p.band))


def is_stationary(points: list[Point]) -> bool:
    """Return whether the light curve (all bands) spans more than :data:`MIN_SPAN_DAYS`.

    Asteroids move away within minutes, so a source seen twice at one place
    over more than 14.4 minutes is stationary. An empty or single-point light
    curve is not.
    """
    return bool(points) and points[-1].jd - points[0].jd > MIN_SPAN_DAYS


def weighted_linear_fit(
    x: list[float], y: list[float], sigma: list[float]
) -> dict[str, Any] | None:
    """Fit ``y = a x + b`` by weighted least squares, weights 1/sigma², centred on the mean.

    Returns
    -------
    dict or None
        ``rate`` (a), ``rate_error`` (sqrt(1/Sxx), the formal error),
        ``red_chi2`` (chi² / (n - 2), or None for two points), ``nb_data`` and
        ``dt`` (x span). None for fewer than 2 points, when a sigma is not
        positive and finite, or when the times are degenerate (Sxx <
        :data:`MIN_SXX`).
    """
    n = len(x)
    if n < 2 or not all(s > 0.0 and math.isfinite(s) for s in sigma):
        return None
    w = [1.0 / (s * s) for s in sigma]
    if not all(math.isfinite(wi) for wi in w):
        return None
    x_mean = sum(wi * xi for wi, xi in zip(w, x, strict=True)) / sum(w)
    y_mean = sum(wi * yi for wi, yi in zip(w, y, strict=True)) / sum(w)
    sxx = sum(wi * (xi - x_mean) ** 2 for wi, xi in zip(w, x, strict=True))
    if abs(sxx) < MIN_SXX:
        return None
    sxy = sum(wi * (xi - x_mean) * (yi - y_mean) for wi, xi, yi in zip(w, x, y, strict=True))
    rate = sxy / sxx
    intercept = y_mean - rate * x_mean
    residuals = (yi - rate * xi - intercept for xi, yi in zip(x, y, strict=True))
    chi2 = sum((r / si) ** 2 for r, si in zip(residuals, sigma, strict=True))
    return {
        "rate": rate,
        "rate_error": math.sqrt(1.0 / sxx),
        "red_chi2": chi2 / (n - 2) if n > 2 else None,
        "nb_data": n,
        "dt": x[-1] - x[0],
    }


def segment_rate(segment: list[Point]) -> dict[str, Any] | None:
    """Return the magnitude rate (mag/day) over one side of a peak, or None.

    Following BOOM, no fit is made for a single point, for a span of
    :data:`MIN_SPAN_DAYS` or less, or when the brightest and faintest points
    agree within their errors (brightest + err >= faintest - err: only noise).
    Time is counted from the segment's first point. A negative rate means
    brightening.
    """
    if len(segment) < 2 or segment[-1].jd - segment[0].jd <= MIN_SPAN_DAYS:
        return None
    brightest = min(segment, key=lambda p: p.mag)
    faintest = max(segment, key=lambda p: p.mag)
    if brightest.mag + brightest.mag_err >= faintest.mag - faintest.mag_err:
        return None
    t0 = segment[0].jd
    return weighted_linear_fit(
        [p.jd - t0 for p in segment], [p.mag for p in segment], [p.mag_err for p in segment]
    )


def band_stats(points: list[Point]) -> dict[str, Any]:
    """Return one band's peak and its rise and fade rates.

    ``points`` must be time-sorted and non-empty. The peak is the brightest
    point, the earliest if several tie. ``rising`` is fitted from the first
    point to the peak, ``fading`` from the peak to the last, both including
    the peak. ``dt`` is the band's time span in days.
    """
    peak = min(range(len(points)), key=lambda i: points[i].mag)
    return {
        "peak_jd": points[peak].jd,
        "peak_mag": points[peak].mag,
        "peak_mag_err": points[peak].mag_err,
        "dt": points[-1].jd - points[0].jd,
        "rising": segment_rate(points[: peak + 1]),
        "fading": segment_rate(points[peak:]),
    }


def photstats(points: list[Point], bands: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """Return :func:`band_stats` for each of ``bands``, None for a band with no points."""
    stats: dict[str, dict[str, Any] | None] = {}
    for band in bands:
        in_band = [p for p in points if p.band == band]
        stats[band] = band_stats(in_band) if in_band else None
    return stats
