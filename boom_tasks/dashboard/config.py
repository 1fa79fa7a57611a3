"""Settings of the dashboard (section ``dashboard``)."""

from __future__ import annotations

from pydantic import Field

from boom_tasks.config_base import Section


class DashboardSettings(Section):
    """The operators' dashboard and its Prometheus endpoint."""

    #: Address to bind. Loopback by default: requeue and delete change the queues, so
    #: expose it only behind a proxy, or with ``require_login``.
    host: str = "127.0.0.1"
    port: int = Field(8081, ge=1, le=65535)
    #: Ask for an admin account of the API (``boom users add --admin``) with HTTP Basic.
    require_login: bool = False
    #: Minutes over which stage rates and latency percentiles are computed.
    window_minutes: int = Field(15, ge=1, le=60)
    #: Hours of filter passes shown.
    pass_hours: int = Field(24, ge=1, le=168)
    #: Messages listed per queue (ready, and dead letters); quarantined packets listed.
    listed: int = Field(50, ge=1, le=1000)
    #: Seconds between the page's reloads (0: never).
    refresh_s: int = Field(15, ge=0)
