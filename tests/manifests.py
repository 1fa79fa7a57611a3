"""Helpers of the deployment tests (test_k8s.py, test_compose.py): what a command or
an environment variable name means to boom-tasks."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from boom_tasks.settings import Settings
from boom_tasks.surveys import SURVEYS


def worker_args(command: list[str]) -> argparse.Namespace | None:
    """Parse a ``dramatiq boom_tasks.actors ...`` command with Dramatiq's own parser.

    Returns None for any other command (a bridge, the API, a server).
    """
    from dramatiq.cli import make_argument_parser

    if command[:2] != ["dramatiq", "boom_tasks.actors"]:
        return None
    return make_argument_parser().parse_args(command[1:])


def queues_of(container: dict[str, Any]) -> list[str]:
    """Return the queues a worker container or service consumes ([] for another one)."""
    args = worker_args(container.get("command") or [])
    return list(args.queues or []) if args else []


def settings_field(name: str) -> bool:
    """Tell whether ``BOOM_<SECTION>__<KEY>...`` names a field of :class:`Settings`."""
    if not name.startswith("BOOM_") or "__" not in name:
        return False
    kind: Any = Settings
    for part in name[len("BOOM_") :].split("__"):
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(part.lower())
            if field is None:
                return False
            kind = field.annotation
        elif getattr(kind, "__origin__", None) is dict and part in SURVEYS:
            kind = kind.__args__[1]
        else:
            return False
    return True


def dramatiq_variable(name: str) -> bool:
    """Tell whether Dramatiq's worker reads this environment variable."""
    import dramatiq.worker

    return f'os.getenv("{name}"' in Path(dramatiq.worker.__file__).read_text()
