"""ZTF packets → BOOM's document layout.

Step 1: decode the packet with its own embedded schema (1.3 → 4.02 all differ).
Step 2: check it is usable: ``candid``, ``objectId`` and a position must exist
        (early prototype packets have no ``objectId``; they are quarantined).
Step 3: split it into the alert document, its cutouts and its history points,
        each point and the candidate with BOOM's derived ``band`` and ``snr``.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from boom_tasks.alert.avro import decode_first_record
from boom_tasks.alert.base import AlertDocs, History, checked_position, radec_geojson
from boom_tasks.errors import AlertRejected

#: Packet fields holding cutout images (each a record with ``stampData`` bytes).
CUTOUT_FIELDS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
#: ZTF filter ids and the band names BOOM stores beside them (``band``), which BOOM's
#: clients read (boom-client's photometry is keyed by band, across surveys).
BANDS = {1: "g", 2: "r", 3: "i"}
#: 2.5 / ln(10): a detection with magnitude error sigma has a flux signal-to-noise
#: of this over sigma (BOOM's ``snr`` = psfFlux / psfFluxErr for ZTF).
MAG_ERR_TO_SNR = 2.5 / math.log(10)


def with_boom_fields(point: dict[str, Any]) -> dict[str, Any]:
    """Return a candidate or history point with BOOM's derived fields added.

    ``band`` from ``fid`` (None if unknown), and for a detection ``snr``, which
    boom-client's detection cuts read.
    """
    out = {**point, "band": BANDS.get(point.get("fid"))}  # type: ignore[arg-type]
    sigma = point.get("sigmapsf")
    if point.get("magpsf") is not None and isinstance(sigma, int | float) and sigma > 0:
        out["snr"] = MAG_ERR_TO_SNR / sigma
    return out


def _cutouts(record: dict[str, Any]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name in CUTOUT_FIELDS:
        stamp = record.get(name)
        if isinstance(stamp, dict) and stamp.get("stampData") is not None:
            out[name] = stamp["stampData"]
    return out


def _history(candidate: dict[str, Any], record: dict[str, Any]) -> History:
    """Split the packet's history into detections, upper limits and forced photometry.

    The alert's own candidate is a detection of its object too, so it joins
    ``prv_candidates``: the stored light curve is then complete without
    reading every alert of the object.
    """
    history = History(prv_candidates=[dict(candidate)])
    for prv in record.get("prv_candidates") or []:
        if prv.get("jd") is None:
            continue
        if prv.get("magpsf") is not None:
            history.prv_candidates.append(with_boom_fields(prv))
        else:
            history.prv_nondetections.append(with_boom_fields(prv))
    history.fp_hists = [
        with_boom_fields(fp) for fp in record.get("fp_hists") or [] if fp.get("jd") is not None
    ]
    return history


def to_documents(record: dict[str, Any], now: dt.datetime) -> AlertDocs:
    """Build the documents of one decoded ZTF alert.

    Parameters
    ----------
    record
        The decoded Avro record.
    now
        Ingestion time, stored as ``created_at``.

    Raises
    ------
    AlertRejected
        If ``candid``, ``objectId``, the position or the time (``jd``) is missing or
        invalid.
    """
    candidate = record.get("candidate")
    if not isinstance(candidate, dict):
        raise AlertRejected("missing candidate record")
    candid = record.get("candid", candidate.get("candid"))
    if not isinstance(candid, int):
        raise AlertRejected("missing candid")
    object_id = record.get("objectId")
    if not isinstance(object_id, str) or not object_id:
        raise AlertRejected("missing objectId (a prototype packet from before ZTF named objects?)")
    ra, dec = checked_position(candidate.get("ra"), candidate.get("dec"))
    jd = candidate.get("jd")
    # The light-curve merge keys every point by jd: an alert without one (a corrupted
    # schema naming the field otherwise) failed its whole batch (seen by bench/faults.py).
    if isinstance(jd, bool) or not isinstance(jd, int | float) or not math.isfinite(jd):
        raise AlertRejected(f"missing or invalid candidate.jd: {jd!r}")
    candidate = with_boom_fields(candidate)
    alert = {
        "_id": candid,
        "candid": candid,
        "objectId": object_id,
        "schemavsn": record.get("schemavsn"),
        "candidate": candidate,
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
        history=_history(candidate, record),
    )


def parse_packet(packet: bytes, now: dt.datetime) -> AlertDocs:
    """Decode a raw ZTF packet and build its documents (raises :class:`AlertRejected`)."""
    return to_documents(decode_first_record(packet), now)
