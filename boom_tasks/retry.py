"""Explicit retries of transient failures, with exponential backoff.

Only :class:`~boom_tasks.errors.TransientError` is retried: a server that is
briefly unreachable. Anything else propagates at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from boom_tasks.errors import TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")


def retry_transient(
    op: Callable[[], T],
    *,
    what: str,
    backoff_s: float,
    max_backoff_s: float,
    should_stop: Callable[[], bool] = lambda: False,
) -> T:
    """Call ``op`` until it succeeds, sleeping longer after each transient failure.

    Parameters
    ----------
    op
        The operation; it signals a retryable failure with ``TransientError``.
    what
        What is being attempted, for the log.
    backoff_s, max_backoff_s
        First and largest wait between attempts (doubling in between).
    should_stop
        Checked after each failure: if it returns True the last error is raised,
        so a shutdown request is not held up by a dead server.
    """
    delay = backoff_s
    attempt = 1
    while True:
        try:
            return op()
        except TransientError as e:
            if should_stop():
                raise
            log.warning("%s failed (attempt %d): %s; retrying in %.1fs", what, attempt, e, delay)
            _sleep_unless_stopped(delay, should_stop)
            delay = min(delay * 2, max_backoff_s)
            attempt += 1


def _sleep_unless_stopped(seconds: float, should_stop: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not should_stop():
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
