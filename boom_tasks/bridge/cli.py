"""``boom-bridge SURVEY [--date YYYYMMDD] [--topic T] [--exit-on-eof]``.

The survey's cluster, login and topic come from ``intake.<SURVEY>`` in the
settings (see ``intake.py``); ``--topic`` overrides the topic, and ``--date``
picks the night of a survey with one topic per night (ZTF).
"""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType

from boom_tasks import logs
from boom_tasks.batches import BatchRef
from boom_tasks.bridge.consumer import Bridge
from boom_tasks.bridge.intake import intake_topic
from boom_tasks.bridge.nights import NightFollower, follows_nights
from boom_tasks.entry import EXIT_OK, exit_with, kafka_topic, night_date
from boom_tasks.surveys import get_survey

log = logging.getLogger("boom_tasks.bridge")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="boom-bridge",
        description="Consume a survey's Kafka topic and queue its alerts for ingestion.",
    )
    p.add_argument("survey", help="survey name, e.g. ZTF")
    p.add_argument(
        "--date",
        type=night_date,
        help="night as YYYYMMDD (default: tonight, UTC; ignored by a one-topic survey)",
    )
    p.add_argument(
        "--topic", type=kafka_topic, help="consume this topic instead of the configured or night's"
    )
    p.add_argument(
        "--exit-on-eof",
        action="store_true",
        help="stop at the end of the topic (without it and without --date/--topic, "
        "a survey with a topic per night follows the nights)",
    )
    p.add_argument("--log-level", default="INFO", type=logs.level_name)
    return p


def run(argv: list[str] | None = None) -> int:
    """Run the bridge; return the process exit code."""
    args = _parser().parse_args(argv)
    logs.configure(args.log_level)
    # After argument parsing, so --help works without a configuration.
    from boom_tasks.broker import setup_broker
    from boom_tasks.chain import declare_chain
    from boom_tasks.settings import get_settings

    settings = get_settings()
    survey = get_survey(args.survey)
    actor = declare_chain(setup_broker(settings), [survey], settings)[survey.name]["ingest"]

    def send(ref: BatchRef, received_at: float) -> None:
        actor.send(ref.key, ref.count, received_at)

    topic = intake_topic(settings, survey, args.date, args.topic)
    nights = None
    if follows_nights(settings, survey, args.date, args.topic, args.exit_on_eof):
        grace = settings.bridge.previous_night_grace_s
        nights = NightFollower(topic_of=survey.topic, grace_s=grace)
    bridge = Bridge(settings, survey, topic, send, args.exit_on_eof, args.date, nights)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("bridge: %s received; finishing the batch in hand", signal.Signals(signum).name)
        bridge.request_stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stats = bridge.run()
    log.info(
        "bridge: consumed %d alerts in %d batches (%d pauses)",
        stats.consumed,
        stats.batches,
        stats.pauses,
    )
    return EXIT_OK


def main() -> None:
    """Entry point of ``boom-bridge``."""
    exit_with("boom-bridge", run)
