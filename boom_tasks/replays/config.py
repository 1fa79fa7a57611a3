"""Settings of replays: how they share the workers with the live night."""

from __future__ import annotations

from pydantic import Field

from boom_tasks.config_base import Section


class ReplaySettings(Section):
    """How replays run: small slices, on their own queues, only while the live night is quiet.

    A live alert waits behind at most ``max_inflight`` replay slices already in the
    workers (each at most ``slice_size`` alerts), so the delay a replay adds to the
    live night is bounded by those two numbers; see ``docs/scheduling.md``.
    """

    #: Collection of replay runs (id, kind, parameters, state, progress).
    collection: str = "replays"
    #: Alerts per replay message (one slice of the work).
    slice_size: int = Field(200, ge=1)
    #: Slices sent and not yet finished, at most: what a live alert may wait behind.
    max_inflight: int = Field(2, ge=1)
    #: Send another slice only while the live queues of the survey hold at most this
    #: many messages (0: only when they are empty).
    live_backlog_max: int = Field(0, ge=0)
    #: Seconds between two looks at the live queues while waiting for them to drain.
    poll_s: float = Field(0.2, gt=0)
    #: Dramatiq priority of replay messages (a higher number runs after live ones a
    #: worker has already fetched; live stages have priority 0).
    priority: int = Field(100, ge=1)
    #: Seconds to wait for one slice's result before the run is marked failed.
    slice_timeout_s: float = Field(600.0, gt=0)
