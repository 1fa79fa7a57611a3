"""Jobs the scheduler tests run: each records its call in MongoDB, where the test reads it."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

#: Collection where :func:`mark` records each call.
MARKS = "test_schedule_marks"


def mark(settings: Any, label: str) -> None:
    """Record one call of the job ``label``, with the process that ran it."""
    from boom_tasks.services.mongo import get_db

    get_db(settings.mongo)[MARKS].insert_one(
        {"label": label, "pid": os.getpid(), "at": dt.datetime.now(dt.UTC)}
    )


def fail(settings: Any, label: str) -> None:
    """A job that always fails, so its run is recorded as failed."""
    raise RuntimeError(f"{label} fails on purpose")
