r"""``boom-produce``: replay one night of a survey into its Kafka topic.

Examples
--------
Replay the public ZTF night of 2024-06-17 (downloaded once into ``.local/archive``)::

    boom-produce ZTF --date 20240617

Replay local packets, one burst of 300 alerts every 30 s, as a telescope would::

    boom-produce ZTF --date 20181129 --from ../shared/data/ztf/fink-20181129 \
        --burst-size 300 --burst-interval 30

Replay Rubin packets (Confluent wire format, or Avro container files) to Rubin's
one topic, or to a topic of your own::

    boom-produce LSST --from ../shared/data/lsst/fink [--topic my-lsst-test]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from boom_tasks import logs
from boom_tasks.entry import EXIT_OK, exit_with, kafka_topic, night_date, seconds, whole_number
from boom_tasks.errors import BoomError
from boom_tasks.surveys.base import Survey, tonight

__all__ = ["add_night_arguments", "main", "night_date", "night_source", "run"]


def night_source(survey: Survey, date: str, source: Path | None, progress: bool = True) -> Path:
    """Return the packets to replay: ``source``, or the survey's public archive of ``date``.

    Raises
    ------
    BoomError
        If no source is given and the survey has no public archive to download.
    """
    if source is not None:
        return source
    if survey.replay.fetch_night is None:
        raise BoomError(f"{survey.name} has no public archive to download: give --from DIR")
    return survey.replay.fetch_night(date, progress=progress)


def add_night_arguments(p: argparse.ArgumentParser, default_date: str | None = None) -> None:
    """Add ``--date`` (required unless ``default_date``) and ``--from`` to a parser.

    Shared by every command that replays a night, so they read the same words.
    """
    p.add_argument(
        "--date",
        type=night_date,
        required=default_date is None,
        default=default_date,
        help="night as YYYYMMDD" + (f" (default: {default_date})" if default_date else ""),
    )
    p.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="local .tar.gz or folder of .avro packets (default: download the public night)",
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="boom-produce", description="Produce one night of alert packets to Kafka."
    )
    p.add_argument("survey", help="survey name, e.g. ZTF or LSST")
    add_night_arguments(p, default_date=tonight())
    p.add_argument(
        "--topic",
        type=kafka_topic,
        help="topic to send to (default: the survey's topic of the night)",
    )
    p.add_argument(
        "--burst-size", type=whole_number(1), help="alerts per burst (default: no pacing)"
    )
    p.add_argument(
        "--burst-interval", type=seconds, default=0.0, help="seconds from one burst to the next"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.add_argument("--log-level", default="WARNING", type=logs.level_name)
    return p


def run(args: argparse.Namespace) -> int:
    """Produce the night ``args`` describes and print where it went; return the exit status."""
    # Imported here so that --help answers without loading the Kafka client.
    from boom_tasks.bridge.intake import intake_topic
    from boom_tasks.replay.producer import produce_night
    from boom_tasks.settings import get_settings
    from boom_tasks.surveys import get_survey

    survey = get_survey(args.survey)
    settings = get_settings()
    progress = not args.no_progress
    source = night_source(survey, args.date, args.source, progress)
    # The topic the bridge of this survey reads, so a replay reaches it.
    topic = intake_topic(settings, survey, args.date, args.topic)
    produced = produce_night(
        settings,
        survey,
        args.date,
        source,
        burst_size=args.burst_size,
        burst_interval_s=args.burst_interval,
        progress=progress,
        topic=topic,
    )
    print(f"produced {produced} alerts to topic {topic}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``boom-produce``."""
    args = _parser().parse_args(argv)
    logs.configure(args.log_level)
    exit_with("boom-produce", lambda: run(args))
