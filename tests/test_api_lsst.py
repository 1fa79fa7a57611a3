"""The HTTP API on LSST data, through boom-client (unmodified) against a real ``boom-api``.

The module's database holds every real Rubin packet and a real ZTF object that one
Rubin alert (re-encoded at its position) is associated with, so boom-client's joint
view (``get_object`` with ``survey_matches``) is exercised as a user would.
"""

from __future__ import annotations

import base64
import math
import os
import uuid

import httpx
import pymongo
import pytest

from boom_tasks.crossmatch.stage import crossmatch_batch
from boom_tasks.ingest.indexes import ensure_indexes
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.surveys.lsst import LSST
from boom_tasks.surveys.ztf import ZTF
from tests.alerts import read_packet, reference_record
from tests.apiserver import boom, running_api
from tests.conftest import DATA, TEST_CONFIG
from tests.test_aliases import ZTF_PACKET, _decode, _moved, _rich_lsst_packets

pytestmark = pytest.mark.services

API_DB = "boom_test_api_lsst"
PASSWORD = "lsst " + uuid.uuid4().hex
ENV = {
    **os.environ,
    "BOOM_CONFIG": str(TEST_CONFIG),
    "BOOM_MONGO__DATABASE": API_DB,
    "BOOM_API__SECRET": uuid.uuid4().hex * 2,
}
os.environ["BOOM_NO_VERSION_CHECK"] = "1"
os.environ.pop("BOOM_CACHE_DIR", None)


@pytest.fixture(scope="module")
def lsst_db(services):
    client = pymongo.MongoClient(services.mongo.uri, serverSelectionTimeoutMS=5000)
    client.drop_database(API_DB)
    db = client[API_DB]
    for survey in (ZTF, LSST):
        ensure_indexes(db, survey)
    ztf = reference_record(read_packet(ZTF_PACKET))
    ingest_packets(db, ZTF, [read_packet(ZTF_PACKET)], "api")
    c = ztf["candidate"]
    one_arcsec = 1.0 / 3600 / math.cos(math.radians(c["dec"]))
    source = _rich_lsst_packets()[0]
    joint = _moved(source.read_bytes(), c["ra"] + one_arcsec, c["dec"], c["jd"])
    # (the packet it was moved from is left out: both have one diaSourceId)
    real = [p.read_bytes() for p in sorted((DATA / "lsst").rglob("*.avro")) if p != source]
    result = ingest_packets(db, LSST, [*real, joint], "api")
    assert not result.rejected
    crossmatch_batch(db, LSST, [], result.candids)
    yield db, ztf["objectId"], str(_decode(joint)["diaSource"]["diaObjectId"])
    client.drop_database(API_DB)
    client.close()


@pytest.fixture(scope="module")
def api(lsst_db, services, tmp_path_factory):
    made = boom(ENV, "users", "add", "vera", "--password", PASSWORD, "--catalogs", "*")
    assert made.returncode == 0, made.stderr
    log = tmp_path_factory.mktemp("api") / "boom-api.log"
    with running_api(ENV, services.api.port, log) as url:
        from boom import BoomClient

        with BoomClient("vera", PASSWORD, url=url, max_retries=2, backoff_factor=0.1) as c:
            yield url, c


def test_get_object_joins_the_lsst_history_and_its_ztf_counterpart(lsst_db, api):
    from boom import get_object

    db, ztf_id, lsst_id = lsst_db
    _, client = api
    # When a user asks boom-client for the LSST object
    obj = get_object(client, "LSST", lsst_id)
    # Then it has the stored light curve and the ZTF object it is associated with
    aux = db[LSST.aux].find_one({"_id": lsst_id})
    assert len(obj["prv_candidates"]) == len(aux["prv_candidates"]) > 100
    assert len(obj["fp_hists"]) == len(aux["fp_hists"])
    assert obj["aliases"] == {"ZTF": [ztf_id]}
    assert obj["survey_matches"]["ztf"]["objectId"] == ztf_id
    ztf_aux = db[ZTF.aux].find_one({"_id": ztf_id})
    assert len(obj["survey_matches"]["ztf"]["prv_candidates"]) == len(ztf_aux["prv_candidates"])


def test_get_source_builds_lsst_photometry(lsst_db, api):
    from boom import get_source

    db, ztf_id, lsst_id = lsst_db
    _, client = api
    source = get_source(client, "LSST", lsst_id, enrich_crossmatches=False)
    # Then its photometry holds the detections boom-client keeps, and both ids
    assert source.lsstid == lsst_id and source.ztfid == ztf_id
    assert len(source.photometry) > 0
    newest = db[LSST.alerts].find_one({"objectId": lsst_id}, sort=[("candidate.jd", -1)])
    assert source.jd == newest["candidate"]["jd"]


def test_cone_search_and_cutouts_of_lsst_alerts(lsst_db, api):
    db, _, _ = lsst_db
    url, client = api
    # Given a real Rubin alert
    alert = db[LSST.alerts].find_one({"objectId": {"$regex": "^[0-9]"}}, sort=[("_id", 1)])
    ra, dec = alert["candidate"]["ra"], alert["candidate"]["dec"]
    # When a user cone-searches its position, Then it is found at distance ~0
    found = client.cone_search("LSST_alerts", [(ra, dec)], 1.0, "arcsec")
    ids = [d["_id"] for hits in found.values() for d in hits]
    assert alert["_id"] in ids
    # And its cutouts come back as the stored FITS bytes, by candid or by band
    token = httpx.post(url + "/auth", data={"username": "vera", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    answer = httpx.get(
        f"{url}/surveys/LSST/cutouts",
        params={"objectId": alert["objectId"], "band": alert["candidate"]["band"]},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    stored = db[LSST.cutouts].find_one({"_id": data["candid"]})
    assert base64.b64decode(data["cutoutDifference"]) == stored["cutoutDifference"]
    assert stored["cutoutDifference"].startswith(b"SIMPLE")
