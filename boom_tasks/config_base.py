"""The base of every settings section (kept apart so stage configs can import it)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

#: The repository root: config files, local services and relative paths start here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def project_path(path: str) -> Path:
    """Return ``path`` as an absolute path, relative to :data:`PROJECT_ROOT` if relative."""
    p = Path(path)
    return p if p.is_absolute() else PROJECT_ROOT / p


class Section(BaseModel):
    """A frozen settings section that rejects unknown keys."""

    # extra="forbid" is what turns a typo in a YAML key into a start-up error.
    model_config = ConfigDict(extra="forbid", frozen=True)
