"""The poison guard: a message that keeps killing its worker is diverted, not redelivered.

A message whose processing kills the worker process (a crash in a native library,
a memory blow-up, the OOM killer) never reaches Dramatiq's retry logic: the process
is gone, and the message comes back when the dead worker's messages are requeued,
to kill the next worker. The guard counts, in Valkey, the deliveries of each
message id that did not end (no success, no failure: the process died). Once a
message has had ``worker.max_deliveries`` such deliveries, the next delivery is not
processed but diverted (:func:`~boom_tasks.workers.divert.divert`): a batch is split
in halves sent again, so the rest of the batch goes on and the culprit is narrowed
down; a single alert is quarantined with the reason.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware, SkipMessage

from boom_tasks.services.valkey import get_client, valkey_errors
from boom_tasks.settings import Settings

log = logging.getLogger(__name__)

#: Seconds a delivery counter outlives its last delivery (a message is never in
#: flight that long; the key only goes away if its worker died for good).
COUNTER_TTL_S = 7 * 24 * 3600


def counter_key(message_id: str) -> str:
    """Return the Valkey key counting the unfinished deliveries of a message."""
    return f"boom:deliveries:{message_id}"


class PoisonGuard(Middleware):
    """Count each message's unfinished deliveries; divert it past ``max_deliveries``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        """Count this delivery; divert the message instead if it has killed enough workers.

        Raises
        ------
        SkipMessage
            When the message was diverted: Dramatiq then acknowledges it unprocessed.
        """
        client = get_client(self.settings.valkey)
        key = counter_key(message.message_id)
        with valkey_errors("counting a delivery"):
            pipe = client.pipeline()
            pipe.incr(key)
            pipe.expire(key, COUNTER_TTL_S)
            deliveries = int(pipe.execute()[0])
        died = deliveries - 1
        if died < self.settings.worker.max_deliveries:
            return
        from boom_tasks.workers.divert import divert

        log.error(
            "%s: message %s killed its worker %d times: diverting it",
            message.actor_name,
            message.message_id,
            died,
        )
        divert(broker, message._message, self.settings, died)
        raise SkipMessage(f"poison message diverted after {died} worker deaths")

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """Forget the count: the worker survived this delivery, whatever its outcome."""
        self._forget(message)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        """Forget the count of a message skipped (diverted, or skipped by another middleware)."""
        self._forget(message)

    def _forget(self, message: MessageProxy) -> None:
        with valkey_errors("forgetting a delivery count"):
            get_client(self.settings.valkey).delete(counter_key(message.message_id))
