"""ZTF packets → BOOM's document layout.

Step 1: decode the packet with its own embedded schema (1.3 → 4.02 all differ).
Step 2: check it is usable: ``candid``, ``objectId`` and a position must exist
        (early prototype packets have no ``objectId``; they are quarantined).
Step 3: split it into the alert document, its cutouts and its history points.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from boom_tasks.alert.avro import decode_first_record
from boom_tasks.alert.base import AlertDocs, History, checked_position, radec_geojson
from boom_tasks.errors import AlertRejected

#: Packet fields holding cutout images (each a record with ``stampData`` bytes).
CUTOUT_FIELDS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")


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
            history.prv_candidates.append(prv)
        else:
            history.prv_nondetections.append(prv)
    history.fp_hists = [fp for fp in record.get("fp_hists") or [] if fp.get("jd") is not None]
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
        If ``candid``, ``objectId`` or the position is missing or invalid.
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
