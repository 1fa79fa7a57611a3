"""What every survey provides: its name, its Kafka topic naming and its collections.

Adding a survey is adding a module beside ``ztf.py`` and registering it in
:mod:`boom_tasks.surveys`, not editing conditionals across the pipeline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Survey:
    """A survey's static description.

    Attributes
    ----------
    name
        Upper-case survey name, as on the command line (``ZTF``).
    topic_template
        ``str.format`` template of the nightly topic, with ``{date}`` as YYYYMMDD.
    collection_prefix
        Prefix of every collection name: empty in production; a benchmark uses
        scratch collections (``bench_ZTF_alerts``...) beside the real ones.
    """

    name: str
    topic_template: str
    collection_prefix: str = ""

    def _collection(self, suffix: str) -> str:
        return f"{self.collection_prefix}{self.name}_{suffix}"

    @property
    def alerts(self) -> str:
        """Collection of alerts (``_id`` = candid)."""
        return self._collection("alerts")

    @property
    def aux(self) -> str:
        """Collection of per-object history (``_id`` = objectId)."""
        return self._collection("alerts_aux")

    @property
    def cutouts(self) -> str:
        """Collection of cutout images (``_id`` = candid)."""
        return self._collection("alerts_cutouts")

    @property
    def quarantine(self) -> str:
        """Collection of packets that could not be ingested, with the reason."""
        return self._collection("alerts_quarantine")

    @property
    def filter_passes(self) -> str:
        """Collection of filter passes (``_id`` = candid:filter:version)."""
        return self._collection("filter_passes")

    @property
    def publications(self) -> str:
        """Collection of published (candid, filter, version), so a replay publishes once."""
        return self._collection("publications")

    @property
    def queue_prefix(self) -> str:
        """Prefix of this survey's Dramatiq queues and Valkey keys."""
        return self.name.lower()

    def topic(self, date: str | None = None) -> str:
        """Return the Kafka topic of one night (default: tonight, UTC).

        Parameters
        ----------
        date
            Night as ``YYYYMMDD``.
        """
        return self.topic_template.format(date=date or tonight())


def tonight() -> str:
    """Return today's UTC date as ``YYYYMMDD``: ZTF names a night's topic by its UTC date."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d")


def parse_date(value: str) -> str:
    """Validate a ``YYYYMMDD`` night and return it unchanged.

    Raises
    ------
    ValueError
        If ``value`` is not a real calendar date in that form.
    """
    dt.datetime.strptime(value, "%Y%m%d")
    if len(value) != 8:
        raise ValueError(f"expected YYYYMMDD, got {value!r}")
    return value
