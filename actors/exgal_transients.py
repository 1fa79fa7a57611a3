"""Extragalactic transients (Pitt-Google's product): galaxy-hosted ZTF alerts, Bazin fits.

Selection (applied by the broker): a positive subtraction, not a star (PS1
``sgscore1 < 0.5``, or no PS1 source within 1.5"), not a known solar-system
object (no ``ssdistnr`` within 12", BOOM's ``rock`` radius), at least 3
detections (``ndethist``), and a Mangrove galaxy matched in distance mode (within
30 kpc projected, ``cross_matches.mangrove``). ``run`` then keeps the alerts
whose own light curve (as of the alert) holds at least 3 detections.

Result (``science.exgal_transients``): the host galaxy, the detections counted,
per band (``g``, ``r``, ``i``) the Bazin fit (:mod:`actors.bazin`: peak time,
rise and fall times, amplitude, reduced chi2, ``valid`` and the ``problems``
making it invalid), ``valid`` (any band valid), and a PNG of the light curve
with the fits (``figures.lightcurve``, served by the API). Every selected alert
is published to ``ZTF_exgal_transients`` as JSON with its result and figure URL.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from actors import bazin
from boom_tasks.science.base import ScienceActor

#: Fewest detections in the alert's light curve.
MIN_DETECTIONS = 3
#: Colours of the bands in the figure.
COLOURS = {"g": "tab:green", "r": "tab:red", "i": "goldenrod"}

SELECTION: dict[str, Any] = {
    "candidate.isdiffpos": {"$in": ["t", "1"]},
    "candidate.ndethist": {"$gte": MIN_DETECTIONS},
    "$and": [
        {  # not a star: PS1 calls it extended, or there is no PS1 source close by
            "$or": [
                {"candidate.sgscore1": {"$lt": 0.5}},
                {"candidate.distpsnr1": {"$gt": 1.5}},
                {"candidate.sgscore1": None},
            ]
        },
        {  # not a rock: no known solar-system object within 12" (-999: none at all)
            "$or": [
                {"candidate.ssdistnr": {"$lt": 0}},
                {"candidate.ssdistnr": {"$gt": 12}},
                {"candidate.ssdistnr": None},
            ]
        },
    ],
    # hosted by a galaxy: at least one Mangrove row in distance mode (the crossmatch)
    "cross_matches.mangrove.0": {"$exists": True},
}


def setup() -> None:
    """Import matplotlib (headless) and build the fitter once per worker process."""
    import matplotlib

    matplotlib.use("Agg")
    bazin.fitter()


def host(alert: Mapping[str, Any]) -> dict[str, Any]:
    """Return the nearest Mangrove galaxy of the alert's object."""
    row = alert["cross_matches"]["mangrove"][0]
    return {
        "name": row.get("HyperLEDA_name") or row.get("2MASS_name"),
        "distance_arcsec": row.get("distance_arcsec"),
        "distance_kpc": row.get("distance_kpc"),
        "lum_dist_mpc": row.get("lum_dist"),
    }


def fit_alert(alert: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return one alert's result, or None if its light curve has too few detections."""
    points = bazin.detections([*alert.get("prv_candidates", []), alert["candidate"]])
    if len(points) < MIN_DETECTIONS:
        return None
    curves = bazin.band_curves(points)
    fits = {band: bazin.fit_band(curve) for band, curve in curves.items()}
    return {
        "host": host(alert),
        "n_detections": len(points),
        "bands": fits,
        "valid": any(f["valid"] for f in fits.values()),
        "figures": {"lightcurve": draw(alert, curves, fits)},
    }


def draw(alert: Mapping[str, Any], curves: Mapping[str, Any], fits: Mapping[str, Any]) -> bytes:
    """Return a PNG of the light curve (flux per band) with each band's Bazin fit."""
    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: no global state, thread-safe

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.subplots()
    origin = min(float(c.t[0]) for c in curves.values())
    for band, c in curves.items():
        colour = COLOURS[band]
        ax.errorbar(c.t - origin, c.flux, c.err, fmt="o", color=colour, label=band, ms=4)
        f = fits[band]
        if f.get("amplitude") is not None and f.get("red_chi2") is not None:
            grid = np.linspace(c.t[0] - 10, c.t[-1] + 20, 300)
            args = (f["amplitude"], f["baseline"], f["t0"], f["rise_time"], f["fall_time"])
            style = "-" if f["valid"] else ":"
            label = f"{band} Bazin, χ²ᵣ={f['red_chi2']:.2f}" + ("" if f["valid"] else " (invalid)")
            ax.plot(grid - origin, bazin.bazin(grid, *args), style, color=colour, label=label)
    ax.axvline(alert["candidate"]["jd"] - origin, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"days since JD {origin:.3f}")
    ax.set_ylabel("difference flux (µJy)")
    ax.set_title(f"{alert.get('objectId')}  candid {alert['_id']}  host {host(alert)['name']}")
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def run(alerts: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Fit every selected alert with enough detections."""
    out = {}
    for alert in alerts:
        result = fit_alert(alert)
        if result is not None:
            out[alert["_id"]] = result
    return out


ACTOR = ScienceActor(
    name="exgal_transients",
    surveys=("ZTF",),
    run=run,
    selection=SELECTION,
    version="1",
    time_budget_s=60.0,
    output_topic="ZTF_exgal_transients",
    setup=setup,
    description="galaxy-hosted ZTF transients with per-band Bazin fits (Pitt-Google)",
)
