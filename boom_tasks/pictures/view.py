"""What one alert's picture shows, whatever the survey and wherever it comes from.

A published message (``boom-print``) and the stored documents (the API, the
dashboard) carry the same things under slightly different shapes; both become
an :class:`AlertView`, which the figure code draws. The light curve is the
object's as of the alert (points up to its ``jd``), as in the published message,
so the picture of an alert is the same from every source.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from boom_tasks.surveys import SURVEYS
from boom_tasks.surveys.base import Survey

#: The three stamps, in the order they are drawn, and their panel titles.
STAMPS = {
    "cutoutScience": "Science",
    "cutoutTemplate": "Template",
    "cutoutDifference": "Difference",
}
#: ``isdiffpos`` spellings of a negative subtraction (ZTF 'f'/'0', BOOM's False).
NEGATIVE = (False, "f", "0", "false")


@dataclass(frozen=True)
class Mag:
    """One measured magnitude of the light curve (``err`` None when unknown)."""

    jd: float
    mag: float
    err: float | None
    band: str


@dataclass(frozen=True)
class Limit:
    """One upper limit: the source was fainter than ``mag`` at ``jd``."""

    jd: float
    mag: float
    band: str


@dataclass
class Curve:
    """One survey's light curve of the object (or of its alias in another survey)."""

    survey: str
    object_id: str
    detections: list[Mag] = field(default_factory=list)
    limits: list[Limit] = field(default_factory=list)
    forced: list[Mag] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.detections) + len(self.limits) + len(self.forced)


@dataclass
class AlertView:
    """Everything one alert's picture shows.

    Attributes
    ----------
    survey, candid, object_id
        Which alert.
    jd, band, mag, mag_err
        Its time (UTC Julian date) and measurement (None where unknown).
    negative
        Whether the difference is negative (the source faded since the template).
    filters
        Names of the filters it passed.
    stamps
        Cutout bytes by field name (:data:`STAMPS`); a missing one is absent.
    curves
        The object's light curve first, then those of its aliases in other surveys.
    """

    survey: str
    candid: int
    object_id: str
    jd: float | None
    band: str | None
    mag: float | None
    mag_err: float | None
    negative: bool = False
    filters: list[str] = field(default_factory=list)
    stamps: dict[str, bytes] = field(default_factory=dict)
    curves: list[Curve] = field(default_factory=list)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def band_of(survey: Survey | None, point: Mapping[str, Any]) -> str:
    """Return a point's band name: its ``band``, else the survey's filter id named.

    ZTF's published points carry ZTF's own record, which has only ``fid``; the
    survey's ``band_field`` says which value is which band.
    """
    band = point.get("band")
    if isinstance(band, str) and band:
        return band
    if survey is not None and survey.band_field is not None:
        path, ids = survey.band_field
        key = path.rsplit(".", 1)[-1]
        value = point.get(key)
        for name, known in ids.items():
            if value == known:
                return name
        if value is not None:
            return f"{key}={value}"
    return "?"


def _until(points: Iterable[Mapping[str, Any]] | None, jd: float | None) -> list[Mapping[str, Any]]:
    out = []
    for p in points or []:
        when = _number(p.get("jd"))
        if when is not None and (jd is None or when <= jd):
            out.append(p)
    return out


def _detections(survey: Survey | None, points: Sequence[Mapping[str, Any]]) -> list[Mag]:
    out = []
    for p in points:
        jd, mag = _number(p.get("jd")), _number(p.get("magpsf"))
        if jd is not None and mag is not None:
            out.append(Mag(jd, mag, _number(p.get("sigmapsf")), band_of(survey, p)))
    return out


def _limits(survey: Survey | None, points: Sequence[Mapping[str, Any]]) -> list[Limit]:
    out = []
    for p in points:
        jd, limit = _number(p.get("jd")), _number(p.get("diffmaglim"))
        if jd is not None and limit is not None and _number(p.get("magpsf")) is None:
            out.append(Limit(jd, limit, band_of(survey, p)))
    return out


def _forced(survey: Survey | None, points: Sequence[Mapping[str, Any]]) -> list[Mag]:
    if survey is None or survey.forced_magnitude is None:
        return _detections(survey, points)
    out = []
    for p in points:
        jd, measured = _number(p.get("jd")), survey.forced_magnitude(p)
        if jd is not None and measured is not None and math.isfinite(measured[0]):
            out.append(Mag(jd, measured[0], measured[1], band_of(survey, p)))
    return out


def curve_of(
    survey_name: str, object_id: str, history: Mapping[str, Any], jd: float | None
) -> Curve:
    """Return one object's light curve as of ``jd`` from its history lists.

    Parameters
    ----------
    survey_name
        The survey whose points these are (their band naming and forced photometry).
    object_id
        The object.
    history
        ``prv_candidates`` (detections; a point without ``magpsf`` is a limit, as
        in ZTF's packets), ``prv_nondetections`` and ``fp_hists``, any of them absent.
    jd
        Points after it are left out (None keeps every point).
    """
    survey = SURVEYS.get(survey_name)
    detections = _until(history.get("prv_candidates"), jd)
    limits = _until(history.get("prv_nondetections"), jd) + detections
    return Curve(
        survey=survey_name,
        object_id=object_id,
        detections=_detections(survey, detections),
        limits=_limits(survey, limits),
        forced=_forced(survey, _until(history.get("fp_hists"), jd)),
    )


def _with_own_point(curve: Curve, view: AlertView) -> None:
    """Add the alert's own detection to its curve if the history lacks it."""
    if view.jd is None or view.mag is None or view.band is None:
        return
    if not any(abs(m.jd - view.jd) < 1e-7 and m.band == view.band for m in curve.detections):
        curve.detections.append(Mag(view.jd, view.mag, view.mag_err, view.band))


def _view(survey_name: str, candid: int, object_id: str, candidate: Mapping[str, Any]) -> AlertView:
    survey = SURVEYS.get(survey_name)
    return AlertView(
        survey=survey_name,
        candid=candid,
        object_id=object_id,
        jd=_number(candidate.get("jd")),
        band=band_of(survey, candidate) if candidate else None,
        mag=_number(candidate.get("magpsf")),
        mag_err=_number(candidate.get("sigmapsf")),
        negative=candidate.get("isdiffpos") in NEGATIVE,
    )


def from_message(message: Mapping[str, Any]) -> AlertView:
    """Return the view of a published message (decoded from a results topic).

    Its light curve is already as of the alert; ``survey_matches`` gives the
    detections of the object's aliases in other surveys.
    """
    survey_name = str(message.get("survey") or "?")
    candidate = message.get("candidate") or {}
    view = _view(survey_name, int(message["candid"]), str(message.get("objectId")), candidate)
    view.filters = [str(f.get("name") or f.get("filter_id")) for f in message.get("filters") or []]
    view.stamps = {k: message[k] for k in STAMPS if isinstance(message.get(k), bytes)}
    own = curve_of(survey_name, view.object_id, message, view.jd)
    _with_own_point(own, view)
    view.curves = [own] + [
        curve_of(str(m.get("survey")), str(m.get("objectId")), m, view.jd)
        for m in message.get("survey_matches") or []
    ]
    return view


def from_documents(
    survey: Survey,
    alert: Mapping[str, Any],
    aux: Mapping[str, Any] | None,
    cutouts: Mapping[str, Any] | None,
    passes: Iterable[Mapping[str, Any]] = (),
    aliases: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
) -> AlertView:
    """Return the view of a stored alert.

    Parameters
    ----------
    survey
        The alert's survey.
    alert, aux, cutouts
        Its documents (``<survey>_alerts``, ``_alerts_aux``, ``_alerts_cutouts``);
        ``aux`` and ``cutouts`` may be None.
    passes
        Its filter passes to list (``<survey>_filter_passes`` documents).
    aliases
        Aux documents of its object's aliases, by survey name.
    """
    candidate = alert.get("candidate") or {}
    candid = int(alert.get("candid", alert.get("_id")))
    view = _view(survey.name, candid, str(alert.get("objectId")), candidate)
    view.filters = sorted({str(p.get("filter_name") or p.get("filter_id")) for p in passes})
    view.stamps = {k: bytes(v) for k, v in (cutouts or {}).items() if k in STAMPS and v}
    own = curve_of(survey.name, view.object_id, aux or {}, view.jd)
    _with_own_point(own, view)
    view.curves = [own] + [
        curve_of(name, str(doc.get("_id")), doc, view.jd)
        for name, docs in (aliases or {}).items()
        for doc in docs
    ]
    return view
