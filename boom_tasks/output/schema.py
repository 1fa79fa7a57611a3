"""The Avro schema of published alerts: load it, fit values to it, encode, decode.

Wire format: every Kafka message is an Avro object-container file holding one
record, with the writer schema (``schema/ztf_results_v1.avsc``, documentation
included) in its header. ZTF publishes its alerts this way, one container per
message, and so does BOOM (``src/filter/base.rs``, ``to_avro_bytes`` writes
with ``apache_avro::Writer``). Consumers written for either read ours
unchanged, any Avro library decodes a message without this package, and old
messages stay readable after the schema changes. There is no schema registry to
resolve an id against, which a schemaless encoding would need. The cost is the
~32 KB header in every message. The producer's zstd batch compression removes
nearly all of it, because the header repeats byte for byte.

Each survey names its schema file and version (``Survey.output``).

Versioning: the file's ``version`` attribute, the survey's ``schema_version`` and
every record's ``schemavsn`` field agree. A minor version only adds fields with
defaults, so a reader using the new schema still resolves old messages. A
major version gets a new file and keeps the ``boom_tasks.ztf`` namespace,
because Avro resolution matches records by their full name.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import numbers
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from typing import Any, cast

import fastavro
import numpy as np

from boom_tasks.alert.avro import decode_first_record
from boom_tasks.errors import AlertRejected, ConfigError, PermanentError
from boom_tasks.surveys import get_survey

#: Avro block codec. Kafka already compresses whole batches with zstd (see
#: ``producer_config``), as BOOM now does, so compressing each record again only costs CPU.
CODEC = "null"

#: Largest value of an Avro ``int`` (32-bit signed).
INT_MAX = 2**31 - 1

#: Values that are never an Avro string, although ``str()`` would accept them.
_NOT_STRINGS = (bytes, bytearray, memoryview, Mapping, list, tuple, float)


class OutputMessageError(PermanentError):
    """A message does not fit the output schema, or bytes are not a valid message."""


@cache
def schema_json(survey: str) -> dict[str, Any]:
    """Return the documented JSON schema of ``survey``'s messages, read once.

    Raises
    ------
    UnknownSurvey
        If no survey of that name is registered.
    ConfigError
        If the file's ``version`` differs from the survey's ``schema_version``.
    """
    output = get_survey(survey).output
    text = resources.files("boom_tasks.output").joinpath("schema", output.schema_file).read_text()
    schema: dict[str, Any] = json.loads(text)
    if schema.get("version") != output.schema_version:
        raise ConfigError(
            f"{output.schema_file} declares version {schema.get('version')!r}, "
            f"code expects {output.schema_version}"
        )
    return schema


@cache
def load_schema(survey: str) -> dict[str, Any]:
    """Return ``survey``'s output schema parsed by fastavro, parsed once per process."""
    return cast(dict[str, Any], fastavro.parse_schema(schema_json(survey)))


@cache
def carries_matches(survey: str) -> bool:
    """Tell whether ``survey``'s messages have ``survey_matches`` (worth reading for)."""
    return any(f["name"] == "survey_matches" for f in schema_json(survey)["fields"])


def conform(value: Any, schema: dict[str, Any], path: str = "message") -> Any:
    """Return ``value`` converted to plain Python types that fit ``schema``.

    Record fields absent from ``value`` take the field's default, or None;
    keys the schema does not name are dropped. Numbers are cast (numpy and
    BSON scalars included), datetimes become Unix seconds where a double is
    expected, and bytes-like values become ``bytes``.

    Parameters
    ----------
    value
        The value to convert, e.g. a message assembled from documents.
    schema
        A schema parsed by :func:`load_schema` (or ``fastavro.parse_schema``).
    path
        Where ``value`` sits in the message, for error messages.

    Raises
    ------
    OutputMessageError
        If a value cannot be converted, naming its path.
    """
    return _conform(value, schema, schema.get("__named_schemas", {}), path)


def _conform(value: Any, schema: Any, names: Mapping[str, Any], path: str) -> Any:
    if isinstance(schema, str):
        named = names.get(schema)
        return (
            _primitive(value, schema, path)
            if named is None
            else _conform(value, named, names, path)
        )
    if isinstance(schema, list):
        return _union(value, schema, names, path)
    kind = schema["type"]
    if kind == "record":
        return _record(value, schema, names, path)
    if kind == "array":
        if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__iter__"):
            raise _mismatch(path, "array", value)
        return [_conform(v, schema["items"], names, f"{path}[{i}]") for i, v in enumerate(value)]
    if kind == "map":
        if not isinstance(value, Mapping):
            raise _mismatch(path, "map", value)
        return {
            str(k): _conform(v, schema["values"], names, f"{path}.{k}") for k, v in value.items()
        }
    if kind == "enum":
        if value not in schema["symbols"]:
            raise _mismatch(path, f"one of {schema['symbols']}", value)
        return str(value)
    return _conform(value, kind, names, path)


def _union(value: Any, branches: list[Any], names: Mapping[str, Any], path: str) -> Any:
    if value is None:
        if "null" in branches:
            return None
        raise _mismatch(path, f"one of {branches}", value)
    errors = []
    for branch in branches:
        if branch == "null":
            continue
        try:
            return _conform(value, branch, names, path)
        except OutputMessageError as e:
            errors.append(str(e))
    raise OutputMessageError("; ".join(errors))


def _record(value: Any, schema: dict[str, Any], names: Mapping[str, Any], path: str) -> Any:
    if not isinstance(value, Mapping):
        raise _mismatch(path, schema["name"], value)
    out = {}
    for field in schema["fields"]:
        name = field["name"]
        item = value.get(name)
        if item is None and field.get("default") is not None:
            # A fresh copy: defaults of arrays and maps are mutable.
            out[name] = json.loads(json.dumps(field["default"]))
        else:
            out[name] = _conform(item, field["type"], names, f"{path}.{name}")
    return out


def _primitive(value: Any, kind: str, path: str) -> Any:
    """Cast one scalar to the Python type fastavro writes for Avro type ``kind``."""
    caster = _CASTS.get(kind)
    result = None if value is None or caster is None else caster(value)
    if result is None and not (value is None and kind == "null"):
        raise _mismatch(path, kind, value)
    return result


def _to_double(value: Any) -> float | None:
    if isinstance(value, dt.datetime):
        # pymongo returns naive datetimes that are UTC; .timestamp() would read them as local.
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return aware.timestamp()
    return float(value) if isinstance(value, numbers.Real) else None


def _to_long(value: Any) -> int | None:
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(float(value)) if not isinstance(value, numbers.Integral) else int(value)
    return None


def _to_int(value: Any) -> int | None:
    number = _to_long(value)
    return number if number is not None and -INT_MAX - 1 <= number <= INT_MAX else None


def _to_bool(value: Any) -> bool | None:
    return bool(value) if isinstance(value, bool | np.bool_) else None


def _to_str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    # ObjectIds and integer ids: their text is the identifier.
    return None if isinstance(value, _NOT_STRINGS) else str(value)


def _to_bytes(value: Any) -> bytes | None:
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else None


#: Cast of each Avro primitive type; each returns None when the value does not fit.
_CASTS: dict[str, Callable[[Any], Any]] = {
    "double": _to_double,
    "float": _to_double,
    "long": _to_long,
    "int": _to_int,
    "boolean": _to_bool,
    "string": _to_str,
    "bytes": _to_bytes,
}


def _mismatch(path: str, expected: str, value: Any) -> OutputMessageError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return OutputMessageError(f"{path}: expected {expected}, got {type(value).__name__} {shown}")


def encode(message: dict[str, Any]) -> bytes:
    """Encode one message as a one-record Avro container (schema of ``message['survey']``).

    Raises
    ------
    OutputMessageError
        If the message does not match the schema (a missing or unknown field, a
        wrong type). :func:`~boom_tasks.output.message.build_message` builds
        messages that match.
    """
    schema = load_schema(str(message.get("survey")))
    buf = io.BytesIO()
    try:
        fastavro.writer(buf, schema, [message], codec=CODEC, strict=True)
    except (ValueError, TypeError, KeyError, OverflowError) as e:
        # fastavro's ValidationError is a ValueError; its message names the field.
        raise OutputMessageError(f"message does not match the output schema: {e}") from None
    return buf.getvalue()


def decode(data: bytes) -> dict[str, Any]:
    """Decode one message with the writer schema in its header.

    Any version of the schema decodes: a consumer needs neither the schema file
    nor a registry. The parsed writer schema is cached by its text.

    Raises
    ------
    OutputMessageError
        If ``data`` is not a one-record Avro container, or is corrupt.
    """
    try:
        return decode_first_record(data)
    except AlertRejected as e:
        raise OutputMessageError(f"cannot decode message: {e.reason}") from None
