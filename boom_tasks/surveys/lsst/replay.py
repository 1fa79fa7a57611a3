"""Where replayed LSST packets come from: a folder or tarball of Rubin packets.

Rubin has no public archive of nights to download, so ``boom-produce LSST --from
DIR`` replays local files only:

Step 1: read every ``*.avro`` file of the folder or ``.tar.gz``, in sorted order
        (:mod:`boom_tasks.replay.archive`).
Step 2: send a Confluent wire-format packet (what Rubin's Kafka carries) as it is.
Step 3: split an Avro object-container file (``fakeAlert.avro`` of
        ``lsst-alert-packet``, possibly several records) into one wire-format
        packet per record, so that the bridge receives exactly what Rubin's
        stream would carry: the record re-encoded schemalessly with the
        container's writer schema, after byte 0 and the schema id that the
        schema's namespace names (``lsst.v10_0`` → 1000).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import fastavro
from fastavro.schema import SchemaParseException

from boom_tasks.alert.avro import MAGIC as CONTAINER_MAGIC
from boom_tasks.alert.avro import parsed_schema
from boom_tasks.replay import archive
from boom_tasks.replay.archive import PACKET_SUFFIX, ArchiveError
from boom_tasks.surveys.base import ReplaySource
from boom_tasks.surveys.lsst.packets import (
    ALERT_NAME,
    DATUM_ERRORS,
    WIRE_HEADER_SIZE,
    WIRE_MAGIC,
    describe,
    schema_id,
)

#: What reading a damaged container raises besides fastavro's datum errors: a
#: schema that does not parse, a deflate block that does not inflate.
CONTAINER_ERRORS = (*DATUM_ERRORS, SchemaParseException, zlib.error)


def wire_packet(sid: int, schema: Any, record: dict[str, Any]) -> bytes:
    """Encode one alert in Rubin's wire format: byte 0, the 4-byte schema id, the datum.

    Parameters
    ----------
    sid
        Schema id (major x 100 + minor) the consumer looks the schema up by.
    schema
        The parsed Avro schema of that id (``fastavro.parse_schema``).
    record
        The alert.
    """
    buf = io.BytesIO()
    buf.write(bytes([WIRE_MAGIC]))
    buf.write(sid.to_bytes(WIRE_HEADER_SIZE - 1, "big"))
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


def container_schema_id(name: str, writer: Any) -> int:
    """Return the schema id a container's writer schema names (``lsst.v9_0.alert`` → 900).

    Raises
    ------
    ArchiveError
        If the schema is not a Rubin alert's: the file belongs to another survey.
    """
    full_name = ""
    if isinstance(writer, dict):
        short, namespace = writer.get("name", ""), writer.get("namespace")
        full_name = short if "." in short or not namespace else f"{namespace}.{short}"
    match = ALERT_NAME.match(full_name)
    if match is None:
        raise ArchiveError(
            f"{name}: an Avro container of schema {full_name or '(unnamed)'!r}, not a Rubin "
            "alert (lsst.vX_Y.alert): replay it as its own survey"
        )
    return schema_id(int(match[1]), int(match[2]))


def container_packets(name: str, packet: bytes) -> Iterator[tuple[str, bytes]]:
    """Yield one ``(name, wire-format packet)`` per record of an Avro container file.

    A one-record file keeps its name; records of a longer file are named
    ``name#index`` (the Kafka key), so that each message has its own.

    Raises
    ------
    ArchiveError
        If the file is not a Rubin alert container, or is damaged.
    """
    try:
        reader = fastavro.reader(io.BytesIO(packet))
        schema_text = reader.metadata["avro.schema"]
        sid = container_schema_id(name, reader.writer_schema)
        schema = parsed_schema(schema_text.encode())
        # The schema is Rubin's alert record (checked above), so every datum is a dict.
        records = cast(list[dict[str, Any]], list(reader))
    except CONTAINER_ERRORS as e:
        raise ArchiveError(f"{name}: unreadable Avro container ({describe(e)})") from None
    for index, record in enumerate(records):
        key = name if len(records) == 1 else f"{name}#{index}"
        yield key, wire_packet(sid, schema, record)


def iter_packets(source: Path | str) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, packet)`` for every alert of a folder or tarball, in Rubin's wire format.

    Parameters
    ----------
    source
        A folder holding ``*.avro`` files at any depth, or a ``.tar.gz`` of them.
        Each file is a wire-format packet or an Avro container of alerts.

    Raises
    ------
    ArchiveError
        If ``source`` cannot be read, or a container file holds no Rubin alert
        (raised when that file is reached).
    """
    packets = archive.iter_packets(source)  # fails here, not at the first next()
    return _wire_packets(packets)


def _wire_packets(packets: Iterator[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
    for name, packet in packets:
        if packet.startswith(CONTAINER_MAGIC):
            yield from container_packets(name, packet)
        else:
            yield name, packet  # already what Rubin sends: passed through untouched


def count_packets(source: Path | str) -> int | None:
    """Return how many packets a folder yields, or None for a tarball.

    A wire-format file is one packet; a container file counts its records,
    read from its block headers (records are not decoded). A damaged container
    counts as one: :func:`iter_packets` reports it when it gets there.
    """
    source = Path(source)
    if archive.count_packets(source) is None:
        return None
    paths = (p for p in source.rglob(f"*{PACKET_SUFFIX}") if p.is_file())
    return sum(_records_in(path) for path in paths)


def _records_in(path: Path) -> int:
    with path.open("rb") as fo:
        if fo.read(len(CONTAINER_MAGIC)) != CONTAINER_MAGIC:
            return 1
        fo.seek(0)
        try:
            return sum(block.num_records for block in fastavro.block_reader(fo))
        except CONTAINER_ERRORS:
            return 1


#: Rubin packets from local files; Rubin publishes no archive of nights to fetch.
REPLAY = ReplaySource(iter_packets=iter_packets, count_packets=count_packets)
