"""The Dramatiq broker on Valkey, built once per process before any actor exists.

``dramatiq.set_broker`` must run before an actor is declared, or Dramatiq
silently creates a default broker on localhost; :mod:`boom_tasks.actors` calls
:func:`setup_broker` first thing for that reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

from boom_tasks.errors import TransientError
from boom_tasks.retry import retry_transient
from boom_tasks.services.valkey import results_client, valkey_errors
from boom_tasks.settings import Settings, WorkerSettings

if TYPE_CHECKING:
    from boom_tasks.surveys.base import Survey

#: Namespace of Dramatiq's keys in Valkey (queues are ``dramatiq:<queue>``).
NAMESPACE = "dramatiq"

#: Milliseconds a stage's result stays in the result backend.
RESULT_TTL_MS = 24 * 3600 * 1000

#: Environment variable naming this process's broker id. ``boom-workers`` gives each
#: worker process it starts an id of its own, so that when the process dies it knows
#: whose unacknowledged messages to requeue (Dramatiq's default is a random uuid).
WORKER_ID_ENV = "BOOM_WORKER_ID"

#: First and largest wait (seconds) between two attempts to send a message while
#: Valkey is unreachable: a restart with AOF takes a few seconds.
ENQUEUE_BACKOFF_S = 0.2
ENQUEUE_MAX_BACKOFF_S = 5.0


class ValkeyBroker(RedisBroker):
    """Dramatiq's Redis broker whose sends ride out a short Valkey outage.

    ``enqueue`` is how a stage hands its batch on, how Dramatiq's Retries middleware
    schedules a retry and how the bridge queues a batch. Dramatiq's own raises
    redis' ``ConnectionError`` while Valkey restarts: a stage then dead-lettered its
    batch (not a transient error), and a retry scheduled during the outage was lost
    (the middleware's error is only logged, then the failed message acknowledged).
    Here a send is retried with backoff for up to ``enqueue_timeout_s``, then fails
    with :class:`~boom_tasks.errors.ServiceUnavailable`, a transient error.
    A send retried after a lost reply may be doubled: every stage is idempotent.
    """

    def __init__(self, *, enqueue_timeout_s: float, **options: Any) -> None:
        super().__init__(**options)
        self.enqueue_timeout_s = enqueue_timeout_s

    def enqueue(self, message: dramatiq.Message, *, delay: int | None = None) -> dramatiq.Message:
        """Enqueue ``message`` (see :class:`RedisBroker`), retrying while Valkey is away."""
        deadline = time.monotonic() + self.enqueue_timeout_s

        def send() -> dramatiq.Message:
            with valkey_errors(f"sending a message to {message.queue_name}"):
                return super(ValkeyBroker, self).enqueue(message, delay=delay)

        return retry_transient(
            send,
            what=f"sending a message to {message.queue_name}",
            backoff_s=ENQUEUE_BACKOFF_S,
            max_backoff_s=ENQUEUE_MAX_BACKOFF_S,
            should_stop=lambda: time.monotonic() > deadline,
        )


def setup_broker(settings: Settings) -> RedisBroker:
    """Build the Valkey broker with the result backend and make it Dramatiq's global broker.

    The broker's heartbeat timeout and maintenance chance come from
    ``settings.worker`` (see :class:`~boom_tasks.settings.WorkerSettings`): together
    they bound how long a dead worker's messages wait before Dramatiq requeues them.
    The poison guard counts each message's deliveries, so one that keeps killing its
    worker is split or quarantined instead of being redelivered forever.
    """
    from boom_tasks.workers.poison import PoisonGuard

    broker = ValkeyBroker(
        enqueue_timeout_s=settings.worker.enqueue_timeout_s,
        url=settings.valkey.url,
        namespace=NAMESPACE,
        heartbeat_timeout=settings.worker.heartbeat_timeout_ms,
        maintenance_chance=settings.worker.maintenance_chance,
    )
    broker.broker_id = os.environ.get(WORKER_ID_ENV) or broker.broker_id
    broker.add_middleware(Results(backend=RedisBackend(client=results_client(settings.valkey))))
    broker.add_middleware(PoisonGuard(settings))
    # The output stage's publication claims are keyed by the current message's id.
    broker.add_middleware(CurrentMessage())
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
