"""Synthetic Rubin alerts for volume: many new packets made from a few real ones.

Benchmarks and load tests need more alerts than the shared sample holds, and
alerts that do not collide with each other in the database. Each synthetic
alert is a real packet in which only the identity and the position change,
re-encoded in Rubin's wire format with the schema id it came with:

Step 1: decode every usable real packet once (:mod:`.packets`: the wire format
        or an Avro container); packets that do not decode or lack a diaSource
        id or position are skipped, as the broker would quarantine them.
Step 2: for alert ``i``, cycle through the real packets and give the copy the
        diaSourceId ``SOURCE_ID_BASE + start + i``, the diaObjectId of synthetic
        object ``(start + i) // alerts_per_object`` and that object's random
        position. The history (``prvDiaSources``, ``prvDiaForcedSources``) and
        the ``diaObject`` move with the alert and take the object's id; their
        own ids are renumbered per object (:func:`history_id`).
Step 3: encode the copy schemalessly behind byte 0 and the schema id.

Solar-system sources become ordinary objects: the copy names a diaObject, its
``ssObjectId`` is null and ``ssSource``/``ssObject``/orbit records are dropped.
A moving object copied to a fixed random place, several alerts sharing it,
would be neither a real asteroid nor a consistent object; as ordinary objects
the copies still exercise every stage.

Everything else (photometry, cutouts, flags) is the real packet's, shared
between copies by shallow copies rather than duplicated: cutouts are the bulk.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from boom_tasks.errors import AlertRejected
from boom_tasks.replay.archive import ArchiveError, iter_packets
from boom_tasks.replay.synthetic import check_counts, cos_dec, placements
from boom_tasks.surveys.lsst.packets import SchemaSource, decode_packet
from boom_tasks.surveys.lsst.replay import wire_packet

log = logging.getLogger(__name__)

#: First synthetic diaSourceId (alert ``i`` has ``SOURCE_ID_BASE + i``): far above
#: Rubin's ids (~1.7e17 in 2025, 3.5e18 in the 7.x simulations) and below 2**63.
SOURCE_ID_BASE = 9_000_000_000_000_000_000

#: First synthetic diaObjectId (object ``k`` has ``OBJECT_ID_BASE + k``), also the
#: objectId as text: never the id of a real object, so never merged with one.
OBJECT_ID_BASE = 9_000_000_000_000_000_000

#: Renumbered history ids (diaSourceId of prvDiaSources, diaForcedSourceId) lie in
#: ``[HISTORY_ID_BASE, HISTORY_ID_BASE + HISTORY_ID_SPAN)``: above real ids, below
#: the synthetic alerts' own diaSourceIds.
HISTORY_ID_BASE = 5_000_000_000_000_000_000
#: Size of that range; real ids below it map one to one within an object.
HISTORY_ID_SPAN = 4_000_000_000_000_000_000
#: Shift of the history ids from one synthetic object to the next: odd and about
#: 0.618 of the span, so nearby objects' ids land far apart.
HISTORY_ID_STRIDE = 2_472_135_954_999_579_393

#: Scatter of an object's detections around its position, in degrees (0.05
#: arcsec, about Rubin's astrometric error): repeated detections are not identical.
SCATTER_DEG = 0.05 / 3600

#: Position fields of a diaSource, diaForcedSource or diaObject, moved together
#: (``decl`` is the declination's name in schemas 3.0 and 4.0; the PSF and dipole
#: centroids are those of schemas 5.0 to 7.x).
POSITIONS = (
    ("ra", "dec"),
    ("ra", "decl"),
    ("psfRa", "psfDec"),
    ("trailRa", "trailDec"),
    ("dipoleRa", "dipoleDec"),
)

#: Records of the alert that describe a solar-system object: dropped from copies.
SOLAR_SYSTEM_RECORDS = ("ssSource", "ssObject", "MPCORB", "mpc_orbits")


@dataclass(frozen=True)
class SourceAlert:
    """One decoded real packet, shared read-only by every copy made from it.

    Attributes
    ----------
    record
        The decoded alert (never mutate it: copies share its parts).
    schema_id
        Its schema id (major x 100 + minor).
    schema
        The parsed schema of that id, used to encode the copies.
    ra, dec
        Its diaSource position, in degrees.
    """

    record: dict[str, Any]
    schema_id: int
    schema: Any
    ra: float
    dec: float


@dataclass(frozen=True)
class Move:
    """Carry points near ``(ra0, dec0)`` to the same offsets around ``(ra, dec)``, in degrees."""

    ra0: float
    dec0: float
    ra: float
    dec: float

    def __call__(self, ra: float, dec: float) -> tuple[float, float]:
        """Return the new place of a point at ``(ra, dec)``, as far from the centre as before."""
        # The RA offset, wrapped to [-180, 180), is an arc of d_ra*cos(dec) on the sky:
        # rescale it to the new declination so the point stays as far from the centre.
        d_ra = (ra - self.ra0 + 180.0) % 360.0 - 180.0
        scale = cos_dec(self.dec0) / cos_dec(self.dec)
        return (self.ra + d_ra * scale) % 360.0, _clip_dec(self.dec + dec - self.dec0)

    def point(self, point: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
        """Return a copy of ``point`` with its positions moved and ``changes`` applied."""
        moved = dict(point, **changes)
        for ra_key, dec_key in POSITIONS:
            ra, dec = point.get(ra_key), point.get(dec_key)
            if isinstance(ra, float) and isinstance(dec, float) and math.isfinite(ra + dec):
                moved[ra_key], moved[dec_key] = self(ra, dec)
        return moved


def _clip_dec(dec: float) -> float:
    return min(90.0, max(-90.0, dec))


def synth_alerts(
    source: Path | str,
    n: int,
    *,
    seed: int = 0,
    alerts_per_object: int = 1,
    start: int = 0,
) -> Iterator[bytes]:
    """Yield ``n`` new Rubin alert packets made from the real packets in ``source``.

    Parameters
    ----------
    source
        Folder of real ``*.avro`` packets (searched recursively) or a ``.tar.gz``;
        unusable packets in it are skipped.
    n
        Number of packets to yield.
    seed
        Seed of the positions: the same arguments yield the same bytes.
    alerts_per_object
        Consecutive alerts that share a diaObjectId and a position, so synthetic
        objects have multi-alert histories.
    start
        Index of the first alert: streams given disjoint ranges ``[start,
        start + n)`` have distinct ids and objects, and can share a database.

    Returns
    -------
    Iterator of bytes
        Packets made lazily, one at a time, each in Rubin's wire format with
        the schema id of the real packet it copies.

    Raises
    ------
    ArchiveError
        If ``source`` cannot be read or holds no usable packet.
    ValueError
        If ``n``, ``alerts_per_object`` or ``start`` is out of range.
    """
    check_counts(n, start, alerts_per_object)
    sources = load_sources(source)  # here, not in the generator: fail at the call
    return _generate(sources, n, seed, alerts_per_object, start)


def _generate(
    sources: tuple[SourceAlert, ...], n: int, seed: int, alerts_per_object: int, start: int
) -> Iterator[bytes]:
    """Make the packets of :func:`synth_alerts`, drawing every random number from one seed."""
    rng = random.Random(seed)
    for at in placements(rng, n, start, alerts_per_object, SCATTER_DEG):
        src = sources[at.index % len(sources)]
        record = synth_record(src, SOURCE_ID_BASE + at.index, at.object_number, at.ra, at.dec)
        yield wire_packet(src.schema_id, src.schema, record)


def load_sources(source: Path | str) -> tuple[SourceAlert, ...]:
    """Decode the usable real packets of ``source`` once per process (cached by path).

    Raises
    ------
    ArchiveError
        If ``source`` cannot be read or holds no usable packet.
    """
    return _load_sources(str(Path(source).resolve()))


@lru_cache(maxsize=4)
def _load_sources(source: str) -> tuple[SourceAlert, ...]:
    schemas = SchemaSource()  # the package's schemas: the same bytes on every machine
    sources, skipped = [], 0
    for _name, packet in iter_packets(source):
        decoded = _decode(packet, schemas)
        if decoded is None:
            skipped += 1
        else:
            sources.append(decoded)
    if not sources:
        raise ArchiveError(f"no usable LSST packet in {source} to make synthetic alerts from")
    log.info("synthetic alerts from %d real packets (%d skipped)", len(sources), skipped)
    return tuple(sources)


def _decode(packet: bytes, schemas: SchemaSource) -> SourceAlert | None:
    """Decode a real packet, or return None if it cannot serve."""
    try:
        sid, record = decode_packet(packet, schemas)
        schema = schemas.get(sid)
    except AlertRejected:
        return None
    source = record.get("diaSource")
    if not isinstance(source, dict) or not isinstance(source.get("diaSourceId"), int):
        return None
    ra, dec = source.get("ra"), source.get("dec", source.get("decl"))
    if not (isinstance(ra, float) and isinstance(dec, float) and math.isfinite(ra + dec)):
        return None
    return SourceAlert(record=record, schema_id=sid, schema=schema, ra=ra, dec=dec)


def history_id(real_id: int, number: int) -> int:
    """Return the id of a history point of synthetic object ``number``.

    One to one for the real ids of one object (below :data:`HISTORY_ID_SPAN`), so
    a point repeated by two alerts keeps one id and distinct points stay
    distinct; shifted by :data:`HISTORY_ID_STRIDE` per object, so that objects
    made from the same packet do not share ids.
    """
    return HISTORY_ID_BASE + (real_id + number * HISTORY_ID_STRIDE) % HISTORY_ID_SPAN


def synth_record(
    src: SourceAlert, source_id: int, number: int, ra: float, dec: float
) -> dict[str, Any]:
    """Return a copy of ``src``'s record as an alert of synthetic object ``number``.

    Parameters
    ----------
    src
        The real alert.
    source_id
        The copy's diaSourceId.
    number
        The synthetic object: its diaObjectId is ``OBJECT_ID_BASE + number``.
    ra, dec
        The copy's diaSource position, in degrees.
    """
    move = Move(src.ra, src.dec, ra, dec)
    object_id = OBJECT_ID_BASE + number
    record = dict(src.record)
    own = record["diaSource"]
    ids = {"diaObjectId": object_id}
    record["diaSource"] = move.point(own, diaSourceId=source_id, **_not_solar(own), **ids)
    for key in ("diaSourceId", "alertId"):  # the alert's id: 9.0+ and 7.x names
        if key in record:
            record[key] = source_id
    if record.get("diaObject"):
        record["diaObject"] = move.point(record["diaObject"], **ids)
    if record.get("prvDiaSources"):
        # A packet listing its own diaSource in its history keeps the two as one point.
        renumber = {own["diaSourceId"]: source_id}
        record["prvDiaSources"] = [
            move.point(
                p,
                **_not_solar(p),
                **ids,
                diaSourceId=renumber.get(p["diaSourceId"]) or history_id(p["diaSourceId"], number),
            )
            for p in record["prvDiaSources"]
        ]
    if record.get("prvDiaForcedSources"):
        record["prvDiaForcedSources"] = [
            move.point(p, **ids, diaForcedSourceId=history_id(p["diaForcedSourceId"], number))
            for p in record["prvDiaForcedSources"]
        ]
    for key in SOLAR_SYSTEM_RECORDS:
        if key in record:
            record[key] = None
    return record


def _not_solar(source: Mapping[str, Any]) -> dict[str, Any]:
    """Return the change making a diaSource not a solar-system source (none if it has no field)."""
    return {"ssObjectId": None} if "ssObjectId" in source else {}
