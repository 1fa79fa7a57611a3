"""Run a loaded model on a batch of alerts: one ONNX ``run`` per band per batch.

Step 1: build every input of every alert (:func:`build_row`); an alert lacking
        something (no ``drb``, JPEG cutouts) is set aside with its reason;
Step 2: stack the rows and run the session once for the whole batch;
Step 3: with per-band files, combine the bands' scores (``combine``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from boom_tasks.ml.config import ModelInput
from boom_tasks.ml.errors import InputUnavailable
from boom_tasks.ml.registry import BandInputs, LoadedModel


@dataclass(frozen=True)
class AlertContext:
    """What models may read of one alert.

    Attributes
    ----------
    candid
        The alert.
    candidate
        Its candidate record.
    detections, nondetections
        The object's detections and upper limits up to and including this alert
        (its light curve as of the alert, so a replay scores the same whatever
        arrived since).
    cutouts
        Cutout bytes by name; empty when not fetched or absent.
    schema
        The packet's schema version, quoted in reasons for skipping.
    """

    candid: int
    candidate: dict[str, Any]
    detections: list[dict[str, Any]]
    nondetections: list[dict[str, Any]] = field(default_factory=list)
    cutouts: dict[str, bytes] = field(default_factory=dict)
    schema: str | None = None


def _window(points: list[dict[str, Any]], jd: float, days: float | None) -> list[dict[str, Any]]:
    if days is None:
        return points
    return [p for p in points if p["jd"] >= jd - days]


def _lightcurve_row(inp: ModelInput, names: list[str], band: int, alert: AlertContext) -> Any:
    """Return one alert's light-curve features in ``band`` (raises InputUnavailable)."""
    from boom_tasks.ml.lightcurve import band_present, lightcurve_features

    jd = alert.candidate["jd"]
    detections = _window(alert.detections, jd, inp.window_days)
    if not band_present(detections, band, _window(alert.nondetections, jd, inp.window_days)):
        raise InputUnavailable(f"no usable light curve in band fid={band}")
    return lightcurve_features(detections, band, names)


@dataclass
class Predictions:
    """Scores by candid, and the alerts a model skipped with the reason."""

    scores: dict[int, float] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)


def build_row(model: LoadedModel, band: int | None, alert: AlertContext) -> dict[str, np.ndarray]:
    """Return one alert's value of every input of ``model`` (raises InputUnavailable)."""
    from boom_tasks.ml.cutouts import candidate_vector, cutout_stack

    extra: BandInputs = model.band_inputs[band]
    row: dict[str, np.ndarray] = {}
    for inp in model.spec.inputs:
        if inp.kind == "candidate":
            row[inp.name] = candidate_vector(alert.candidate, inp.fields, alert.schema)
        elif inp.kind == "cutouts":
            row[inp.name] = cutout_stack(alert.cutouts, inp.cutouts, inp.size, inp.normalise)
        else:
            names = extra.feature_names[inp.name]
            row[inp.name] = _lightcurve_row(inp, names, band or 0, alert)
    return row


def _all_missing(model: LoadedModel, row: dict[str, np.ndarray]) -> bool:
    """Return True if every light-curve feature of the row is missing (NaN)."""
    curves = [row[i.name] for i in model.spec.inputs if i.kind == "lightcurve"]
    return bool(curves) and all(bool(np.isnan(c).all()) for c in curves)


def _stack(model: LoadedModel, band: int | None, rows: list[dict[str, np.ndarray]]) -> dict:
    from boom_tasks.ml.lightcurve import fill_missing

    feeds: dict[str, np.ndarray] = {}
    for inp in model.spec.inputs:
        stacked = np.stack([r[inp.name] for r in rows])
        if inp.kind == "lightcurve":
            stacked = fill_missing(stacked, model.band_inputs[band].feature_means[inp.name])
        feeds[inp.name] = np.ascontiguousarray(stacked, dtype=np.float32)
    return feeds


@dataclass
class BandRun:
    """One band's scores, the alerts it could not score (with why), and the empty rows."""

    scores: dict[int, float] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)
    empty: set[int] = field(default_factory=set)


def run_band(model: LoadedModel, band: int | None, alerts: Sequence[AlertContext]) -> BandRun:
    """Score every alert that has the inputs, in one session run."""
    run = BandRun()
    rows, kept = [], []
    for alert in alerts:
        try:
            row = build_row(model, band, alert)
        except InputUnavailable as e:
            run.skipped[alert.candid] = e.reason
            continue
        rows.append(row)
        kept.append(alert.candid)
        if _all_missing(model, row):
            run.empty.add(alert.candid)
    if rows:
        (out,) = model.sessions[band].run([model.spec.output], _stack(model, band, rows))
        scores = np.asarray(out, dtype=np.float32).reshape(len(rows), -1)[:, 0]
        run.scores = dict(zip(kept, (float(s) for s in scores), strict=True))
    return run


#: How per-band scores become one score (ModelSpec.combine).
#: (Fink averages its two forests' float32 scores in float32, hence the dtype.)
_COMBINE: dict[str, Callable[[list[float]], Any]] = {
    "min": np.min,
    "max": np.max,
    "mean": lambda s: np.mean(np.asarray(s, dtype=np.float32), dtype=np.float32),
}


def predict(model: LoadedModel, alerts: Sequence[AlertContext]) -> Predictions:
    """Score a batch of alerts with one model (every band, then combined)."""
    runs = [run_band(model, band, alerts) for band in model.sessions]
    absent = model.spec.absent_score
    result = Predictions()
    for alert in alerts:
        c = alert.candid
        scores = [r.scores[c] for r in runs if c in r.scores]
        reasons = list(dict.fromkeys(r.skipped[c] for r in runs if c in r.skipped))
        if not reasons and all(c in r.empty for r in runs) and absent is not None:
            reasons = ["no light-curve feature could be computed"]
        if reasons:
            result.skipped[c] = "; ".join(reasons)
            if absent is not None:
                result.scores[c] = absent
        else:
            result.scores[c] = float(_COMBINE[model.spec.combine](scores))
    return result
