"""The light-curve panel: every survey's points of the object on one time axis.

Colour is the band (the same letter is the same colour whichever survey measured
it), the marker shape the survey; filled markers with error bars are detections,
hollow ones forced photometry, downward triangles upper limits (the source was
fainter: lower on an inverted magnitude axis). The alert's own point is ringed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from boom_tasks.pictures.view import AlertView, Curve, Mag

#: Julian date of MJD 0: the time axis is in MJD, as astronomers read it.
MJD_ZERO_JD = 2400000.5
#: Colour of each band, bluest to reddest (ZTF's usual green/red/gold for g/r/i).
BAND_COLOURS = {
    "u": "#6a3d9a",
    "g": "#1a9850",
    "r": "#d62728",
    "i": "#e6a100",
    "z": "#8c564b",
    "y": "#404040",
}
#: Colour of a band not listed above.
OTHER_COLOUR = "#7f7f7f"
#: Marker of each survey's points, in the order the curves come (own survey first).
SURVEY_MARKERS = ("o", "s", "D", "^")
#: Magnitudes of margin above and below the points.
MAG_MARGIN = 0.3
#: Days of margin left and right of the points, at least (one point alone would
#: otherwise get matplotlib's default range of thousands of days).
MIN_DAY_MARGIN = 0.5
#: Fraction of the time span added on each side.
DAY_MARGIN_FRACTION = 0.04
#: Type size (points) of a compact panel's tick labels: 8 pixels at a thumbnail's 100 dpi.
COMPACT_FONT = 6


def colour(band: str) -> str:
    """Return the colour of a band's points."""
    return BAND_COLOURS.get(band, OTHER_COLOUR)


def _band_order(curve: Curve) -> list[str]:
    bands = {p.band for p in curve.detections + curve.forced} | {p.band for p in curve.limits}
    known = [b for b in BAND_COLOURS if b in bands]
    return known + sorted(bands - set(known))


def _errorbars(ax: Axes, points: list[Mag], marker: str, **style: Any) -> None:
    """Draw measured points with their error bars (nothing when there are none)."""
    if points:
        ax.errorbar(
            [p.jd - MJD_ZERO_JD for p in points],
            [p.mag for p in points],
            yerr=[p.err or 0.0 for p in points],
            fmt=marker,
            **style,
        )


def _draw_curve(ax: Axes, curve: Curve, marker: str) -> None:
    for band in _band_order(curve):
        c = colour(band)
        label = f"{curve.survey} {band}"
        dets = [p for p in curve.detections if p.band == band]
        _errorbars(ax, dets, marker, color=c, ms=5, lw=0.8, label=label)
        forced = [p for p in curve.forced if p.band == band]
        style = {"mfc": "none", "ms": 4, "lw": 0.6, "alpha": 0.8}
        _errorbars(ax, forced, marker, color=c, label=f"{label} forced", **style)
        limits = [p for p in curve.limits if p.band == band]
        if limits:
            ax.plot(
                [p.jd - MJD_ZERO_JD for p in limits],
                [p.mag for p in limits],
                "v",
                color=c,
                ms=4,
                alpha=0.45,
                ls="none",
                label=f"{label} limit",
            )


def _magnitude_range(ax: Axes, curves: Sequence[Curve], view: AlertView) -> None:
    """Fit both axes to the points, not their error bars; bright at the top.

    A faint detection's error can be tens of magnitudes (LSST's flux S/N near 1):
    letting it set the range would squash every other point into a line.
    """
    mags = [p.mag for c in curves for p in c.detections + c.forced]
    mags += [p.mag for c in curves for p in c.limits]
    if view.mag is not None:
        mags.append(view.mag)
    ax.set_ylim(max(mags) + MAG_MARGIN, min(mags) - MAG_MARGIN)
    days = [p.jd - MJD_ZERO_JD for c in curves for p in c.detections + c.forced]
    days += [p.jd - MJD_ZERO_JD for c in curves for p in c.limits]
    margin = max(MIN_DAY_MARGIN, DAY_MARGIN_FRACTION * (max(days) - min(days)))
    ax.set_xlim(min(days) - margin, max(days) + margin)


def draw_light_curve(ax: Axes, view: AlertView, *, compact: bool = False) -> None:
    """Draw the view's light curves into ``ax`` (its title names the objects).

    ``compact`` (a thumbnail): no title, legend or axis labels, and three ticks per
    axis in small type, so what is drawn stays readable at 270 pixels wide.
    """
    ax.set_label("lightcurve")
    if not compact:
        names = " + ".join(f"{c.survey} {c.object_id}" for c in view.curves) or view.object_id
        ax.set_title(f"Light curve of {names}", fontsize=10)
    curves: Sequence[Curve] = [c for c in view.curves if len(c)]
    if not curves:
        ax.text(0.5, 0.5, "no light-curve points", ha="center", va="center",
                transform=ax.transAxes, fontsize=COMPACT_FONT if compact else 10)  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        return
    for i, curve in enumerate(curves):
        _draw_curve(ax, curve, SURVEY_MARKERS[i % len(SURVEY_MARKERS)])
    if view.jd is not None and view.mag is not None:
        ax.plot([view.jd - MJD_ZERO_JD], [view.mag], "o", ms=7 if compact else 14, mfc="none",
                mec="black", mew=1.0 if compact else 1.4, label="this alert")  # fmt: skip
    _magnitude_range(ax, curves, view)
    # Plain MJDs on the axis: an offset (+5.7454e4) is unreadable at a glance.
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    ax.grid(alpha=0.3)
    if compact:
        ax.tick_params(labelsize=COMPACT_FONT, length=2, pad=1)
        ax.xaxis.set_major_locator(MaxNLocator(3, integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(3))
        return
    ax.set_xlabel("MJD (UTC)")
    ax.set_ylabel("magnitude (AB)")
    ax.legend(fontsize=7, ncol=4, loc="best", framealpha=0.8)
