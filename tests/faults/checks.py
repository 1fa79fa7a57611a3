"""What a fault run must leave behind, checked on the real servers; and malformed packets.

:func:`malformed` makes bad packets of every kind from real ones; :func:`check_run`
counts, after a run, what issue 11 asks for: alerts lost, duplicated documents,
alerts not enriched or not filtered, passes not published or published twice,
work left in a queue, dead letters without an explanation, malformed packets
neither quarantined nor decoded.
"""

from __future__ import annotations

import hashlib
import io
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import fastavro
import numpy as np
import redis
from dramatiq import Message
from dramatiq.results import ResultFailure, ResultMissing
from dramatiq.results.backends import RedisBackend

from boom_tasks.broker import NAMESPACE
from boom_tasks.chain import CHAIN
from boom_tasks.filter.run import run_filters
from boom_tasks.filter.store import load_active
from boom_tasks.output.schema import decode
from boom_tasks.settings import Settings
from boom_tasks.surveys.ztf import ZTF

#: Kinds of malformed packet, as issue 11 lists them.
KINDS = ("truncated", "bitflip", "wrong_schema", "absent_schema", "empty", "oversized", "other")

#: Schema of "valid Avro of another schema" packets.
OTHER_SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "NotAnAlert",
        "fields": [{"name": "candid", "type": "long"}, {"name": "note", "type": "string"}],
    }
)


def candid_of(packet: bytes) -> int:
    """Return the candid of a real ZTF packet (an Avro container of one alert)."""
    return int(next(iter(fastavro.reader(io.BytesIO(packet))))["candid"])


def malformed(real: list[bytes], n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """Return ``n`` bad packets made from ``real`` ones, the kinds in turn, each distinct."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind, packet = KINDS[i % len(KINDS)], real[int(rng.integers(len(real)))]
        out.append((kind, _spoil(kind, packet, rng, i)))
    return out


def _spoil(kind: str, packet: bytes, rng: np.random.Generator, i: int) -> bytes:
    if kind == "truncated":
        return packet[: int(rng.integers(1, len(packet) - 1))]
    if kind == "bitflip":
        data = bytearray(packet)
        for pos in rng.integers(0, len(data), 8):
            data[pos] ^= 1 << int(rng.integers(8))
        return bytes(data)
    if kind == "empty":
        return b""
    if kind == "oversized":  # a real alert followed by ~900 kB of junk
        return packet + rng.bytes(900_000 + i)
    if kind == "other":
        buf = io.BytesIO()
        fastavro.writer(buf, OTHER_SCHEMA, [{"candid": i, "note": "not an alert"}])
        return buf.getvalue()
    reader = fastavro.reader(io.BytesIO(packet))
    record = next(iter(reader))
    record["candid"] = 10**15 + i  # distinct bytes for each
    body = io.BytesIO()
    fastavro.schemaless_writer(body, reader.writer_schema, record)
    if kind == "absent_schema":
        return body.getvalue()
    # "wrong_schema": Confluent framing naming a registry schema id nobody has
    return b"\x00" + struct.pack(">I", 900_000 + i) + body.getvalue()


@dataclass
class Figures:
    """What a fault run left, counted."""

    alerts_expected: int = 0
    alerts_lost: int = 0
    duplicated_documents: int = 0
    not_enriched: int = 0
    passes_missing: int = 0
    passes: int = 0
    messages: int = 0
    unpublished: int = 0
    duplicated_messages: int = 0
    queued_left: int = 0
    left_in: Counter = field(default_factory=Counter)
    dead_letters: list[str] = field(default_factory=list)
    unexplained_dead_letters: int = 0
    quarantined: Counter = field(default_factory=Counter)
    malformed_by_kind: dict[str, Counter] = field(default_factory=dict)
    malformed_unaccounted: int = 0
    real_quarantined: int = 0

    def ok(self) -> bool:
        """Tell whether the run lost, doubled and left nothing."""
        return not (
            self.alerts_lost
            or self.duplicated_documents
            or self.not_enriched
            or self.passes_missing
            or self.unpublished
            or self.duplicated_messages
            or self.queued_left
            or self.unexplained_dead_letters
            or self.malformed_unaccounted
            or self.real_quarantined
        )


def check_run(
    settings: Settings,
    db: Any,
    valkey: redis.Redis,
    real: list[int],
    bad: list[tuple[str, bytes]],
    messages: list[bytes],
) -> Figures:
    """Count what the run left in MongoDB, Valkey and the output topic."""
    f = Figures(alerts_expected=len(real))
    _check_alerts(f, db, real)
    _check_passes(f, settings, db, real, messages)
    _check_queues(f, valkey)
    _check_quarantine(f, db, real, bad)
    return f


def _check_alerts(f: Figures, db: Any, real: list[int]) -> None:
    stored = Counter(d["candid"] for d in db[ZTF.alerts].find({}, {"candid": 1}))
    f.alerts_lost = sum(1 for c in real if c not in stored)
    f.duplicated_documents = sum(n - 1 for n in stored.values())
    enriched = {d["_id"] for d in db[ZTF.alerts].find({"enriched_at": {"$exists": 1}}, {"_id": 1})}
    f.not_enriched = sum(1 for c in real if c not in enriched)


def _check_passes(
    f: Figures, settings: Settings, db: Any, real: list[int], messages: list[bytes]
) -> None:
    # Filtered: running the active filters again must find no pass the stage missed
    filters = load_active(db, "ZTF")
    for start in range(0, len(real), 1000):
        outcomes, _ = run_filters(db, ZTF, filters, real[start : start + 1000], settings.filters)
        f.passes_missing += sum(o.new_passes for o in outcomes)
    passes = {
        (p["candid"], str(p["filter_id"]), str(p["fid"]))
        for p in db[ZTF.filter_passes].find({}, {"candid": 1, "filter_id": 1, "fid": 1})
    }
    published: Counter = Counter()
    for raw in messages:
        msg = decode(raw)
        for entry in msg["filters"]:
            published[(msg["candid"], entry["filter_id"], entry["version"])] += 1
    f.passes, f.messages = len(passes), len(messages)
    f.unpublished = len(passes - set(published))
    f.duplicated_messages = sum(n - 1 for n in published.values())


def _check_queues(f: Figures, valkey: redis.Redis) -> None:
    backend = RedisBackend(client=valkey)
    for stage in CHAIN:
        queue = f"{NAMESPACE}:{ZTF.queue_prefix}_{stage.name}"
        for key in (f"{queue}.msgs", f"{queue}.DQ.msgs"):
            if n := int(valkey.hlen(key)):
                f.left_in[key] += n
        for raw in valkey.hvals(f"{queue}.XQ.msgs"):
            message = Message.decode(raw)
            try:
                backend.get_result(message)
                why = "succeeded?"
            except ResultFailure as e:
                why = str(e)
            except ResultMissing:
                why = ""
            f.dead_letters.append(f"{message.actor_name}: {why or 'no explanation'}")
            f.unexplained_dead_letters += not why
    if n := int(valkey.hlen(f"boom:{ZTF.queue_prefix}:pending")):
        f.left_in["pending batches"] += n
    f.queued_left = sum(f.left_in.values())


def _check_quarantine(f: Figures, db: Any, real: list[int], bad: list[tuple[str, bytes]]) -> None:
    docs = {d["_id"]: d for d in db[ZTF.quarantine].find({}, {"packet": 0})}
    f.quarantined = Counter(d["reason"] for d in docs.values())
    realset = set(real)
    f.real_quarantined = sum(1 for d in docs.values() if d.get("candid") in realset)
    for kind, packet in bad:
        outcome = "quarantined" if hashlib.sha256(packet).hexdigest() in docs else "decoded"
        if outcome == "decoded":
            try:
                candid = candid_of(packet)
            except Exception:  # not a readable alert: neither quarantined nor stored
                outcome = "unaccounted"
            else:
                found = db[ZTF.alerts].find_one({"_id": candid}, {"_id": 1})
                outcome = "decoded" if found else "unaccounted"
        f.malformed_by_kind.setdefault(kind, Counter())[outcome] += 1
        f.malformed_unaccounted += outcome == "unaccounted"


def format_figures(f: Figures) -> str:
    """Render the figures for the terminal."""
    lines = [
        f"alerts: {f.alerts_expected} real, {f.alerts_lost} lost, "
        f"{f.duplicated_documents} duplicated documents, {f.not_enriched} not enriched",
        f"filters: {f.passes} passes, {f.passes_missing} missed by the filter stage",
        f"output: {f.messages} messages, {f.unpublished} passes unpublished, "
        f"{f.duplicated_messages} duplicated (candid, filter, version) messages",
        f"queues: {f.queued_left} messages or batches left; {len(f.dead_letters)} dead letters, "
        f"{f.unexplained_dead_letters} unexplained",
    ]
    lines += [f"  {n} in {where}" for where, n in sorted(f.left_in.items())]
    lines += [f"  dead letter: {d}" for d in f.dead_letters]
    lines.append(f"quarantine: {sum(f.quarantined.values())} documents, {f.real_quarantined} real")
    lines += [f"  {n} x {reason[:110]}" for reason, n in f.quarantined.most_common(12)]
    for kind, outcomes in sorted(f.malformed_by_kind.items()):
        lines.append(f"  malformed {kind}: {dict(outcomes)}")
    return "\n".join(lines)
