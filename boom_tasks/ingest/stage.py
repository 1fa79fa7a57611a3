"""The ingest stage: one batch of raw packets → documents in MongoDB.

Step 1: parse every packet with the survey's parser; a packet that fails goes
        to quarantine with its reason and the rest of the batch proceeds.
Step 2: insert alerts and cutouts (duplicates of a replay are reported as existing).
Step 3: merge each object's history into its aux document.
The returned candids are what the next stage (crossmatch) receives.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from pymongo.database import Database

from boom_tasks.alert.base import AlertDocs
from boom_tasks.errors import AlertRejected
from boom_tasks.ingest.quarantine import Rejected, quarantine
from boom_tasks.ingest.writer import update_aux
from boom_tasks.services.mongo import insert_new
from boom_tasks.sky.healpix import DEFAULT_ORDER, HPX_FIELD, pixel_ids
from boom_tasks.surveys import Survey

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    """What happened to one batch.

    Attributes
    ----------
    added
        Candids stored by this call.
    existing
        Candids that were already stored (a replay): not an error.
    rejected
        Packets quarantined, with their reasons.
    """

    added: list[int] = field(default_factory=list)
    existing: list[int] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def candids(self) -> list[int]:
        """Every candid of the batch now stored, for the next stage."""
        return self.added + self.existing


def parse_batch(
    survey: Survey, packets: list[bytes], now: dt.datetime
) -> tuple[list[AlertDocs], list[Rejected]]:
    """Parse packets; return the alerts (one per candid, first wins) and the rejects."""
    alerts: dict[int, AlertDocs] = {}
    rejected: list[Rejected] = []
    for packet in packets:
        try:
            docs = survey.parse_packet(packet, now)
        except AlertRejected as e:
            rejected.append(Rejected(packet, e.reason))
            continue
        alerts.setdefault(docs.candid, docs)
    return list(alerts.values()), rejected


def add_pixels(alerts: list[AlertDocs]) -> None:
    """Store each alert's nested HEALPix pixel, computed for the whole batch at once.

    The same field and order as the catalogs' (:mod:`boom_tasks.sky`), so cone
    searches over alerts use the same indexed ``$in`` path as crossmatches.
    """
    if not alerts:
        return
    pixels = pixel_ids([a.ra for a in alerts], [a.dec for a in alerts], DEFAULT_ORDER)
    for alert, pixel in zip(alerts, pixels, strict=True):
        alert.alert[HPX_FIELD] = int(pixel)


def ingest_packets(
    db: Database,
    survey: Survey,
    packets: list[bytes],
    batch_key: str,
    now: dt.datetime | None = None,
) -> IngestResult:
    """Store one batch of raw packets; see the module docstring for the steps.

    Raises
    ------
    ServiceUnavailable
        MongoDB could not be reached (the actor retries; every write is idempotent).
    PermanentError
        MongoDB refused a write for another reason.
    """
    now = now or dt.datetime.now(dt.UTC)
    alerts, rejected = parse_batch(survey, packets, now)
    add_pixels(alerts)
    for r in rejected:
        log.warning("%s packet quarantined (batch %s): %s", survey.name, batch_key, r.reason)
    quarantine(db, survey, rejected, batch_key, now)
    docs = [a.alert for a in alerts]
    inserted = insert_new(db[survey.alerts], docs, f"inserting {survey.name} alerts")
    added = {docs[i]["_id"] for i in inserted}
    cutouts = [{"_id": a.candid, **a.cutouts} for a in alerts if a.cutouts]
    insert_new(db[survey.cutouts], cutouts, f"inserting {survey.name} cutouts")
    update_aux(db, survey, alerts, now)
    result = IngestResult(rejected=rejected)
    for a in alerts:
        (result.added if a.candid in added else result.existing).append(a.candid)
    return result
