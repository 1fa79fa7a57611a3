"""Rubin alert packets → decoded Avro records.

Step 1: read the frame. Rubin publishes in Confluent's wire format: byte 0 is 0,
        bytes 1-4 the big-endian schema id (major x 100 + minor: 701 is v7.1,
        1000 is v10.0), then one schemaless Avro datum. Avro object-container
        files (the ``fakeAlert.avro`` samples of ``lsst-alert-packet``) are
        accepted too, and decoded with the schema they embed.
Step 2: find the writer schema of that id (:class:`SchemaSource`): a Confluent
        schema registry when one is configured; the schemas shipped by the
        ``lsst-alert-packet`` package otherwise, or when the registry is
        unreachable or lacks the id.
Step 3: decode the datum. It must use every byte of the packet: bytes left over
        mean the id named a schema the packet was not written with.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import fastavro
from fastavro.read import HEADER_SCHEMA
from fastavro.schema import SchemaParseException

from boom_tasks.alert.avro import MAGIC as CONTAINER_MAGIC
from boom_tasks.alert.avro import decode_first_record
from boom_tasks.errors import AlertRejected

log = logging.getLogger(__name__)

#: First byte of a Confluent wire-format message (its "magic byte").
WIRE_MAGIC = 0
#: Bytes before the datum: the magic byte and the 4-byte big-endian schema id.
WIRE_HEADER_SIZE = 5
#: Seconds to wait for the schema registry: the package is always there as a
#: fallback, so a slow registry must not stall ingestion.
REGISTRY_TIMEOUT_S = 2.0
#: Seconds before an id no source knew is looked up again: a corrupt stream must
#: not cost a registry request per packet, yet a schema published mid-night is
#: picked up without restarting the workers.
UNKNOWN_ID_RETRY_S = 60.0
#: The package holding Rubin's schemas, one folder per version: schema/<major>/<minor>/.
PACKAGE = "lsst.alert.packet"
#: Full name of Rubin's alert record; its namespace carries the version (lsst.v9_0).
ALERT_NAME = re.compile(r"^lsst\.v(\d+)_(\d+)\.alert$")
#: What fastavro raises on bytes that do not fit the schema (UnicodeDecodeError is
#: a ValueError). A corrupt packet is quarantined with the error, never retried.
DATUM_ERRORS = (EOFError, ValueError, IndexError, KeyError, TypeError, OverflowError)
#: Object addresses in fastavro's messages ("from <_io.BytesIO object at 0x7f...>"):
#: removed so that one kind of corruption gives one quarantine reason.
_ADDRESS = re.compile(r" (?:from )?<[^<>]* at 0x[0-9a-f]+>")


def schema_id(major: int, minor: int) -> int:
    """Return Rubin's schema-registry id of schema version ``major.minor``."""
    return major * 100 + minor


def version_of(sid: int) -> str:
    """Return the schema version ``"major.minor"`` of a schema id (``701`` → ``"7.1"``)."""
    return f"{sid // 100}.{sid % 100}"


def describe(error: Exception) -> str:
    """Return ``"Type: message"`` of a decoding error, without object addresses."""
    return f"{type(error).__name__}: {_ADDRESS.sub('', str(error))}"


def package_schema_dir() -> Path | None:
    """Return the ``schema`` folder of ``lsst-alert-packet``, or None if it is not installed.

    ``find_spec`` locates the package without importing it: its ``__init__``
    pulls in ``lsst.resources`` and the simulation code, and only its data files
    are needed here.
    """
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except ModuleNotFoundError:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "schema"
    return folder if folder.is_dir() else None


def package_alert_files(folder: Path) -> dict[int, Path]:
    """Return the alert schema file of every version under ``folder``, by schema id."""
    files: dict[int, Path] = {}
    for path in folder.glob("*/*/lsst.v*_*.alert.avsc"):
        major, minor = path.parent.parent.name, path.parent.name
        if major.isdigit() and minor.isdigit():
            files[schema_id(int(major), int(minor))] = path
    return files


def load_package_schema(alert_file: Path) -> Any:
    """Parse one version's alert schema together with the sub-records beside it.

    The alert record names its sub-records (``lsst.v9_0.diaSource``...), each in
    its own ``.avsc`` file; these reference no named type, so they parse in any
    order. Files the alert does not use (``ssObject`` of 10.0+) are harmless.
    """
    named: dict[str, Any] = {}
    for path in sorted(alert_file.parent.glob("*.avsc")):
        if path != alert_file:
            fastavro.parse_schema(json.loads(path.read_text()), named_schemas=named)
    return fastavro.parse_schema(json.loads(alert_file.read_text()), named_schemas=named)


class SchemaSource:
    """Resolve schema ids to parsed Avro schemas, each looked up once per process.

    Parameters
    ----------
    registry_url
        Base URL of a Confluent-compatible schema registry, asked first
        (``GET {url}/schemas/ids/{id}``); None to use the package only.
    package_dir
        The ``schema`` folder of ``lsst-alert-packet``; default: the installed one.
    timeout
        Seconds to wait for the registry.
    """

    def __init__(
        self,
        registry_url: str | None = None,
        *,
        package_dir: Path | None = None,
        timeout: float = REGISTRY_TIMEOUT_S,
    ) -> None:
        self.registry_url = registry_url.rstrip("/") if registry_url else None
        self.timeout = timeout
        self._package_dir = package_dir
        self._package_files: dict[int, Path] | None = None
        self._schemas: dict[int, Any] = {}
        self._unknown_until: dict[int, float] = {}

    def package_files(self) -> dict[int, Path]:
        """Return the package's alert schema files by id (found on first call)."""
        if self._package_files is None:
            folder = self._package_dir or package_schema_dir()
            self._package_files = package_alert_files(folder) if folder else {}
        return self._package_files

    def known_versions(self) -> list[str]:
        """Return the schema versions the package ships, oldest first (``"7.1"``...)."""
        return [version_of(sid) for sid in sorted(self.package_files())]

    def get(self, sid: int) -> Any:
        """Return the parsed writer schema of schema id ``sid``.

        Raises
        ------
        AlertRejected
            If neither the registry nor the package has the id.
        """
        schema = self._schemas.get(sid)
        if schema is not None:
            return schema
        if time.monotonic() < self._unknown_until.get(sid, 0.0):
            raise AlertRejected(self._unknown_reason(sid))
        schema = self._from_registry(sid) if self.registry_url else None
        if schema is None:
            schema = self._from_package(sid)
        if schema is None:
            self._unknown_until[sid] = time.monotonic() + UNKNOWN_ID_RETRY_S
            raise AlertRejected(self._unknown_reason(sid))
        self._schemas[sid] = schema
        return schema

    def _from_package(self, sid: int) -> Any:
        path = self.package_files().get(sid)
        return load_package_schema(path) if path else None

    def _from_registry(self, sid: int) -> Any:
        """Return the registry's schema of ``sid``, or None (absent, unreachable, unusable)."""
        url = f"{self.registry_url}/schemas/ids/{sid}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                body = json.loads(response.read())
            return fastavro.parse_schema(json.loads(body["schema"]))
        except urllib.error.HTTPError as e:
            e.close()
            if e.code != 404:
                log.warning("schema registry %s answered %s for id %d", url, e.code, sid)
        except (OSError, ValueError, KeyError, TypeError, SchemaParseException) as e:
            # OSError covers refused connections and timeouts: the package takes over.
            log.warning("schema registry %s unusable (%s: %s)", url, type(e).__name__, e)
        return None

    def _unknown_reason(self, sid: int) -> str:
        where = f"the schema registry {self.registry_url} nor " if self.registry_url else ""
        versions = ", ".join(self.known_versions()) or "none: lsst-alert-packet is not installed"
        return (
            f"unknown schema id {sid} (would be v{version_of(sid)}): not in {where}"
            f"lsst-alert-packet, whose versions are {versions}"
        )


def _container_schema_id(packet: bytes) -> int:
    """Return the schema id of an Avro container packet, checking it holds a Rubin alert."""
    try:
        header: Any = fastavro.schemaless_reader(io.BytesIO(packet), HEADER_SCHEMA)
        writer = json.loads(header["meta"]["avro.schema"])
    except DATUM_ERRORS as e:
        raise AlertRejected(f"Avro container header unreadable: {describe(e)}") from None
    name = writer.get("name", "") if isinstance(writer, dict) else ""
    namespace = writer.get("namespace") if isinstance(writer, dict) else None
    full_name = name if "." in name or not namespace else f"{namespace}.{name}"
    match = ALERT_NAME.match(full_name)
    if match is None:
        raise AlertRejected(
            f"not an LSST alert: an Avro container file of schema {full_name or '(unnamed)'!r}, "
            "expected Rubin's lsst.vX_Y.alert"
        )
    return schema_id(int(match[1]), int(match[2]))


def _check_header(packet: bytes) -> int:
    """Return the schema id of a wire-format packet after checking its frame."""
    if not packet:
        raise AlertRejected("empty packet")
    if packet[0] != WIRE_MAGIC:
        raise AlertRejected(
            f"bad magic byte 0x{packet[0]:02x}: expected 0x00 (Confluent wire format) "
            "or an Avro object-container file (b'Obj\\x01')"
        )
    if len(packet) <= WIRE_HEADER_SIZE:
        raise AlertRejected(
            f"packet too short ({len(packet)} bytes): expected 0x00, a 4-byte schema id "
            "and an Avro datum"
        )
    return int.from_bytes(packet[1:WIRE_HEADER_SIZE], "big")


def decode_packet(packet: bytes, source: SchemaSource) -> tuple[int, dict[str, Any]]:
    """Decode one Rubin alert packet.

    Parameters
    ----------
    packet
        Confluent wire-format bytes, or an Avro object-container file.
    source
        Where schemas come from.

    Returns
    -------
    tuple
        The schema id (for a container file: from its schema's namespace) and
        the decoded alert record.

    Raises
    ------
    AlertRejected
        With the reason: empty or short packet, bad magic byte, unknown schema
        id, a datum that does not decode, or bytes left after it.
    """
    if packet.startswith(CONTAINER_MAGIC):
        sid = _container_schema_id(packet)
        return sid, decode_first_record(packet)
    sid = _check_header(packet)
    schema = source.get(sid)
    fo = io.BytesIO(packet)
    fo.seek(WIRE_HEADER_SIZE)
    try:
        record = fastavro.schemaless_reader(fo, schema)
    except DATUM_ERRORS as e:
        raise AlertRejected(
            f"Avro datum does not decode with schema {sid} (v{version_of(sid)}): {describe(e)}"
        ) from None
    left = len(packet) - fo.tell()
    if left:
        raise AlertRejected(
            f"{left} bytes left after the Avro datum of schema {sid} (v{version_of(sid)}): "
            "the packet was written with another schema"
        )
    if not isinstance(record, dict):
        raise AlertRejected(f"schema {sid} does not describe a record")
    return sid, record
