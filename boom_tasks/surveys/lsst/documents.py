"""Decoded Rubin alerts → BOOM's LSST documents.

Step 1: name the object: the alert's diaObject, else its solar-system object as
        ``sso<ssObjectId>`` (BOOM's ids; an id of 0 or null means none).
Step 2: keep the diaSource as the candidate, with Rubin's field names, and add
        BOOM's derived photometry: ``jd`` (UTC), AB magnitudes of the nJy fluxes,
        the 5-sigma limiting magnitude, ``isdiffpos``, signal-to-noise ratios.
Step 3: split the packet's history into detections (``prvDiaSources`` and the
        alert's own diaSource), forced photometry (``prvDiaForcedSources``) and,
        in schemas up to 7.x, non-detection limits (``prvDiaNondetectionLimits``).

What BOOM stores and this module stores too: ``ss_source`` (the solar-system
record of 8.0+), the diaObject only as ``jdstarthist`` and ``ndethist`` of the
candidate. Not stored, as in BOOM: the ``diaObject`` record itself, the orbit
records (``MPCORB``, ``mpc_orbits``) and the scheduler fields.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from boom_tasks.alert.base import AlertDocs, History, checked_position, radec_geojson
from boom_tasks.errors import AlertRejected
from boom_tasks.surveys.lsst.packets import SchemaSource, decode_packet, version_of

#: AB zero point of a flux in nJy: 8.90 (AB, Jy) + 2.5 log10(1e9) (BOOM's LSST_ZP_AB_NJY).
ZP_NJY = 31.4
#: 2.5 / ln(10): first-order magnitude error of a unit relative flux error.
MAG_PER_REL_FLUX = 2.5 / math.log(10)
#: Significance of the limiting magnitude ``diffmaglim`` (BOOM: 5 x psfFluxErr).
LIMIT_SIGMAS = 5.0
#: Signal-to-noise above which a forced-photometry point gets a magnitude (BOOM's SNT).
FORCED_SNR_MIN = 3.0
#: Julian date of MJD 0.
MJD_ZERO_JD = 2400000.5
#: TAI - UTC in days. Rubin's times are TAI; ``jd`` is UTC like ZTF's, so light
#: curves of both surveys line up (BOOM converts too). 37 s since 2017-01-01 and
#: still today; simulated alerts dated earlier get a ``jd`` a second or so off.
TAI_MINUS_UTC_DAYS = 37.0 / 86400.0
#: Packet fields holding cutouts, each an uncompressed FITS file.
CUTOUT_FIELDS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
#: Names used by schemas 3.0 and 4.0 for fields renamed in 5.0 (current → old).
OLD_NAMES = {
    "midpointMjdTai": "midPointTai",
    "dec": "decl",
    "psfFlux": "psFlux",
    "psfFluxErr": "psFluxErr",
    "band": "filterName",
}
#: Id fields of a diaSource where Rubin writes 0 for "none"; stored as null, as BOOM does.
OPTIONAL_IDS = ("diaObjectId", "ssObjectId")

#: Schemas used by :func:`parse_packet` when none is given (see :func:`configure`).
_default_source: SchemaSource | None = None


def _field(point: Mapping[str, Any], name: str) -> Any:
    """Return ``point[name]``, or the field's pre-5.0 name when the point has that."""
    if name in point:
        return point[name]
    return point.get(OLD_NAMES.get(name, name))


def _finite(value: Any) -> float | None:
    """Return ``value`` as a float if it is a finite number, else None (null or NaN)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _positive(value: Any) -> float | None:
    number = _finite(value)
    return number if number is not None and number > 0 else None


def _ratio(num: float | None, den: float | None) -> float | None:
    return abs(num) / den if num is not None and den else None


def mjd_tai_to_jd(mjd_tai: Any) -> float | None:
    """Return the UTC Julian date of a TAI MJD, or None if it is missing or not finite."""
    mjd = _finite(mjd_tai)
    return None if mjd is None else mjd + MJD_ZERO_JD - TAI_MINUS_UTC_DAYS


def flux_to_mag(flux: float | None, flux_err: float | None) -> tuple[float | None, float | None]:
    """Return the AB magnitude and its error of a difference flux in nJy.

    The magnitude is that of ``|flux|``, as in BOOM: a negative difference flux
    (a source fainter than in the template) has the magnitude of its size, and
    ``isdiffpos`` tells the sign. (None, None) for a missing or zero flux; the
    error is None when ``flux_err`` is missing.
    """
    if not flux:
        return None, None
    size = abs(flux)
    mag = -2.5 * math.log10(size) + ZP_NJY
    return mag, None if flux_err is None else MAG_PER_REL_FLUX * flux_err / size


def limiting_mag(flux_err: float | None) -> float | None:
    """Return the 5-sigma limiting AB magnitude of a flux error in nJy (BOOM's ``diffmaglim``)."""
    return None if flux_err is None else -2.5 * math.log10(LIMIT_SIGMAS * flux_err) + ZP_NJY


def photometry(point: Mapping[str, Any]) -> dict[str, Any]:
    """Return BOOM's derived fields of a diaSource: ``jd`` and its magnitudes.

    Keys: ``jd``, ``band``, ``magpsf``, ``sigmapsf``, ``diffmaglim``, ``isdiffpos``,
    ``snr_psf`` (|psfFlux| / psfFluxErr; Rubin's own ``snr`` is kept beside it),
    ``chipsf`` (psfChi2 / psfNdata), ``magap``, ``sigmagap``, ``snr_ap`` (from
    ``apFlux``). A value that cannot be derived (null or NaN flux) is None.
    """
    flux = _finite(_field(point, "psfFlux"))
    flux_err = _positive(_field(point, "psfFluxErr"))
    ap_flux, ap_err = _finite(point.get("apFlux")), _positive(point.get("apFluxErr"))
    magpsf, sigmapsf = flux_to_mag(flux, flux_err)
    magap, sigmagap = flux_to_mag(ap_flux, ap_err)
    ndata = _positive(point.get("psfNdata"))
    return {
        "jd": mjd_tai_to_jd(_field(point, "midpointMjdTai")),
        "band": _field(point, "band"),
        "magpsf": magpsf,
        "sigmapsf": sigmapsf,
        "diffmaglim": limiting_mag(flux_err),
        "isdiffpos": None if flux is None else flux > 0,
        "snr_psf": _ratio(flux, flux_err),
        "chipsf": _ratio(_finite(point.get("psfChi2")), ndata),
        "magap": magap,
        "sigmagap": sigmagap,
        "snr_ap": _ratio(ap_flux, ap_err),
    }


def detection(source: Mapping[str, Any], object_id: str) -> dict[str, Any]:
    """Return a diaSource as a light-curve point: its fields, ids 0 as null, derived fields."""
    point = {**source, **{key: source[key] or None for key in OPTIONAL_IDS if key in source}}
    return {**point, **photometry(source), "objectId": object_id}


def forced_point(source: Mapping[str, Any]) -> dict[str, Any]:
    """Return a diaForcedSource as a light-curve point.

    As in BOOM, only a point measured above :data:`FORCED_SNR_MIN` sigmas gets
    ``magpsf``, ``sigmapsf``, ``isdiffpos`` and ``snr_psf`` (None below: its
    fluxes stay); every point gets ``jd`` and ``diffmaglim``.
    """
    flux = _finite(_field(source, "psfFlux"))
    flux_err = _positive(_field(source, "psfFluxErr"))
    snr = _ratio(flux, flux_err)
    detected = snr is not None and snr > FORCED_SNR_MIN
    magpsf, sigmapsf = flux_to_mag(flux, flux_err) if detected else (None, None)
    return {
        **source,
        "jd": mjd_tai_to_jd(_field(source, "midpointMjdTai")),
        "band": _field(source, "band"),
        "magpsf": magpsf,
        "sigmapsf": sigmapsf,
        "diffmaglim": limiting_mag(flux_err),
        "isdiffpos": flux > 0 if detected and flux is not None else None,
        "snr_psf": snr if detected else None,
    }


def nondetection(limit: Mapping[str, Any]) -> dict[str, Any]:
    """Return a diaNondetectionLimit (schemas up to 7.x) as a light-curve point.

    ``diaNoise`` is taken as the 1-sigma flux noise in nJy at the position, so
    ``diffmaglim`` is its 5-sigma limit, as for detections.
    """
    return {
        **limit,
        "jd": mjd_tai_to_jd(_field(limit, "midpointMjdTai")),
        "band": _field(limit, "band"),
        "diffmaglim": limiting_mag(_positive(limit.get("diaNoise"))),
    }


def _record_id(record: Mapping[str, Any], name: str, key: str) -> Any:
    sub = record.get(name)
    return sub.get(key) if isinstance(sub, Mapping) else None


def object_ids(record: Mapping[str, Any]) -> tuple[str, int | None]:
    """Return the alert's ``objectId`` and its ``ssObjectId`` (None if not a solar-system source).

    The diaObject id is ``diaSource.diaObjectId``, else that of the ``diaObject``
    record (Rubin's sample alerts leave the former null). The solar-system id is
    ``diaSource.ssObjectId``, else that of ``ssSource`` (8.0+) or ``ssObject``
    (up to 7.x). 0 means none, as null does.

    Raises
    ------
    AlertRejected
        If the alert has neither.
    """
    source = record.get("diaSource") or {}
    dia_id = source.get("diaObjectId") or _record_id(record, "diaObject", "diaObjectId")
    ss_id = (
        source.get("ssObjectId")
        or _record_id(record, "ssSource", "ssObjectId")
        or _record_id(record, "ssObject", "ssObjectId")
        or None
    )
    if dia_id:
        return str(dia_id), ss_id
    if ss_id:
        return f"sso{ss_id}", ss_id
    raise AlertRejected(
        "alert has neither a diaObject nor a solar-system object "
        "(diaObjectId and ssObjectId are 0 or null)"
    )


def _candidate(record: Mapping[str, Any], object_id: str) -> dict[str, Any]:
    """Return the candidate: the diaSource, its derived fields, and BOOM's diaObject summary."""
    candidate = detection(record["diaSource"], object_id)
    if candidate["jd"] is None:
        raise AlertRejected("diaSource.midpointMjdTai is missing or not finite")
    dia_object = record.get("diaObject") or {}
    first = _positive(dia_object.get("firstDiaSourceMjdTai"))
    candidate["jdstarthist"] = mjd_tai_to_jd(first) if first else None
    candidate["ndethist"] = dia_object.get("nDiaSources")
    return candidate


def _history(record: Mapping[str, Any], candidate: dict[str, Any], object_id: str) -> History:
    """Return the packet's light-curve points, each with a finite ``jd``.

    The alert's own diaSource joins ``prv_candidates`` (without the diaObject
    summary) unless the packet already lists it, so that the stored light curve
    is complete; the ingest merger sorts and de-duplicates.
    """
    detections = [detection(s, object_id) for s in record.get("prvDiaSources") or []]
    if not any(p.get("diaSourceId") == candidate["diaSourceId"] for p in detections):
        own = {k: v for k, v in candidate.items() if k not in ("jdstarthist", "ndethist")}
        detections.append(own)
    forced = [forced_point(s) for s in record.get("prvDiaForcedSources") or []]
    limits = [nondetection(s) for s in record.get("prvDiaNondetectionLimits") or []]
    return History(
        prv_candidates=[p for p in detections if p["jd"] is not None],
        prv_nondetections=[p for p in limits if p["jd"] is not None],
        fp_hists=[p for p in forced if p["jd"] is not None],
    )


def _cutouts(record: Mapping[str, Any]) -> dict[str, bytes]:
    return {name: record[name] for name in CUTOUT_FIELDS if record.get(name) is not None}


def to_documents(
    record: dict[str, Any], now: dt.datetime, *, schema_id: int | None = None
) -> AlertDocs:
    """Build the documents of one decoded Rubin alert.

    The alert document holds ``_id`` and ``candid`` (both the diaSourceId),
    ``objectId``, ``ssObjectId``, ``schemavsn``, ``candidate``, ``ss_source``,
    ``coordinates`` and ``created_at``.

    Parameters
    ----------
    record
        The decoded alert record, of any schema version from 3.0.
    now
        Ingestion time, stored as ``created_at``.
    schema_id
        The packet's schema id, stored as ``schemavsn`` "major.minor" (None if unknown).

    Raises
    ------
    AlertRejected
        If the diaSource, its id, its time, its position or its object is missing.
    """
    source = record.get("diaSource")
    if not isinstance(source, dict) or not isinstance(source.get("diaSourceId"), int):
        raise AlertRejected("missing diaSource or diaSource.diaSourceId")
    candid: int = source["diaSourceId"]
    object_id, ss_object_id = object_ids(record)
    ra, dec = checked_position(_field(source, "ra"), _field(source, "dec"))
    candidate = _candidate(record, object_id)
    # The solar-system id may come from ssSource only: the candidate carries the
    # resolved one, so properties (``rock``) and filters read it in one place.
    candidate["ssObjectId"] = ss_object_id
    alert = {
        "_id": candid,
        "candid": candid,
        "objectId": object_id,
        "ssObjectId": ss_object_id,
        "schemavsn": None if schema_id is None else version_of(schema_id),
        "candidate": candidate,
        "ss_source": record.get("ssSource"),
        "coordinates": {"radec_geojson": radec_geojson(ra, dec)},
        "created_at": now,
    }
    return AlertDocs(
        candid=candid,
        object_id=object_id,
        ra=ra,
        dec=dec,
        alert=alert,
        cutouts=_cutouts(record),
        history=_history(record, candidate, object_id),
    )


def configure(registry_url: str | None) -> None:
    """Set where :func:`parse_packet` finds schemas: a schema registry, else the package.

    Called once at process start; the previous source and its cache are dropped.
    """
    global _default_source
    _default_source = SchemaSource(registry_url)


def default_source() -> SchemaSource:
    """Return the schemas :func:`parse_packet` uses by default (the package, until configured)."""
    global _default_source
    if _default_source is None:
        _default_source = SchemaSource()
    return _default_source


def parse_packet(packet: bytes, now: dt.datetime, source: SchemaSource | None = None) -> AlertDocs:
    """Decode a raw Rubin packet and build its documents (raises :class:`AlertRejected`).

    Parameters
    ----------
    packet
        Confluent wire-format bytes (or an Avro container file).
    now
        Ingestion time.
    source
        Where schemas come from; default: :func:`default_source`.
    """
    sid, record = decode_packet(packet, source or default_source())
    return to_documents(record, now, schema_id=sid)
