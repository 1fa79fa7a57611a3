"""Start replays: the typed commands behind ``boom replays`` and the scheduler's jobs.

Each command records a run, then runs it in this process (which only plans, sends
slices and follows results; the workers do the work) and returns the run's
final document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from boom_tasks.errors import BoomError, ConfigError
from boom_tasks.output.publish import topic_name
from boom_tasks.replays import store
from boom_tasks.replays.runner import execute
from boom_tasks.replays.work import filter_version
from boom_tasks.services.mongo import get_db
from boom_tasks.settings import Settings
from boom_tasks.surveys import get_survey


class ReplayFailed(BoomError):
    """A replay run ended ``failed`` (raised for the scheduler, which records the outcome)."""


def _run(
    settings: Settings, kind: str, survey_name: str, params: dict[str, Any], check: bool
) -> dict:
    from boom_tasks.broker import setup_broker
    from boom_tasks.replays.actor import declare

    survey = get_survey(survey_name)
    actor = declare(setup_broker(settings), survey, settings)
    run_id = store.create_run(get_db(settings.mongo), settings, kind, survey.name, params)
    run = execute(settings, survey, run_id, actor)
    if check and run["state"] != "done":
        raise ReplayFailed(f"replay {run_id} failed: {run.get('error')}")
    return run


def filter_backfill(
    settings: Settings,
    filter_id: str,
    nights: int = 1,
    fid: str | None = None,
    night: str | None = None,
    check: bool = True,
) -> dict[str, Any]:
    """Run a filter version over the stored alerts of the last ``nights`` nights.

    Its passes are recorded and published to the filter's own topic
    (``output.filter_topic``), each message marked with the run's id.

    Parameters
    ----------
    settings
        Process settings.
    filter_id
        The filter.
    nights
        How many nights, ending with ``night``.
    fid
        The version to run (default: the filter's active version).
    night
        The last night, ``YYYYMMDD`` (default: the newest stored one).
    check
        Raise :class:`ReplayFailed` if the run fails (as a scheduled job wants);
        False returns the failed run's document.

    Raises
    ------
    FilterNotFound
        If there is no such filter or version.
    ReplayFailed
        If the run failed and ``check``.
    """
    db = get_db(settings.mongo)
    f = filter_version(db, filter_id, fid)
    survey = get_filter_survey(db, filter_id)
    topic = topic_name(settings.output.filter_topic, survey, f.name)
    params = {"filter_id": f.id, "fid": f.fid, "nights": nights, "night": night, "topic": topic}
    return _run(settings, "filter-backfill", survey, params, check)


def republish(
    settings: Settings,
    filter_id: str,
    topic: str,
    night: str = "latest",
    fid: str | None = None,
    check: bool = True,
) -> dict[str, Any]:
    """Publish a night's passes of one filter to ``topic``, each message marked as the replay.

    Raises
    ------
    FilterNotFound
        If there is no such filter.
    ReplayFailed
        If the run failed and ``check`` (see :func:`filter_backfill`).
    """
    db = get_db(settings.mongo)
    survey = get_filter_survey(db, filter_id)
    params = {"filter_id": filter_id, "fid": fid, "nights": 1, "night": night, "topic": topic}
    return _run(settings, "republish", survey, params, check)


def get_filter_survey(db: Any, filter_id: str) -> str:
    """Return the survey a filter runs on."""
    from boom_tasks.filter.store import get_filter

    return str(get_filter(db, filter_id)["survey"])


def reprocess(
    settings: Settings,
    survey: str,
    night: str = "latest",
    nights: int = 1,
    check: bool = True,
) -> dict[str, Any]:
    """Crossmatch, enrich and filter the stored alerts of ``nights`` nights again.

    For a catalog loaded or a model changed since: every object is matched again,
    every alert scored again, the active filters run, and passes not published
    yet go to the results topic marked as the replay.

    Raises
    ------
    ReplayFailed
        If the run failed and ``check`` (see :func:`filter_backfill`).
    """
    name = get_survey(survey).name
    return _run(settings, "reprocess", name, {"night": night, "nights": nights}, check)


def reingest(
    settings: Settings,
    survey: str,
    night: str,
    source: str | None = None,
    topic_in: str | None = None,
    check: bool = True,
) -> dict[str, Any]:
    """Take a night's packets through the whole chain again, from an archive or a topic.

    Parameters
    ----------
    settings
        Process settings.
    survey
        The survey.
    night
        The night, ``YYYYMMDD`` (the public archive's night when no other source).
    source
        A folder or tarball of the night's packets.
    topic_in
        A Kafka topic to read from its start to its end instead.
    check
        See :func:`filter_backfill`.

    Raises
    ------
    ReplayFailed
        If the run failed and ``check``.
    """
    if source is not None and not Path(source).exists():
        raise ConfigError(f"--from {source}: no such file or folder")
    params = {"night": night, "source": source, "topic_in": topic_in}
    return _run(settings, "reingest", get_survey(survey).name, params, check)
