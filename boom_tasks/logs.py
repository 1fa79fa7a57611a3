"""Logging set-up shared by the command-line tools."""

from __future__ import annotations

import logging

#: One line per record, with the process id: several workers share a terminal.
LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def configure(level: str = "INFO") -> None:
    """Send log records to stderr at ``level``; quiet the drivers' chatter."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)
    for noisy in ("pymongo", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
