"""``boom-api [--host H] [--port P]``: serve the HTTP API with uvicorn (settings: ``api``)."""

from __future__ import annotations

import argparse

from boom_tasks import logs
from boom_tasks.entry import EXIT_OK, exit_with, port_number


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="boom-api", description="Serve the boom-tasks HTTP API (docs at /docs)."
    )
    p.add_argument("--host", help="address to bind (default: api.host)")
    p.add_argument("--port", type=port_number, help="port (default: api.port)")
    p.add_argument("--log-level", default="INFO", type=logs.level_name)
    return p


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from boom_tasks.api.app import create_app
    from boom_tasks.settings import get_settings

    settings = get_settings()
    app = create_app(settings)
    # One process: pymongo's client is thread-safe and FastAPI runs each request in
    # its thread pool. More processes sit behind a proxy, sharing api.secret.
    uvicorn.run(
        app,
        host=args.host or settings.api.host,
        port=args.port or settings.api.port,
        log_level=args.log_level.lower(),
    )
    return EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``boom-api``."""
    args = _parser().parse_args(argv)
    logs.configure(args.log_level)
    exit_with("boom-api", lambda: _serve(args))
