"""Canonical snapshots for ``bench/snapshot.py``: dump, write, load and diff them.

Step 1: ``take_snapshot`` dumps every collection (and its indexes) and every
        output topic through :class:`Canon`, which hides the values that differ
        from run to run by design and names the random ids.
Step 2: ``write_snapshot`` writes them as sorted canonical JSON lines.
Step 3: ``volatile_changes`` counts the hidden values two replays changed;
        ``load_lines`` and ``diff_paths`` read two snapshot files back and
        find where their documents differ.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
from bson import ObjectId
from confluent_kafka import Consumer, TopicPartition

from bench.snapshot_run import KAFKA_CALL_S, ROOT, SnapshotError, Targets, mongo_client, topics

#: Seconds for reading a whole topic to its end.
TOPIC_READ_S = 300.0

#: Keys whose values differ from run to run by design (besides ``*_at`` and datetimes).
VOLATILE_KEYS = frozenset({"_v"})

#: Records of times by stage, each value volatile (the output message's ``times``).
TIMES_KEYS = frozenset({"times"})

#: A random UUID4 (batch keys), hex or dashed, not part of a longer hex string (a SHA-256).
UUID4 = re.compile(
    r"(?<![0-9a-f])[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}(?![0-9a-f])"
)

#: A list index in a field path: changes are counted per field, whatever the item.
INDEX = re.compile(r"\[\d+\]")


# --- canonical form -------------------------------------------------------------------


class Canon:
    """Turns stored documents and messages into canonical, run-independent JSON values.

    Parameters
    ----------
    aliases
        Random ids to replace, wherever they appear in a string, by a stable name
        (a filter's id by ``<filter NAME>``, a version's fid by ``<fid NAME vN>``).
        Any other UUID4 in a string becomes ``<uuid4>``.
    """

    def __init__(self, aliases: Mapping[str, str]) -> None:
        self.aliases = dict(aliases)
        self._pattern = (
            re.compile("|".join(re.escape(k) for k in sorted(aliases, key=len, reverse=True)))
            if aliases
            else None
        )
        #: Volatile values removed from the current document: path -> raw value.
        self.volatile: dict[str, str] = {}
        self._by_key = True

    def document(self, value: Any, by_key: bool = True) -> tuple[Any, dict[str, str]]:
        """Return the canonical form of one document and the volatile values it lost.

        Parameters
        ----------
        value
            The document.
        by_key
            Hide the values of volatile keys (``*_at``, ``_v``, ``times``); off for
            an index specification, where such a key names an indexed field.
        """
        self.volatile, self._by_key = {}, by_key
        return self.value(value, ""), self.volatile

    def value(self, value: Any, path: str) -> Any:
        """Return the canonical form of ``value`` found at ``path``."""
        if isinstance(value, Mapping):
            return {str(k): self.field(str(k), v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dt.datetime | dt.date | ObjectId):
            return self.hide(value, path)
        if isinstance(value, bytes):
            return {"$bytes": len(value), "sha256": hashlib.sha256(value).hexdigest()}
        if isinstance(value, float) and not math.isfinite(value):
            return {"$float": repr(value)}
        if isinstance(value, str):
            return self.text(value, path)
        if value is None or isinstance(value, bool | int | float):
            return value
        return {f"${type(value).__name__}": str(value)}

    def field(self, key: str, value: Any, path: str) -> Any:
        """Return the canonical form of a mapping's ``key``, hiding volatile fields."""
        if value is None or not self._by_key:
            return self.value(value, path)
        if key in VOLATILE_KEYS or key.endswith("_at"):
            return self.hide(value, path)
        if key in TIMES_KEYS and isinstance(value, Mapping):
            return {
                str(k): None if v is None else self.hide(v, f"{path}.{k}") for k, v in value.items()
            }
        return self.value(value, path)

    def hide(self, value: Any, path: str) -> str:
        """Record a volatile value and return a placeholder naming its type."""
        self.volatile[path] = value.isoformat() if isinstance(value, dt.date) else repr(value)
        return f"<{type(value).__name__}>"

    def text(self, value: str, path: str) -> Any:
        """Return a string with its random ids named; JSON text is parsed and canonicalised."""
        if self._pattern is not None:
            value = self._pattern.sub(lambda m: self.aliases[m.group(0)], value)
        if UUID4.search(value):
            self.volatile[path] = value
            value = UUID4.sub("<uuid4>", value)
        if value and value[0] in "{[":
            try:
                parsed = json.loads(value)
            except ValueError:
                return value
            return {"$json": self.value(parsed, path)}
        return value


def filter_aliases(db: Any) -> dict[str, str]:
    """Return stable names for the random ids of every stored filter and version."""
    aliases: dict[str, str] = {}
    for doc in db["filters"].find({}):
        name = doc.get("name", "?")
        aliases[str(doc["_id"])] = f"<filter {name}>"
        for i, version in enumerate(doc.get("fv") or [], start=1):
            if version.get("fid") is not None:
                aliases[str(version["fid"])] = f"<fid {name} v{i}>"
    return aliases


# --- dumping --------------------------------------------------------------------------


@dataclass(order=True)
class Entry:
    """One line of a snapshot: a document or a message, canonical."""

    sort_key: tuple[Any, ...]
    line: str = field(compare=False)
    ident: Any = field(compare=False)
    volatile: dict[str, str] = field(compare=False)


#: A snapshot: entries by section (``mongo:<coll>``, ``indexes:<coll>``, ``kafka:<topic>``).
Snapshot = dict[str, list[Entry]]


def make_entry(section: str, ident: Any, doc: Any, volatile: dict[str, str]) -> Entry:
    """Return the entry of one canonical document, sortable by id then content."""
    ident_json = json.dumps(ident, sort_keys=True)
    doc_json = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    line = f'{{"section":{json.dumps(section)},"id":{ident_json},"doc":{doc_json}}}'
    rank = (0, ident, "") if isinstance(ident, int) else (1, 0, ident_json)
    return Entry((*rank, line), line, ident, volatile)


def dump_mongo(t: Targets, snap: Snapshot) -> Canon:
    """Add every collection of the database, and its indexes, to ``snap``."""
    client = mongo_client(t)
    try:
        db = client[t.database]
        # A path inside the checkout would differ between two worktrees of one commit.
        canon = Canon({**filter_aliases(db), str(ROOT): "<checkout>"})
        for name in sorted(db.list_collection_names()):
            if name.startswith("system."):
                continue
            entries = snap.setdefault(f"mongo:{name}", [])
            for raw in db[name].find({}):
                doc, volatile = canon.document(raw)
                entries.append(make_entry(f"mongo:{name}", doc.get("_id"), doc, volatile))
            indexes = snap.setdefault(f"indexes:{name}", [])
            for raw in db[name].list_indexes():
                doc, volatile = canon.document(dict(raw), by_key=False)
                indexes.append(make_entry(f"indexes:{name}", doc.get("name"), doc, volatile))
        return canon
    finally:
        client.close()


def read_topic(t: Targets, topic: str) -> Iterator[Any]:
    """Yield every message of ``topic`` from its beginning to its current end."""
    consumer = Consumer(
        {
            "bootstrap.servers": t.kafka,
            "group.id": f"snapshot-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.message.max.bytes": 50_000_000,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=KAFKA_CALL_S).topics[topic]
        ends, start = {}, []
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=KAFKA_CALL_S
            )
            if high > low:
                ends[p] = high
                start.append(TopicPartition(topic, p, low))
        consumer.assign(start)
        deadline = time.monotonic() + TOPIC_READ_S
        while ends:
            if time.monotonic() > deadline:
                raise SnapshotError(f"could not read {topic} to its end in {TOPIC_READ_S:.0f} s")
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                raise SnapshotError(f"reading {topic}: {msg.error()}")
            yield msg
            if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                ends.pop(msg.partition(), None)
    finally:
        consumer.close()


def message_doc(msg: Any, canon: Canon) -> tuple[Any, dict[str, Any], dict[str, str]]:
    """Return the id, canonical document and volatile values of one output message.

    The value is decoded as an Avro object container (its own schema); the id is
    (candid, names of the filters passed), the order messages are sorted in. A
    record's ``filters`` come in the order of the filters' random ids, so they
    are sorted by name.
    """
    raw_key = msg.key()
    key = raw_key.decode(errors="replace") if raw_key is not None else None
    value = msg.value() or b""
    decoded: dict[str, Any] = {"key": key, "partition": msg.partition()}
    decoded["headers"] = [[k, v] for k, v in (msg.headers() or [])]
    try:
        reader = fastavro.reader(io.BytesIO(value))
        decoded["records"] = list(reader)
        schema = json.dumps(reader.writer_schema, sort_keys=True)
        decoded["codec"] = reader.metadata.get("avro.codec", "null")
        decoded["schema_sha256"] = hashlib.sha256(schema.encode()).hexdigest()
    except (ValueError, EOFError, TypeError, KeyError) as e:
        decoded["undecodable"] = f"{type(e).__name__}: {e}"
        decoded["value"] = value
    doc, volatile = canon.document(decoded)
    for record in doc.get("records") or []:
        if isinstance(record.get("filters"), list):
            record["filters"].sort(key=lambda f: json.dumps(f, sort_keys=True))
    first = doc.get("records", [{}])[0] if doc.get("records") else {}
    names = sorted(str(f.get("filter_id")) for f in first.get("filters") or [])
    return [first.get("candid", key), names], doc, volatile


def dump_kafka(t: Targets, skip: set[str], canon: Canon, snap: Snapshot) -> None:
    """Add every message of every topic but the replayed ones to ``snap``."""
    for topic in sorted(topics(t) - skip):
        section = f"kafka:{topic}"
        entries = snap.setdefault(section, [])
        for msg in read_topic(t, topic):
            ident, doc, volatile = message_doc(msg, canon)
            entry = make_entry(section, ident, doc, volatile)
            candid = ident[0]
            rank = (0, candid, "") if isinstance(candid, int) else (1, 0, str(candid))
            entry.sort_key = (*rank, ident[1], entry.line)
            entries.append(entry)


def take_snapshot(t: Targets, inputs: set[str]) -> Snapshot:
    """Dump the database and the output topics, each section sorted."""
    snap: Snapshot = {}
    canon = dump_mongo(t, snap)
    dump_kafka(t, inputs, canon, snap)
    for entries in snap.values():
        entries.sort()
    return snap


def write_snapshot(snap: Snapshot, path: Path) -> dict[str, tuple[int, str]]:
    """Write the snapshot as JSON lines; return count and SHA-256 per section."""
    sums: dict[str, tuple[int, str]] = {}
    with path.open("w") as out:
        for section in sorted(snap):
            digest = hashlib.sha256()
            for entry in snap[section]:
                out.write(entry.line + "\n")
                digest.update(entry.line.encode() + b"\n")
            sums[section] = (len(snap[section]), digest.hexdigest())
    return sums


# --- reports --------------------------------------------------------------------------


def keyed(entries: list[Entry]) -> dict[str, Entry]:
    """Index entries by id (and occurrence, so a duplicate message stays visible)."""
    seen: Counter[str] = Counter()
    out = {}
    for e in entries:
        ident = json.dumps(e.ident, sort_keys=True)
        out[f"{ident}#{seen[ident]}"] = e
        seen[ident] += 1
    return out


def volatile_changes(first: Snapshot, second: Snapshot) -> Counter[str]:
    """Count, per section and field path, the normalised values the second replay changed."""
    changed: Counter[str] = Counter()
    for section, entries in second.items():
        before = keyed(first.get(section, []))
        for key, entry in keyed(entries).items():
            old = before.get(key)
            if old is None:
                continue
            for path in sorted(set(old.volatile) | set(entry.volatile)):
                if old.volatile.get(path) != entry.volatile.get(path):
                    changed[f"{section} {INDEX.sub('[]', path)}"] += 1
    return changed


# --- loading and diffing --------------------------------------------------------------


def load_lines(path: Path) -> dict[str, dict[str, Any]]:
    """Read a snapshot file: documents by section, then by id and occurrence."""
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    seen: Counter[tuple[str, str]] = Counter()
    with path.open() as f:
        for line in f:
            row = json.loads(line)
            ident = json.dumps(row["id"], sort_keys=True)
            n = seen[(row["section"], ident)]
            seen[(row["section"], ident)] += 1
            out[row["section"]][f"{ident}#{n}" if n else ident] = row["doc"]
    return out


def diff_paths(a: Any, b: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Yield (field path, value in A, value in B) wherever two documents differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            yield from diff_paths(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from diff_paths(x, y, f"{path}[{i}]")
    elif a != b or type(a) is not type(b):
        yield path or ".", a, b


def short(value: Any, width: int = 70) -> str:
    """Return ``value`` as JSON, cut to ``width`` characters."""
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."
