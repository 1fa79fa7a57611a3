"""What every survey provides: the one interface stage code talks to.

A survey is a plugin. Its package (``boom_tasks/surveys/<name>/``) holds one
module per concern (packets, properties, indexes, permissions, output, replay,
synthetic alerts) and registers ONE :class:`Survey` that bundles them. Stage
code (bridge, ingest, crossmatch, ml, filter, output, api) reads only the
attributes below and never imports a concrete survey; adding a survey is adding
its files and one line in :mod:`boom_tasks.surveys`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo import IndexModel

from boom_tasks.alert.base import AlertDocs

#: Packet parser: raw bytes and ingestion time → documents (raises ``AlertRejected``).
PacketParser = Callable[[bytes, dt.datetime], AlertDocs]
#: Alert properties: the candidate and its object's light curve as of the alert
#: (history lists by name) → the ``properties`` document.
PropertiesFn = Callable[[dict[str, Any], Mapping[str, list[dict[str, Any]]]], dict[str, Any]]
#: Synthetic packets for benchmarks: (source of real packets, n, seed, alerts per object).
SynthFn = Callable[..., Iterator[bytes]]
#: A forced-photometry point → its (magnitude, error), or None below the survey's
#: detection threshold (pictures draw the light curve with it).
ForcedMagnitudeFn = Callable[[Mapping[str, Any]], tuple[float, float] | None]


@dataclass(frozen=True)
class Permissions:
    """A survey's permission model for filters and published light curves.

    ZTF restricts each data point to programmes (``programid``): a filter sees
    only alerts and history points of the programids it is granted. A survey
    with ``field`` None (LSST: every alert is public to its users) has no
    restriction, and filters carry no programids.

    Attributes
    ----------
    field
        Field of a candidate and of each history point naming its programme,
        or None for no restriction.
    default
        Programmes granted when none are given (ZTF: public data, programid 1).
    """

    field: str | None = None
    default: tuple[int, ...] = ()

    @property
    def restricted(self) -> bool:
        """Tell whether filters carry programme permissions at all."""
        return self.field is not None

    def alert_match(self, granted: Sequence[int]) -> dict[str, Any]:
        """Return the ``$match`` terms keeping alerts of the ``granted`` programmes."""
        if self.field is None:
            return {}
        return {f"candidate.{self.field}": {"$in": list(granted)}}

    def point_conditions(self, point: str, granted: Sequence[int]) -> list[dict[str, Any]]:
        """Return the ``$filter`` conditions keeping history points ``point`` may show."""
        if self.field is None:
            return []
        return [{"$in": [f"{point}.{self.field}", list(granted)]}]

    def visible(self, point: Mapping[str, Any], granted: Collection[int] | None) -> bool:
        """Tell whether a history point may be shown to readers granted ``granted``."""
        return self.field is None or granted is None or point.get(self.field) in granted


@dataclass(frozen=True)
class ReplaySource:
    """Where a survey's archived packets come from, for ``boom-produce`` and ``boom night``.

    Attributes
    ----------
    iter_packets
        ``(source folder or file) → (name, packet bytes)`` in the order to send,
        each packet in the survey's wire format.
    count_packets
        ``source → number of packets`` (None when unknown without reading them).
    fetch_night
        ``(date, cache_dir, progress) → local path`` of a public archive night,
        or None when the survey has no public archive to download.
    """

    iter_packets: Callable[[Path | str], Iterator[tuple[str, bytes]]]
    count_packets: Callable[[Path | str], int | None]
    fetch_night: Callable[..., Path] | None = None


@dataclass(frozen=True)
class OutputFormat:
    """How a survey's passing alerts are published.

    Attributes
    ----------
    schema_file
        Avro schema of the results topic, under ``boom_tasks/output/schema/``.
    schema_version
        The schema's ``version``: every message's ``schemavsn``.
    point
        Transform of each candidate and history point into the schema's shape
        (ZTF: ``isdiffpos`` 't'/'f'); identity for a survey that needs none.
    """

    schema_file: str
    schema_version: str
    point: Callable[[Mapping[str, Any]], dict[str, Any]] = dict


@dataclass(frozen=True)
class Survey:
    """One survey's plugin: names, packets, documents, enrichment, filters, output.

    Attributes
    ----------
    name
        Upper-case survey name, as on the command line (``ZTF``, ``LSST``).
    topic_template
        ``str.format`` template of the intake topic; ``{date}`` is the night as
        YYYYMMDD (ZTF names a topic per night, Rubin one topic for all nights).
    parse_packet
        Raw packet → :class:`~boom_tasks.alert.base.AlertDocs`.
    history_fields
        The light-curve lists of the aux document.
    point_id_fields
        Fields that tell apart two points of the same ``jd`` in each history
        list (ZTF: ``candid``): see :mod:`boom_tasks.ingest.history`.
    alert_indexes, aux_indexes
        Indexes of the alerts and aux collections.
    properties
        The ``properties`` document of an alert.
    permissions
        The filters' permission model.
    output
        The results topic's format.
    replay
        The archive packets come from.
    synth
        Generator of synthetic packets made from real ones (benchmarks).
    footprint
        Declination range (degrees) the survey observes: another survey's objects
        are associated with its objects only inside it.
    band_field
        Candidate field and value per band name (``g``...), for cutout lookups
        by band; None when the candidate stores the band name itself.
    configure
        Called once when a process starts, with its
        :class:`~boom_tasks.settings.Settings` (e.g. LSST's schema registry).
    collection_prefix
        Prefix of every collection name: empty in production; a benchmark uses
        scratch collections (``bench_ZTF_alerts``...) beside the real ones.
    forced_magnitude
        Magnitude of a forced-photometry point (``fp_hists``) for pictures; None
        when the survey's points carry ``magpsf``/``sigmapsf`` themselves (LSST).
    """

    name: str
    topic_template: str
    parse_packet: PacketParser = field(repr=False)
    history_fields: tuple[str, ...]
    point_id_fields: Mapping[str, str]
    alert_indexes: tuple[IndexModel, ...] = field(repr=False)
    aux_indexes: tuple[IndexModel, ...] = field(repr=False)
    properties: PropertiesFn = field(repr=False)
    permissions: Permissions
    output: OutputFormat
    replay: ReplaySource = field(repr=False)
    synth: SynthFn = field(repr=False)
    footprint: tuple[float, float] = (-90.0, 90.0)
    band_field: tuple[str, Mapping[str, Any]] | None = None
    configure: Callable[[Any], None] | None = field(default=None, repr=False)
    collection_prefix: str = ""
    forced_magnitude: ForcedMagnitudeFn | None = field(default=None, repr=False)

    def _collection(self, suffix: str) -> str:
        return f"{self.collection_prefix}{self.name}_{suffix}"

    @property
    def alerts(self) -> str:
        """Collection of alerts (``_id`` = the alert's id)."""
        return self._collection("alerts")

    @property
    def aux(self) -> str:
        """Collection of per-object history (``_id`` = objectId)."""
        return self._collection("alerts_aux")

    @property
    def cutouts(self) -> str:
        """Collection of cutout images (``_id`` = the alert's id)."""
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
        """Return the Kafka intake topic of one night (default: tonight, UTC).

        Parameters
        ----------
        date
            Night as ``YYYYMMDD`` (ignored by a survey with one topic for all nights).
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
