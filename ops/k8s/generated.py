"""The command line of the scripts that write a file of ``ops/k8s`` (workers.py, config.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def write_or_check(
    out: Path, render: Callable[[], str], description: str, argv: list[str] | None
) -> int:
    """Write ``render()`` to ``out``, or with ``--check`` return 1 if ``out`` differs from it.

    ``--check`` is what the tests run: a generated file edited by hand, or not rewritten
    after its source changed, fails them.
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--check", action="store_true", help=f"exit 1 if {out.name} is stale")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        if (out.read_text() if out.exists() else "") != text:
            script = Path(sys.argv[0]).name
            print(f"{out} is stale: run .venv/bin/python ops/k8s/{script}", file=sys.stderr)
            return 1
        return 0
    out.write_text(text)
    print(f"wrote {out}")
    return 0
