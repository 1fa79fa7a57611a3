"""The messages between stages: a list of candids and the per-stage timestamps.

Every stage after ingest receives ``(candids, times, version)``. ``times`` maps a
stage name (``received`` by the bridge, ``ingested``, ``crossmatched``, ...) to the
Unix time it finished with the batch, so the output can report each alert's
latency per stage without another database read.
"""

from __future__ import annotations

import time

from boom_tasks.errors import PermanentError

#: Version of the inter-stage messages; bump it when their arguments change meaning.
MESSAGE_VERSION = 1


def check_version(actor: str, version: int) -> None:
    """Refuse a message of another version (it goes to the dead-letter queue)."""
    if version != MESSAGE_VERSION:
        raise PermanentError(f"{actor}: unsupported message version {version}")


def stamp(times: dict[str, float], stage: str, now: float | None = None) -> dict[str, float]:
    """Return ``times`` with ``stage`` finished at ``now`` (default: the current time)."""
    return {**times, stage: time.time() if now is None else now}
