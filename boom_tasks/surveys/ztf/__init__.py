"""The Zwicky Transient Facility: one module per concern, bundled in :data:`ZTF`.

- ``packets``: Avro container packets → documents;
- ``properties``: BOOM's alert properties from ZTF's candidate and light curve;
- ``output``, ``replay``, ``synth``: results topic,
  public archive, synthetic alerts for benchmarks.
"""

from boom_tasks.surveys.base import Permissions, Survey
from boom_tasks.surveys.indexes import ALERT_INDEXES, AUX_INDEXES
from boom_tasks.surveys.ztf.output import OUTPUT
from boom_tasks.surveys.ztf.packets import parse_packet
from boom_tasks.surveys.ztf.properties import forced_magnitude, properties
from boom_tasks.surveys.ztf.replay import REPLAY
from boom_tasks.surveys.ztf.synth import synth_alerts

ZTF = Survey(
    name="ZTF",
    # ZTF's public stream names each night's topic after its UTC date and program.
    topic_template="ztf_{date}_programid1",
    parse_packet=parse_packet,
    history_fields=("prv_candidates", "prv_nondetections", "fp_hists"),
    # Two detections of one object can share an exposure (jd): candid tells them apart.
    point_id_fields={"prv_candidates": "candid", "prv_nondetections": "candid"},
    alert_indexes=ALERT_INDEXES,
    aux_indexes=AUX_INDEXES,
    properties=properties,
    # Each point belongs to a programme; public data is programid 1.
    permissions=Permissions(field="programid", default=(1,)),
    output=OUTPUT,
    replay=REPLAY,
    synth=synth_alerts,
    # Palomar sees down to dec -30 deg.
    footprint=(-30.0, 90.0),
    band_field=("candidate.fid", {"g": 1, "r": 2, "i": 3}),
    # fp_hists carry fluxes in DN and the zero point, not magnitudes.
    forced_magnitude=forced_magnitude,
)

__all__ = ["ZTF"]
