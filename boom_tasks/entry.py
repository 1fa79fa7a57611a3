"""What every console script shares: exit codes, night dates, and how it ends.

A command returns one of the ``EXIT_*`` codes; :func:`exit_with` runs it and turns
what it raises into a line and a code, never a traceback: a ``BoomError`` (the
command layer's refusals included) is ``PROG: error: ...`` with :data:`EXIT_ERROR`;
Ctrl-C is :data:`EXIT_INTERRUPTED`; a reader that closed the pipe early
(``boom night report ... | head``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from boom_tasks.errors import BoomError
from boom_tasks.surveys.base import parse_date

#: The command did what was asked.
EXIT_OK = 0
#: The command ran but found a problem it reports (a check failed, a run did not finish).
EXIT_FAILED = 1
#: The command was refused or failed with a message (bad input, a service down):
#: the status argparse also gives a usage error.
EXIT_ERROR = 2
#: The configuration is invalid (EX_CONFIG of sysexits.h): supervisors should not restart.
EXIT_BAD_CONFIG = 78
#: Interrupted by Ctrl-C, as shells report a SIGINT (128 + 2).
EXIT_INTERRUPTED = 130
#: The reader of standard output went away (128 + SIGPIPE), as a shell reports ``yes | head``.
EXIT_BROKEN_PIPE = 141


def night_date(value: str) -> str:
    """Validate a night ``YYYYMMDD`` for argparse (``type=night_date``); return it unchanged.

    Raises
    ------
    argparse.ArgumentTypeError
        With a message argparse prints as it is, e.g. for ``2018-11-29`` or ``20181332``.
    """
    try:
        return parse_date(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a night as YYYYMMDD, got {value!r}") from None


#: Largest count a command-line number may give: far above any real count, and inside
#: the 32- and 64-bit integers of the C code it reaches (MongoDB's limits, Python's
#: dates and sleeps), where a larger one ended in an OverflowError traceback.
MAX_COUNT = 2**31 - 1


def whole_number(low: int = 1, high: int = MAX_COUNT) -> Callable[[str], int]:
    """Return an argparse ``type`` taking a whole number in ``[low, high]``.

    ``type=whole_number(1)`` refuses ``0``, ``-1``, ``abc`` and
    ``99999999999999999999`` with a usage error naming the range.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected a whole number in [{low}, {high}], got {text!r}"
            )
        return value

    return parse


#: argparse ``type`` of a TCP port.
port_number = whole_number(1, 65535)


def seconds(text: str) -> float:
    """Parse a finite, non-negative number of seconds (argparse ``type``).

    Raises
    ------
    argparse.ArgumentTypeError
        For ``inf``, ``nan``, a negative number or text, which would hang or fail later.
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def kafka_topic(text: str) -> str:
    """Return a Kafka topic name given on the command line (argparse ``type``).

    Raises
    ------
    argparse.ArgumentTypeError
        For an empty name, which librdkafka refuses with an unhelpful exception.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("a topic name is needed, not an empty string")
    return text


def programid_list(text: str) -> list[int]:
    """Parse ``1,2`` into programids (argparse ``type``); anything else is a usage error.

    Raises
    ------
    argparse.ArgumentTypeError
        For an empty list, a negative id or text, naming the value.
    """
    try:
        ids = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        ids = []
    if not ids or any(p < 0 for p in ids):
        raise argparse.ArgumentTypeError(f"expected programids such as 1,2, got {text!r}")
    return ids


def _quiet_broken_pipe() -> NoReturn:
    """End after the reader closed stdout: no traceback, no second error at exit.

    Python flushes stdout again at exit, which would fail on the closed pipe and print
    "Exception ignored ... BrokenPipeError"; pointing stdout at /dev/null prevents it.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(EXIT_BROKEN_PIPE)


def exit_with(prog: str, run: Callable[[], int]) -> NoReturn:
    """Run a command and exit with its status, never with a traceback for an expected end.

    Parameters
    ----------
    prog
        The program's name, heading its error line (``boom: error: ...``).
    run
        The command; returns an ``EXIT_*`` code.
    """
    try:
        status = run()
        sys.stdout.flush()  # a closed pipe shows here, while it can still be caught
    except BrokenPipeError:
        _quiet_broken_pipe()
    except BoomError as e:
        print(f"{prog}: error: {e.describe()}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(status)
