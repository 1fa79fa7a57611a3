"""Failed logins per account: past a few in a window, ``POST /auth`` answers 429 for a while.

Each attempt costs an scrypt hash, and passwords must not be guessable at the
server's speed. The count is per account name and per API process (several
processes behind a proxy each count their own); it empties when the window passes
or the right password is given.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from boom_tasks.api.errors import ApiError


class TooManyAttempts(ApiError):
    """Too many failed logins for this account lately (429, with ``Retry-After``)."""

    status = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}


class LoginThrottle:
    """Counts failed logins per account name over a sliding window."""

    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures, self.window_s = max_failures, window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, name: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(name, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[name]  # keep the table to accounts under attack
        return failures

    def check(self, name: str, now: float | None = None) -> None:
        """Raise :class:`TooManyAttempts` if ``name`` failed too often within the window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._recent(name, now)
            if len(failures) >= self.max_failures:
                wait = int(failures[0] + self.window_s - now) + 1
                raise TooManyAttempts(
                    f"too many failed logins for {name!r}; try again in {wait} s", wait
                )

    def failed(self, name: str, now: float | None = None) -> None:
        """Count one failed login of ``name``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._failures.setdefault(name, deque()).append(now)
            self._recent(name, now)

    def succeeded(self, name: str) -> None:
        """Forget ``name``'s failures: its owner knows the password."""
        with self._lock:
            self._failures.pop(name, None)
