"""Logging set-up shared by the command-line tools."""

from __future__ import annotations

import argparse
import logging

#: Levels a ``--log-level`` option takes.
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: One line per record, with the process id: several workers share a terminal.
LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def level_name(value: str) -> str:
    """Return ``value`` as a log level name (argparse ``type`` of every ``--log-level``).

    Raises
    ------
    argparse.ArgumentTypeError
        For a name logging does not know, so the tool says so instead of a traceback.
    """
    if value.upper() not in LEVELS:
        raise argparse.ArgumentTypeError(f"{value!r} is not one of {', '.join(LEVELS)}")
    return value.upper()


def configure(level: str = "INFO") -> None:
    """Send log records to stderr at ``level``; quiet the drivers' chatter."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)
    for noisy in ("pymongo", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
