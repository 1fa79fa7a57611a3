"""The Dramatiq broker on Valkey, built once per process before any actor exists.

``dramatiq.set_broker`` must run before an actor is declared, or Dramatiq
silently creates a default broker on localhost; :mod:`boom_tasks.actors` calls
:func:`setup_broker` first thing for that reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

from boom_tasks.errors import TransientError
from boom_tasks.settings import Settings, WorkerSettings

if TYPE_CHECKING:
    from boom_tasks.surveys.base import Survey

#: Namespace of Dramatiq's keys in Valkey (queues are ``dramatiq:<queue>``).
NAMESPACE = "dramatiq"

#: Milliseconds a stage's result stays in the result backend.
RESULT_TTL_MS = 24 * 3600 * 1000


def setup_broker(settings: Settings) -> RedisBroker:
    """Build the Valkey broker with the result backend and make it Dramatiq's global broker."""
    broker = RedisBroker(url=settings.valkey.url, namespace=NAMESPACE)
    broker.add_middleware(Results(backend=RedisBackend(url=settings.valkey.url)))
    dramatiq.set_broker(broker)
    return broker


def queue_name(survey: Survey, stage: str) -> str:
    """Return the Dramatiq queue (and actor name) of one survey's stage: ``ztf_ingest``."""
    return f"{survey.queue_prefix}_{stage}"


def stage_actor(
    broker: dramatiq.Broker, name: str, worker: WorkerSettings
) -> Callable[[Callable[..., Any]], dramatiq.Actor]:
    """Return the decorator declaring a stage's actor ``name`` on ``broker``, on its own queue."""
    return dramatiq.actor(broker=broker, actor_name=name, queue_name=name, **actor_options(worker))


def actor_options(worker: WorkerSettings) -> dict[str, Any]:
    """Return the retry and time-limit options every stage actor is declared with.

    Only transient failures are retried (with exponential backoff); a permanent
    one goes straight to the dead-letter queue with its exception, instead of
    being retried ``max_retries`` times for nothing.
    """

    def retry_when(retries: int, exc: BaseException) -> bool:
        return isinstance(exc, TransientError) and retries < worker.max_retries

    return {
        "retry_when": retry_when,
        "min_backoff": worker.min_backoff_ms,
        "max_backoff": worker.max_backoff_ms,
        "time_limit": worker.time_limit_ms,
        "store_results": True,
        "result_ttl": RESULT_TTL_MS,
    }
