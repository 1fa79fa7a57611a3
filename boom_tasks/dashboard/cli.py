"""``boom-dashboard [--host H] [--port P]``: serve the operators' dashboard (``dashboard``)."""

from __future__ import annotations

import argparse

from boom_tasks import logs
from boom_tasks.entry import exit_with, port_number


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="boom-dashboard",
        description="Serve the dashboard: queues, dead letters, rates, latency, consumer lag, "
        "quarantine, filter passes; Prometheus metrics at /metrics.",
    )
    p.add_argument("--host", help="address to bind (default: dashboard.host)")
    p.add_argument("--port", type=port_number, help="port (default: dashboard.port)")
    p.add_argument("--log-level", default="INFO", type=logs.level_name)
    return p


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from boom_tasks.dashboard.app import create_app
    from boom_tasks.settings import get_settings

    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.dashboard.host,
        port=args.port or settings.dashboard.port,
        log_level=args.log_level.lower(),
    )
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``boom-dashboard``."""
    args = _parser().parse_args(argv)
    logs.configure(args.log_level)
    exit_with("boom-dashboard", lambda: _serve(args))
