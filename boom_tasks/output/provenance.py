"""Provenance of a published message: which run, code, filters, models and catalogs made it.

Step 1: the stack (:func:`stack_provenance`): the boom-tasks version, each model of
        the survey with a version taken from its file(s) (name and content hash),
        each catalog it is cross-matched with and when its load finished
        (``catalogs_meta``). Read once and kept :data:`STACK_TTL_S` seconds, so a
        catalog reloaded during the night shows in later messages.
Step 2: per message (:func:`message_provenance`): the run (``live`` or a replay
        id) and the filters passed, with their versions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from boom_tasks.config_base import project_path
from boom_tasks.settings import Settings
from boom_tasks.surveys.base import Survey

#: The run of messages published by the live night (a replay's id otherwise).
LIVE = "live"

#: Seconds a process keeps the stack's provenance before reading it again.
STACK_TTL_S = 60.0

#: Bytes read at a time when hashing a model file.
_HASH_CHUNK = 1 << 20

_stacks: dict[str, tuple[float, dict[str, Any]]] = {}


@cache
def boom_tasks_version() -> str:
    """Return the installed version of boom-tasks ("unknown" when not installed)."""
    try:
        return metadata.version("boom-tasks")
    except metadata.PackageNotFoundError:
        return "unknown"


@cache
def model_version(models_dir: Path, files: tuple[str, ...]) -> str:
    """Return a model's version: its file(s), ``#``, and 12 hex digits of their SHA-256.

    File names carry the version their authors gave (``acai_h.d1_dnn_20201130``);
    the hash tells apart two files that kept a name. ``#missing`` when a file
    cannot be read (the ML stage then reports it too).
    """
    digest = hashlib.sha256()
    try:
        for name in files:
            path = Path(name) if Path(name).is_absolute() else models_dir / name
            with path.open("rb") as f:
                while chunk := f.read(_HASH_CHUNK):
                    digest.update(chunk)
    except OSError:
        return f"{','.join(files)}#missing"
    return f"{','.join(files)}#{digest.hexdigest()[:12]}"


def _model_files(file: str | Mapping[Any, str]) -> tuple[str, ...]:
    return (file,) if isinstance(file, str) else tuple(file[band] for band in sorted(file))


def _iso(value: Any) -> str | None:
    if not isinstance(value, dt.datetime):
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat(timespec="seconds")


def read_stack(settings: Settings, survey: Survey) -> dict[str, Any]:
    """Return the version, models and catalogs behind ``survey``'s messages, read now.

    Raises
    ------
    ServiceUnavailable, PermanentError
        If the catalogs' metadata cannot be read.
    """
    from boom_tasks.catalogs.meta import META_COLLECTION
    from boom_tasks.services.mongo import find_in, get_catalog_db, mongo_errors

    models_dir = project_path(settings.ml.models_dir)
    models = [
        {"name": m.name, "version": model_version(models_dir, _model_files(m.file))}
        for m in settings.ml.models.get(survey.name, [])
    ]
    names = [c.catalog for c in settings.crossmatch.get(survey.name, [])]
    with mongo_errors("reading the catalogs' load dates"):
        metas = find_in(get_catalog_db(settings.mongo)[META_COLLECTION], "_id", names)
    loaded = {m["_id"]: m for m in metas if m.get("status") == "complete"}
    catalogs = [
        {"name": n, "loaded_at": _iso((loaded.get(n) or {}).get("updated_at"))} for n in names
    ]
    return {"boom_tasks_version": boom_tasks_version(), "models": models, "catalogs": catalogs}


def stack_provenance(settings: Settings, survey: Survey) -> dict[str, Any]:
    """Return :func:`read_stack`, read at most once every :data:`STACK_TTL_S` seconds."""
    now = time.monotonic()
    kept = _stacks.get(survey.name)
    if kept is None or now - kept[0] > STACK_TTL_S:
        kept = _stacks[survey.name] = (now, read_stack(settings, survey))
    return kept[1]


def message_provenance(
    stack: Mapping[str, Any], passes: Sequence[Mapping[str, Any]], run: str = LIVE
) -> dict[str, Any]:
    """Return the ``provenance`` of one message.

    Parameters
    ----------
    stack
        What :func:`stack_provenance` returned.
    passes
        The filters the alert passed (pass documents: ``filter_id`` and ``fid``,
        or ``version``).
    run
        :data:`LIVE`, or the replay's id.
    """
    filters = [
        {
            "filter_id": str(p.get("filter_id")),
            "version": None
            if p.get("version", p.get("fid")) is None
            else str(p.get("version", p.get("fid"))),
        }
        for p in passes
    ]
    return {**stack, "run": run, "replay": run != LIVE, "filters": filters}
