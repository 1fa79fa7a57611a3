"""What every console script does with its exit: a BoomError is one line, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

from boom_tasks.errors import BoomError


def exit_with(prog: str, run: Callable[[], int]) -> NoReturn:
    """Run a command and exit with its status; print a BoomError as ``prog: error: ...``, exit 2."""
    try:
        sys.exit(run())
    except BoomError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
