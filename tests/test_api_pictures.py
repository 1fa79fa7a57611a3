"""``GET /surveys/{survey}/alerts/{candid}/picture`` against a real ``boom-api`` process.

The module's database holds real ZTF alerts (one object with forced photometry,
one alert whose difference stamp fails its CRC) and a real Rubin alert moved to
the ZTF object's position, so the two objects are aliases. Each answer is compared
byte for byte with the picture drawn here from the same documents with what that
user may see: the PNG is deterministic, so a wrong filter list or a missing alias
changes the bytes.
"""

from __future__ import annotations

import io
import math
import os
import uuid

import httpx
import pymongo
import pytest
from PIL import Image

from boom_tasks.crossmatch.stage import crossmatch_batch
from boom_tasks.filter.store import FILTERS
from boom_tasks.ingest.indexes import ensure_indexes
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.pictures import render_png
from boom_tasks.pictures.documents import read_view
from boom_tasks.surveys.lsst import LSST
from boom_tasks.surveys.ztf import ZTF
from tests.alerts import ZTF_DATA, read_packet
from tests.apiserver import boom, running_api
from tests.conftest import TEST_CONFIG
from tests.test_aliases import ZTF_PACKET, _decode, _moved, _rich_lsst_packets

pytestmark = pytest.mark.services

API_DB = "boom_test_api_pictures"
#: This module's own API port, in the range of the test configuration's ports.
PORT_OFFSET = 10
PASSWORD = "pictures " + uuid.uuid4().hex
#: A real alert whose difference stamp is a gzip stream failing its CRC.
CORRUPT = ZTF_DATA / "ampel-ztf" / "516476004815015005.avro"
ENV = {
    **os.environ,
    "BOOM_CONFIG": str(TEST_CONFIG),
    "BOOM_MONGO__DATABASE": API_DB,
    "BOOM_API__SECRET": uuid.uuid4().hex * 2,
}


def _passes(db, candid: int) -> None:
    """Two filters, one of ann's and one of the admin's, both passed by ``candid``."""
    for fid, name, owner in (("f-ann", "ann-red", "ann"), ("f-root", "root-bright", "root")):
        db[FILTERS].insert_one({"_id": fid, "name": name, "user_id": owner, "survey": "ZTF"})
        db[ZTF.filter_passes].insert_one(
            {"_id": f"{candid}:{fid}:v1", "candid": candid, "filter_id": fid, "filter_name": name}
        )


@pytest.fixture(scope="module")
def pictures_db(services):
    client = pymongo.MongoClient(services.mongo.uri, serverSelectionTimeoutMS=5000)
    client.drop_database(API_DB)
    db = client[API_DB]
    for survey in (ZTF, LSST):
        ensure_indexes(db, survey)
    ztf = ingest_packets(db, ZTF, [read_packet(ZTF_PACKET), read_packet(CORRUPT)], "pictures")
    assert not ztf.rejected
    ztf_alert = db[ZTF.alerts].find_one(
        {"_id": {"$in": list(ztf.candids)}, "objectId": {"$ne": "ZTF18aawbmjg"}}
    )
    c = ztf_alert["candidate"]
    one_arcsec = 1.0 / 3600 / math.cos(math.radians(c["dec"]))
    joint = _moved(
        _rich_lsst_packets()[0].read_bytes(), c["ra"] + one_arcsec, c["dec"], c["jd"] + 1
    )
    lsst = ingest_packets(db, LSST, [joint], "pictures")
    crossmatch_batch(db, LSST, [], lsst.candids)
    _passes(db, ztf_alert["_id"])
    lsst_candid = int(_decode(joint)["diaSource"]["diaSourceId"])
    yield db, ztf_alert["_id"], lsst_candid
    client.drop_database(API_DB)
    client.close()


@pytest.fixture(scope="module")
def api(pictures_db, services, tmp_path_factory):
    for args in (
        ("ann", "--catalogs", "ZTF_*"),  # ZTF only: no LSST alias
        ("bob", "--catalogs", "gcvs"),  # no alert collection at all
        ("root", "--admin"),
    ):
        made = boom(ENV, "users", "add", args[0], "--password", PASSWORD, *args[1:])
        assert made.returncode == 0, made.stderr
    log = tmp_path_factory.mktemp("api") / "boom-api.log"
    with running_api(ENV, services.api.port + PORT_OFFSET, log) as url:
        tokens = {}
        for user in ("ann", "bob", "root"):
            answer = httpx.post(url + "/auth", data={"username": user, "password": PASSWORD})
            tokens[user] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        yield url, tokens


def _get(url: str, survey: str, candid: int, headers=None) -> httpx.Response:
    return httpx.get(f"{url}/surveys/{survey}/alerts/{candid}/picture", headers=headers, timeout=60)


def test_a_reader_of_the_alerts_gets_the_picture_with_their_own_filters(pictures_db, api):
    db, candid, _ = pictures_db
    url, tokens = api
    # When ann, who reads ZTF collections only, asks for the ZTF alert's picture
    answer = _get(url, "ZTF", candid, tokens["ann"])
    # Then she gets a PNG, cacheable by her browser only
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["cache-control"].startswith("private, max-age=")
    assert Image.open(io.BytesIO(answer.content)).size == (900, 760)
    # And it is the picture of the stored documents listing her filter only, no LSST alias
    own = read_view(db, ZTF, candid, passes={"filter_id": {"$in": ["f-ann"]}})
    assert own.filters == ["ann-red"] and len(own.curves) == 1
    assert answer.content == render_png(own)
    # And asked again with its ETag, the answer is 304 without a body
    again = _get(url, "ZTF", candid, {**tokens["ann"], "If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_an_admin_sees_every_filter_and_the_alias(pictures_db, api):
    db, candid, lsst_candid = pictures_db
    url, tokens = api
    answer = _get(url, "ztf", candid, tokens["root"])
    assert answer.status_code == 200, answer.text
    full = read_view(db, ZTF, candid, passes={}, alias_surveys=["LSST"])
    assert full.filters == ["ann-red", "root-bright"] and [c.survey for c in full.curves] == [
        "ZTF",
        "LSST",
    ]
    assert answer.content == render_png(full)
    ann_view = read_view(db, ZTF, candid, passes={"filter_id": {"$in": ["f-ann"]}})
    assert answer.content != render_png(ann_view)
    # And the LSST alert's picture carries the ZTF object's light curve too
    lsst = _get(url, "LSST", lsst_candid, tokens["root"])
    assert lsst.status_code == 200, lsst.text
    joint = read_view(db, LSST, lsst_candid, passes={}, alias_surveys=["ZTF"])
    assert [c.survey for c in joint.curves] == ["LSST", "ZTF"]
    assert lsst.content == render_png(joint)


def test_without_permission_the_picture_does_not_exist(pictures_db, api):
    _, candid, lsst_candid = pictures_db
    url, tokens = api
    # bob may read no alert collection: answered as if the alert did not exist
    denied = _get(url, "ZTF", candid, tokens["bob"])
    assert denied.status_code == 404 and "may not read" in denied.json()["message"]
    # ann may not read LSST collections
    assert _get(url, "LSST", lsst_candid, tokens["ann"]).status_code == 404
    # no token at all
    assert _get(url, "ZTF", candid).status_code == 401
    # an alert that does not exist, a survey that does not exist
    missing = _get(url, "ZTF", 1, tokens["root"])
    assert missing.status_code == 404 and "no ZTF alert with candid 1" in missing.json()["message"]
    assert _get(url, "HST", candid, tokens["root"]).status_code == 404
    assert _get(url, "ZTF", 2**63, tokens["root"]).status_code in (400, 422)


def test_an_alert_with_a_corrupt_stamp_still_has_its_picture(pictures_db, api):
    db, _, _ = pictures_db
    url, tokens = api
    corrupt = db[ZTF.alerts].find_one({"objectId": "ZTF18aawbmjg"})
    answer = _get(url, "ZTF", corrupt["_id"], tokens["ann"])
    assert answer.status_code == 200, answer.text
    view = read_view(db, ZTF, corrupt["_id"], passes={"filter_id": {"$in": ["f-ann"]}})
    assert answer.content == render_png(view)
