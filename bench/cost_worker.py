"""Workers with the cost account: ``dramatiq bench.cost_worker`` (the pipeline benchmark).

The same workers as ``dramatiq boom_tasks.actors``, with the counting of
:mod:`bench.costs` installed first and a middleware charging each message's work to
its stage. Run only by ``bench/pipeline.py --costs``.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from bench import costs

costs.instrument()

from boom_tasks.actors import broker, settings  # noqa: E402  (after the counting is installed)


class CostMiddleware(Middleware):
    """Charge the work of each message to its stage (``ztf_filter`` → ``filter``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client: Any = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Open the uncounted Valkey connection the counts are written on."""
        self.client = costs.sink(self.url)

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        """Charge what follows to the message's stage."""
        stage = message.queue_name.split(".")[0].split("_", 1)[-1]
        costs.start_message(stage)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """Add the message's counts to its stage."""
        if self.client is not None:
            costs.end_message(self.client)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        """Count a skipped message like a processed one."""
        self.after_process_message(broker, message)


broker.add_middleware(CostMiddleware(settings.valkey.url))
