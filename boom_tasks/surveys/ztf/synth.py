"""Synthetic ZTF alerts for volume: many new packets made from a few real ones.

Benchmarks and load tests need more alerts than the shared sample holds, and
alerts that do not collide with each other in the database. Each synthetic
alert is a real packet, re-encoded with its own writer schema, in which only
the identity and the position change:

Step 1: decode every usable real packet once (each with its embedded schema;
        packets that do not decode or lack ``candid``/``objectId``/a position
        are skipped, as the broker would quarantine them).
Step 2: for alert ``i``, cycle through the real packets and give the copy a new
        ``candid`` (``CANDID_BASE + start + i``), the ``objectId`` of synthetic
        object ``(start + i) // alerts_per_object`` and that object's random
        position; ``prv_candidates`` move with the alert, so a history stays
        consistent with its detection.
Step 3: encode the copy as a one-record Avro object-container file.

Everything else (photometry, cutouts, history) is the real packet's, shared
between copies by shallow copies rather than duplicated: cutouts are the bulk.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro

from boom_tasks.replay.archive import ArchiveError, iter_packets
from boom_tasks.replay.synthetic import check_counts, cos_dec, placements

log = logging.getLogger(__name__)

#: First synthetic candid: above every real ZTF candid (~3e18 in 2025), below 2**63.
CANDID_BASE = 9_000_000_000_000_000_000

#: Year of synthetic objectIds: ZTF names objects from 2017 on and will never reach
#: 2099, so a synthetic object is never merged with a real one.
OBJECT_YEAR = "99"

#: Letters after the year in a ZTF objectId (26**7, about 8e9, distinct objects).
OBJECT_LETTERS = 7

#: Scatter of an object's detections around its position, in degrees (0.1 arcsec,
#: about ZTF's astrometric precision): repeated detections are not bit-identical.
SCATTER_DEG = 0.1 / 3600


@dataclass(frozen=True)
class SourceAlert:
    """One decoded real packet, shared read-only by every copy made from it.

    Attributes
    ----------
    record
        The decoded alert (never mutate it: copies share its parts).
    schema
        Its parsed writer schema.
    ra, dec
        Its ``candidate`` position, in degrees.
    """

    record: dict[str, Any]
    schema: Any
    ra: float
    dec: float


#: Parsed writer schemas by their JSON text: one parse per schema version.
_SCHEMAS: dict[str, Any] = {}


def synth_alerts(
    source: Path | str,
    n: int,
    *,
    seed: int = 0,
    alerts_per_object: int = 1,
    start: int = 0,
) -> Iterator[bytes]:
    """Yield ``n`` new ZTF alert packets made from the real packets in ``source``.

    Parameters
    ----------
    source
        Folder of real ``*.avro`` packets (searched recursively) or a night's
        ``.tar.gz``; unusable packets in it are skipped.
    n
        Number of packets to yield.
    seed
        Seed of the positions: the same arguments yield the same bytes.
    alerts_per_object
        Consecutive alerts that share an ``objectId`` and a position, so
        synthetic objects have multi-alert histories.
    start
        Index of the first alert: streams given disjoint ranges ``[start,
        start + n)`` have distinct candids and objects, and can share a database.

    Returns
    -------
    Iterator of bytes
        Packets made lazily, one at a time: each an Avro object-container file
        holding one alert, with the writer schema of the real packet it copies.

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
        candid, obj = CANDID_BASE + at.index, object_id(at.object_number)
        record = synth_record(src, candid, obj, at.ra, at.dec)
        yield encode(record, src.schema, sync_marker=rng.randbytes(16))


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
    sources, skipped = [], 0
    for _name, packet in iter_packets(source):
        decoded = _decode(packet)
        if decoded is None:
            skipped += 1
        else:
            sources.append(decoded)
    if not sources:
        raise ArchiveError(f"no usable ZTF packet in {source} to make synthetic alerts from")
    log.info("synthetic alerts from %d real packets (%d skipped)", len(sources), skipped)
    return tuple(sources)


def _decode(packet: bytes) -> SourceAlert | None:
    """Decode a real packet's first record, or return ``None`` if it cannot serve."""
    try:
        reader = fastavro.reader(io.BytesIO(packet))
        record = next(iter(reader))
        schema = _parsed(reader.metadata["avro.schema"])
    except Exception:  # corrupt packets raise many types; all mean "skip this one"
        return None
    if not isinstance(record, dict):
        return None
    candidate = record.get("candidate") or {}
    ra, dec = candidate.get("ra"), candidate.get("dec")
    # Prototype packets lack objectId; without candid or a position no copy is valid.
    if not (isinstance(record.get("objectId"), str) and isinstance(record.get("candid"), int)):
        return None
    if not (isinstance(ra, float) and isinstance(dec, float)):
        return None
    return SourceAlert(record=record, schema=schema, ra=ra, dec=dec)


def _parsed(schema_json: str) -> Any:
    """Return the parsed writer schema for ``schema_json``, parsing it on first sight only."""
    schema = _SCHEMAS.get(schema_json)
    if schema is None:
        schema = _SCHEMAS[schema_json] = fastavro.parse_schema(json.loads(schema_json))
    return schema


def object_id(number: int) -> str:
    """Return the ZTF-style objectId of synthetic object ``number``.

    ``'ZTF' + OBJECT_YEAR + 7 lower-case letters``, the letters being ``number``
    in base 26 (``0 -> 'aaaaaaa'``), so distinct numbers give distinct ids.
    """
    if not 0 <= number < 26**OBJECT_LETTERS:
        raise ValueError(f"synthetic object number {number} out of range")
    letters = []
    for _ in range(OBJECT_LETTERS):
        number, digit = divmod(number, 26)
        letters.append(chr(ord("a") + digit))
    return f"ZTF{OBJECT_YEAR}{''.join(reversed(letters))}"


def synth_record(
    src: SourceAlert, candid: int, object_id: str, ra: float, dec: float
) -> dict[str, Any]:
    """Return a copy of ``src``'s record with a new identity and position.

    Only the dictionaries that change are copied; cutouts, photometry and the
    unchanged history entries are the source's own objects (never mutate them).
    """
    record = dict(src.record, candid=candid, objectId=object_id)
    candidate = dict(record["candidate"], ra=ra, dec=dec)
    if "candid" in candidate:
        candidate["candid"] = candid
    record["candidate"] = candidate
    if record.get("prv_candidates"):
        record["prv_candidates"] = [_moved(p, src, ra, dec) for p in record["prv_candidates"]]
    return record


def _moved(prv: dict[str, Any], src: SourceAlert, ra: float, dec: float) -> dict[str, Any]:
    """Move a history entry by the alert's move, keeping its offset on the sky."""
    if prv.get("ra") is None or prv.get("dec") is None:
        return prv  # upper limits carry no position: nothing to move
    # The RA offset, wrapped to [-180, 180), is an arc of d_ra*cos(dec) on the sky:
    # rescale it to the new declination so the entry stays as far from the alert.
    d_ra = (prv["ra"] - src.ra + 180.0) % 360.0 - 180.0
    scale = cos_dec(src.dec) / cos_dec(dec)
    new_dec = min(90.0, max(-90.0, dec + prv["dec"] - src.dec))
    return dict(prv, ra=(ra + d_ra * scale) % 360.0, dec=new_dec)


def encode(record: dict[str, Any], schema: Any, *, sync_marker: bytes | None = None) -> bytes:
    """Encode one record as an Avro object-container file with ``schema`` embedded.

    Parameters
    ----------
    record
        The alert.
    schema
        Parsed writer schema (``fastavro.parse_schema``).
    sync_marker
        16 bytes; fixing it makes the output reproducible (fastavro draws a
        random one otherwise).
    """
    buf = io.BytesIO()
    # fastavro's own default is a random marker; os.urandom keeps that when none is given.
    fastavro.writer(buf, schema, [record], sync_marker=sync_marker or os.urandom(16))
    return buf.getvalue()
