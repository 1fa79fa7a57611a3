"""Helpers of the deployment tests (test_k8s.py, test_compose.py): what a command or
an environment variable name means to boom-tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from boom_tasks.settings import Settings
from boom_tasks.surveys import SURVEYS


def queues_of(container: dict[str, Any]) -> list[str]:
    """Return the queues a ``dramatiq boom_tasks.actors -Q ...`` command consumes."""
    cmd = container.get("command") or []
    if cmd[:2] != ["dramatiq", "boom_tasks.actors"] or "-Q" not in cmd:
        return []
    rest = cmd[cmd.index("-Q") + 1 :]
    return list(rest[: next((i for i, a in enumerate(rest) if a.startswith("-")), len(rest))])


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
