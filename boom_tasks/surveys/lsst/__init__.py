"""Rubin Observatory's LSST: one module per concern, bundled in :data:`LSST`.

- ``packets``: Confluent wire framing and the schemas of ``lsst-alert-packet``
  (or a schema registry);
- ``documents``: decoded alerts → BOOM's LSST documents;
- ``properties``: ``rock``, ``stationary`` and ``photstats`` per band;
- ``indexes``, ``output``, ``replay``, ``synth``: collections, results topic,
  folders of packets, synthetic alerts for benchmarks.
"""

from typing import Any

from boom_tasks.surveys.base import OutputFormat, Permissions, Survey
from boom_tasks.surveys.lsst import documents
from boom_tasks.surveys.lsst.indexes import ALERT_INDEXES, AUX_INDEXES
from boom_tasks.surveys.lsst.properties import properties
from boom_tasks.surveys.lsst.replay import REPLAY
from boom_tasks.surveys.lsst.synth import synth_alerts


def _configure(settings: Any) -> None:
    """Point the packet decoder at the configured schema registry, if any."""
    intake = settings.intake.get("LSST")
    documents.configure(intake.schema_registry_url if intake else None)


LSST = Survey(
    name="LSST",
    # One topic for all nights, named after the schema's major version; configurable
    # (intake.LSST.topic) as Rubin moves to the next major version.
    topic_template="lsst-alerts-v10",
    parse_packet=documents.parse_packet,
    history_fields=("prv_candidates", "prv_nondetections", "fp_hists"),
    point_id_fields={"prv_candidates": "diaSourceId", "fp_hists": "diaForcedSourceId"},
    alert_indexes=ALERT_INDEXES,
    aux_indexes=AUX_INDEXES,
    properties=properties,
    # Every LSST alert is visible to every user of the broker: no programme permissions.
    permissions=Permissions(),
    output=OutputFormat(schema_file="lsst_results_v1.1.avsc", schema_version="1.1"),
    replay=REPLAY,
    synth=synth_alerts,
    # Cerro Pachón's survey footprint reaches dec +33.5 deg at most.
    footprint=(-90.0, 33.5),
    configure=_configure,
)

__all__ = ["LSST"]
