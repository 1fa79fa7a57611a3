"""Following the nights: a survey with one topic per UTC night (ZTF) gets a new topic daily.

A long-running ``boom-bridge ZTF`` (no ``--date``, no ``--topic``) watches the
UTC date; when it changes, it subscribes to the new night's topic *beside* the
previous one, consumes what remains of the previous night, and lets it go once
every partition of it is at its end and ``bridge.previous_night_grace_s`` has
passed since the boundary (late packets still arrive within it). Nobody
restarts the bridge every day. A survey with one topic (LSST) has nothing to follow.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from boom_tasks.settings import Settings
from boom_tasks.surveys import Survey

#: The clock: returns the current time, aware, in any time zone.
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """Return the current time in UTC (the default clock)."""
    return dt.datetime.now(dt.UTC)


def night_of(when: dt.datetime) -> str:
    """Return the UTC night (``YYYYMMDD``) ``when`` belongs to, as ZTF names its topics."""
    return when.astimezone(dt.UTC).strftime("%Y%m%d")


@dataclass
class NightFollower:
    """Which night's topic to consume, and when the previous one may be let go.

    Parameters
    ----------
    topic_of
        Night (``YYYYMMDD``) → its topic (``Survey.topic``).
    grace_s
        Seconds after the boundary during which the previous night's topic is
        kept even when consumed to its end.
    clock
        The current time; tests pass their own to cross a boundary at will.
    """

    topic_of: Callable[[str], str]
    grace_s: float = 1800.0
    clock: Clock = field(default=utc_now)
    #: When the current night began, by this follower's clock (None before the first).
    boundary: dt.datetime | None = None

    def night(self) -> str:
        """Return the current UTC night."""
        return night_of(self.clock())

    def start_night(self) -> None:
        """Record that a new night began now (the grace period counts from here)."""
        self.boundary = self.clock()

    def may_drop_previous(self) -> bool:
        """Tell whether the grace period after the last boundary is over."""
        if self.boundary is None:
            return True
        return (self.clock() - self.boundary).total_seconds() >= self.grace_s


def follows_nights(
    settings: Settings, survey: Survey, date: str | None, topic: str | None, exit_on_eof: bool
) -> bool:
    """Tell whether a bridge should follow the nights.

    Only a survey that names a topic per night, with neither a night (``--date``)
    nor a topic (``--topic``, ``intake.<SURVEY>.topic``) fixed, and not asked to
    stop at the end of its topic (``--exit-on-eof``).
    """
    intake = settings.intake.get(survey.name)
    fixed = date or topic or (intake.topic if intake else None) or exit_on_eof
    return not fixed and "{date}" in survey.topic_template
