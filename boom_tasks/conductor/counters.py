"""Per-night bookkeeping in Valkey: what each stage did with each batch of a night.

A night's alerts are known by the bridge's receipt time of their batch
(``times['received']``), which every inter-stage message already carries. The
bridge maps that receipt time to its night (``<P>:of:<receipt>``); each stage,
once per batch, looks the night up and records, in one round trip (a Lua script):

- ``r:<receipt>``: alerts the stage handled from that batch (a set, not an
  increment, so a redelivered message is not counted twice);
- ``o:<receipt>``: alerts it sent on (the filter sends only its passes);
- ``b<k>``: latency buckets since receipt (as :mod:`boom_tasks.monitor.stats`);
- ``m:<minute>``: alerts per minute, for the night's peak rate;
- ``last_at``: when the stage last finished a batch of the night.

Keys (``<P>`` = ``boom:night:<survey>``): ``<P>:<night>:<stage>`` for stage in
:data:`STAGES`, ``<P>:<night>:candids:<receipt>`` (the stored candids of a batch,
packed, written by ingest, to name alerts that stopped), ``<P>:nights`` (the
nights seen). All expire after ``conductor.keep_days``. Recording never fails a
stage: a Valkey error is logged and the batch goes on.
"""

from __future__ import annotations

import array
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import redis

from boom_tasks.monitor.stats import bucket_of
from boom_tasks.services.valkey import best_effort

#: The stages of a night, in chain order, as the messages' ``times`` name them.
STAGES = ("received", "ingested", "crossmatched", "enriched", "filtered", "published")
#: Per-filter counts kept beside the stages: new passes, and publications.
FILTER_STAGES = ("filtered", "published")
#: Seconds per day, for the keys' lifetime.
DAY_S = 86400

#: Records one stage's batch on its night (see the module docstring); returns the night.
_RECORD = """
local night = redis.call("GET", ARGV[1] .. ":of:" .. ARGV[2])
if not night then return false end
local key = ARGV[1] .. ":" .. night .. ":" .. ARGV[3]
redis.call("HSET", key, "r:" .. ARGV[2], ARGV[4], "o:" .. ARGV[2], ARGV[5])
if ARGV[6] ~= "" then redis.call("HINCRBY", key, "b" .. ARGV[6], ARGV[4]) end
redis.call("HINCRBY", key, "m:" .. ARGV[7], ARGV[4])
local last = tonumber(redis.call("HGET", key, "last_at") or "0")
if tonumber(ARGV[8]) > last then redis.call("HSET", key, "last_at", ARGV[8]) end
for i = 10, #ARGV, 2 do redis.call("HINCRBY", key, ARGV[i], ARGV[i + 1]) end
redis.call("EXPIRE", key, ARGV[9])
return night
"""

#: Records the bridge's batch: its night, offsets (first kept lowest, next highest).
_RECEIVED = """
local key = ARGV[1] .. ":" .. ARGV[2] .. ":received"
redis.call("SET", ARGV[1] .. ":of:" .. ARGV[3], ARGV[2], "EX", ARGV[6])
redis.call("SADD", ARGV[1] .. ":nights", ARGV[2])
redis.call("EXPIRE", ARGV[1] .. ":nights", ARGV[6])
redis.call("HSET", key, "r:" .. ARGV[3], ARGV[4], "o:" .. ARGV[3], ARGV[4])
redis.call("HINCRBY", key, "m:" .. ARGV[5], ARGV[4])
local last = tonumber(redis.call("HGET", key, "last_at") or "0")
if tonumber(ARGV[3]) > last then redis.call("HSET", key, "last_at", ARGV[3]) end
for i = 7, #ARGV, 3 do
  local first, nxt = "first:" .. ARGV[i], "next:" .. ARGV[i]
  local f = redis.call("HGET", key, first)
  if not f or tonumber(ARGV[i + 1]) < tonumber(f) then
    redis.call("HSET", key, first, ARGV[i + 1])
  end
  local n = redis.call("HGET", key, nxt)
  if not n or tonumber(ARGV[i + 2]) > tonumber(n) then
    redis.call("HSET", key, nxt, ARGV[i + 2])
  end
end
redis.call("EXPIRE", key, ARGV[6])
return 1
"""


def prefix(survey: str) -> str:
    """Return the key prefix of ``survey``'s night bookkeeping."""
    return f"boom:night:{survey.lower()}"


def receipt_key(received_at: float) -> str:
    """Return the text naming a batch by its receipt time (the same in every stage)."""
    return f"{received_at:.6f}"


def record_received(
    valkey: redis.Redis,
    survey: str,
    night: str,
    received_at: float,
    count: int,
    offsets: Mapping[tuple[str, int], tuple[int, int]],
    keep_days: int,
) -> None:
    """Record a batch the bridge queued: its night and its Kafka offsets.

    Called before the batch's message is sent, so every later stage finds its night.

    Parameters
    ----------
    valkey
        Client of the broker's Valkey.
    survey
        Survey name.
    night
        The night (``YYYYMMDD``) the batch belongs to.
    received_at
        The batch's receipt time (what the messages carry as ``times['received']``).
    count
        Alerts in the batch.
    offsets
        ``(topic, partition) -> (first offset, next offset)`` of the batch.
    keep_days
        Days the bookkeeping lives.
    """
    args: list[str | int | float] = [prefix(survey), night, receipt_key(received_at), count]
    args += [int(received_at // 60), keep_days * DAY_S]
    for (topic, partition), (first, nxt) in offsets.items():
        args += [f"{topic}:{partition}", first, nxt]
    with best_effort(f"record the {survey} night {night} bookkeeping"):
        valkey.eval(_RECEIVED, 0, *args)


def record_stage_night(
    valkey: redis.Redis,
    survey: str,
    stage: str,
    handled: int,
    sent: int,
    times: Mapping[str, float],
    now: float | None = None,
    by_filter: Mapping[str, int] | None = None,
    keep_days: int = 8,
) -> str | None:
    """Record one batch a stage finished on its night; return the night (None if unknown).

    A batch whose receipt is unknown (the bridge kept no record, or it expired) is
    not counted: the report can only add up what the bridge declared.

    Parameters
    ----------
    valkey
        Client of the broker's Valkey.
    survey
        Survey name.
    stage
        The stage's name in :data:`STAGES`.
    handled
        Alerts of the batch the stage handled.
    sent
        Alerts it sent to the next stage.
    times
        The message's stage times (``received`` names the batch).
    now
        When the stage finished (default: now).
    by_filter
        Per-filter counts to add (``filtered``: new passes; ``published``: deliveries).
    keep_days
        Days the bookkeeping lives.
    """
    received = times.get("received")
    if received is None:
        return None
    now = time.time() if now is None else now
    bucket = bucket_of(max(0.0, now - received))
    args: list[str | int | float] = [prefix(survey), receipt_key(received), stage, handled, sent]
    args += [bucket, int(now // 60), f"{now:.6f}", keep_days * DAY_S]
    for name, n in (by_filter or {}).items():
        args += [f"f:{name}", n]
    night = None
    with best_effort(f"record the {survey} {stage} night bookkeeping"):
        night = valkey.eval(_RECORD, 0, *args)
    return night.decode() if isinstance(night, bytes) else night


def record_ingested(
    valkey: redis.Redis,
    survey: str,
    received_at: float,
    candids: Sequence[int],
    quarantined: int,
    keep_days: int = 8,
) -> None:
    """Keep a batch's stored candids (packed, 8 bytes each) and its quarantined count.

    This is what lets a report name the alerts of a batch that stopped later on.
    """
    pre, rk = prefix(survey), receipt_key(received_at)
    with best_effort(f"record the {survey} ingested candids"):
        night = valkey.get(f"{pre}:of:{rk}")
        if night is None:
            return
        base = f"{pre}:{night.decode()}"  # type: ignore[union-attr]
        pipe = valkey.pipeline(transaction=False)
        pipe.set(f"{base}:candids:{rk}", array.array("q", candids).tobytes(), ex=keep_days * DAY_S)
        pipe.hset(f"{base}:ingested", f"q:{rk}", quarantined)
        pipe.execute()


@dataclass
class StageNight:
    """One stage's record of a night, parsed from its hash."""

    stage: str
    #: Receipt key -> alerts handled, and alerts sent on.
    handled: dict[str, int] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    buckets: dict[int, int] = field(default_factory=dict)
    per_minute: dict[int, int] = field(default_factory=dict)
    by_filter: dict[str, int] = field(default_factory=dict)
    #: ``topic:partition`` -> (first offset, next offset) (the bridge only).
    offsets: dict[str, tuple[int, int]] = field(default_factory=dict)
    last_at: float | None = None


def _parse(stage: str, raw: Mapping[bytes, bytes]) -> StageNight:
    out = StageNight(stage)
    firsts: dict[str, int] = {}
    nexts: dict[str, int] = {}
    targets = {"r": out.handled, "o": out.sent, "q": out.quarantined, "f": out.by_filter}
    for name_b, value_b in raw.items():
        name, value = name_b.decode(), value_b.decode()
        kind, _, rest = name.partition(":")
        if name == "last_at":
            out.last_at = float(value)
        elif kind in targets:
            targets[kind][rest] = int(value)
        elif kind == "m":
            out.per_minute[int(rest)] = int(value)
        elif kind == "first":
            firsts[rest] = int(value)
        elif kind == "next":
            nexts[rest] = int(value)
        elif name.startswith("b"):
            out.buckets[int(name[1:])] = int(value)
    out.offsets = {tp: (firsts[tp], nexts.get(tp, firsts[tp])) for tp in firsts}
    return out


def read_night(valkey: redis.Redis, survey: str, night: str) -> dict[str, StageNight]:
    """Return every stage's record of ``night`` (empty records where nothing was seen)."""
    pipe = valkey.pipeline(transaction=False)
    for stage in STAGES:
        pipe.hgetall(f"{prefix(survey)}:{night}:{stage}")
    return {s: _parse(s, raw) for s, raw in zip(STAGES, pipe.execute(), strict=True)}


def batch_candids(valkey: redis.Redis, survey: str, night: str, rk: str) -> list[int] | None:
    """Return the stored candids of a night's batch, or None if ingest never recorded them."""
    raw = valkey.get(f"{prefix(survey)}:{night}:candids:{rk}")
    if raw is None:
        return None
    return list(array.array("q", raw))  # type: ignore[arg-type]


def nights_seen(valkey: redis.Redis, survey: str) -> list[str]:
    """Return the nights the bridge recorded for ``survey`` (still in Valkey), sorted."""
    return sorted(m.decode() for m in valkey.smembers(f"{prefix(survey)}:nights"))  # type: ignore[union-attr]


def night_of(valkey: redis.Redis, survey: str, received_at: float) -> str | None:
    """Return the night of a batch by its receipt time, or None if unknown."""
    raw = valkey.get(f"{prefix(survey)}:of:{receipt_key(received_at)}")
    return raw.decode() if isinstance(raw, bytes) else None
