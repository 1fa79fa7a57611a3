"""What each stage costs a worker: CPU seconds, messages and database commands, in Valkey.

A Dramatiq middleware (:class:`StageCosts`) reads the worker thread's CPU clock
(``time.thread_time``: Dramatiq runs one message per thread, so other threads'
work is not charged) before and after each message, and, when
``mongo.command_monitoring`` is on, the thread's tally of MongoDB commands and
their driver-measured time (:meth:`~boom_tasks.services.commands.CommandCounter.thread_tally`).
The differences are added to one running-total hash per survey and stage, in one
pipelined round trip per message, which ``/metrics`` exposes as Prometheus counters
(:mod:`boom_tasks.dashboard.metrics`).

The stage is the actor's queue suffix (``ztf_ml`` → ``ml``; ``ztf_replay`` →
``replay``). Recording never fails a message: a Valkey error is logged and skipped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import dramatiq
import redis
from dramatiq.middleware import Middleware

from boom_tasks.monitor.stats import PREFIX
from boom_tasks.services.commands import COMMANDS
from boom_tasks.services.valkey import best_effort, get_client
from boom_tasks.settings import Settings
from boom_tasks.surveys.base import Survey

#: Fields of a stage's cost hash: (field, Prometheus metric suffix, help text).
FIELDS = (
    ("messages", "messages", "Messages a stage's workers have finished (or failed)"),
    ("cpu_s", "cpu_seconds", "Worker thread CPU seconds spent on a stage's messages"),
    ("db_commands", "db_commands", "MongoDB commands sent by a stage (command monitoring on)"),
    ("db_s", "db_seconds", "Seconds MongoDB commands of a stage took, round trip included"),
)


def cost_key(survey: str, stage: str) -> str:
    """Return the Valkey hash of one stage's running cost totals."""
    return f"{PREFIX}:{survey}:{stage}:cost"


def record_cost(
    valkey: redis.Redis,
    survey: str,
    stage: str,
    cpu_s: float,
    db: tuple[float, float] | None = None,
) -> None:
    """Add one message's CPU seconds (and ``db``: commands, seconds) to the stage's totals."""
    with best_effort(f"record {survey} {stage} costs"):
        pipe = valkey.pipeline(transaction=False)
        key = cost_key(survey, stage)
        pipe.hincrby(key, "messages", 1)
        pipe.hincrbyfloat(key, "cpu_s", cpu_s)
        if db is not None:
            pipe.hincrby(key, "db_commands", int(db[0]))
            pipe.hincrbyfloat(key, "db_s", db[1])
        pipe.execute()


def cost_totals(
    valkey: redis.Redis, survey: str, stages: Iterable[str]
) -> dict[str, dict[str, float]]:
    """Return ``{stage: {field: total}}`` of the stages that have recorded anything."""
    stages = list(stages)
    pipe = valkey.pipeline(transaction=False)
    for stage in stages:
        pipe.hgetall(cost_key(survey, stage))
    out = {}
    for stage, raw in zip(stages, pipe.execute(), strict=True):
        if raw:
            out[stage] = {k.decode(): float(v) for k, v in raw.items()}
    return out


def split_actor(actor_name: str, prefixes: Mapping[str, str]) -> tuple[str, str] | None:
    """Return ``(survey, stage)`` of a ``<prefix>_<stage>`` actor, or None if not a survey's."""
    prefix, _, stage = actor_name.partition("_")
    survey = prefixes.get(prefix)
    return None if survey is None or not stage else (survey, stage)


class StageCosts(Middleware):
    """Charge each message's thread CPU time (and database commands) to its survey and stage."""

    def __init__(self, settings: Settings, surveys: Iterable[Survey]) -> None:
        self.settings = settings
        self.monitored = settings.mongo.command_monitoring
        self.prefixes = {s.queue_prefix: s.name for s in surveys}
        self._local = threading.local()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Read the thread's clocks as the message starts."""
        db = COMMANDS.thread_tally() if self.monitored else None
        self._local.start = (time.thread_time(), db)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """Add what the message cost, succeeded or failed, to its stage's totals."""
        start = getattr(self._local, "start", None)
        self._local.start = None
        where = split_actor(message.actor_name, self.prefixes)
        if start is None or where is None:
            return
        cpu_s = time.thread_time() - start[0]
        db = None
        if start[1] is not None:
            commands, seconds = COMMANDS.thread_tally()
            db = (commands - start[1][0], seconds - start[1][1])
        record_cost(get_client(self.settings.valkey), *where, cpu_s, db)

    #: A skipped message (expired, or refused by a middleware) cost nothing worth counting.
    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Forget the clocks of a skipped message."""
        self._local.start = None
