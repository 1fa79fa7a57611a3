"""Settings of the output stage."""

from __future__ import annotations

from pydantic import Field

from boom_tasks.config_base import Section


class OutputSettings(Section):
    """Where passing alerts are published."""

    #: Topic of every alert that passed at least one filter, listing them all (BOOM's name).
    results_topic: str = "{survey}_alerts_results"
    #: Also publish each alert to one topic per filter it passed (as the LSST
    #: alert_stream demo names a filtered stream after its filter).
    per_filter_topics: bool = False
    #: Template of those topics; ``{filter}`` is the filter's name made topic-safe.
    filter_topic: str = "{survey}_filter_{filter}"
    #: Seconds to wait for Kafka to acknowledge a batch before retrying it.
    flush_timeout_s: float = Field(30.0, gt=0)
