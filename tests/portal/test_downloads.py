"""Downloads: only what the service lets the user read, only from the storage root, with ranges."""
import hashlib

import pytest

from metadata.idl import metadata_thrift as T

from labcommons.demo import data_file_entity
from tests.stored import plant


@pytest.fixture
def imzml(admin, demo):
    """The first demo imzML file's node."""
    return next(f for f in admin.nodes("data_file") if f["properties"]["data_format"] == "imzML")


@pytest.fixture
def analyst(portal, sign_in, demo):
    sign_in(portal, "ana")
    return portal


def test_a_reader_downloads_the_whole_file_with_its_checksum(analyst, imzml):
    response = analyst.get(f"/files/{imzml['id']}/download")
    assert response.status_code == 200 and response.headers["Accept-Ranges"] == "bytes"
    assert imzml["properties"]["file_name"] in response.headers["Content-Disposition"]
    assert hashlib.md5(response.get_data()).hexdigest() == imzml["properties"]["md5sum"]


def test_a_range_request_gets_those_bytes_only(analyst, imzml):
    whole = analyst.get(f"/files/{imzml['id']}/download").get_data()
    part = analyst.get(f"/files/{imzml['id']}/download", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.get_data() == whole[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
    past = analyst.get(f"/files/{imzml['id']}/download", headers={"Range": f"bytes={len(whole) + 10}-"})
    assert past.status_code == 416


def test_an_unchanged_file_is_not_sent_again(analyst, imzml):
    first = analyst.get(f"/files/{imzml['id']}/download")
    again = analyst.get(f"/files/{imzml['id']}/download", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""


def test_a_user_without_a_grant_gets_the_services_refusal(portal, sign_in, admin, imzml):
    admin.set_grant("ana", imzml["project_id"], "")
    sign_in(portal, "ana")
    response = portal.get(f"/files/{imzml['id']}/download")  # an unreadable file is not there for her
    assert response.status_code == 404 and f"no node with id &#39;{imzml['id']}&#39;" in response.get_data(as_text=True)


def test_signed_out_users_are_sent_to_sign_in(portal, imzml):
    response = portal.get(f"/files/{imzml['id']}/download")
    assert response.status_code == 302 and "/signin" in response.headers["Location"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "file://{root}/../secret.key", "s3://bucket/x"])
def test_a_storage_url_outside_the_storage_root_is_never_read(analyst, admin, server, imzml, url):
    """Refused when submitted; and a node that holds one all the same (an older commons) is not read."""
    meta = {"file_name": "x.imzML", "data_format": "imzML", "file_size": 1, "md5sum": "0" * 32,
            "sha256": "0" * 64, "path": "/x"}
    entity = dict(data_file_entity(meta, imzml["links"][0]["target_submitter_id"]), submitter_id="evil",
                  storage_url=url.format(root=server.settings.storage_root))
    with pytest.raises(T.ValidationError) as refused:
        admin.submit(imzml["project_id"], [entity])
    assert [issue.field for issue in refused.value.issues] == ["storage_url"]
    plant(server, imzml["project_id"], [entity])
    evil = admin.find(imzml["project_id"], "evil")
    response = analyst.get(f"/files/{evil['id']}/download")
    assert response.status_code == 404 and "storage root" in response.get_data(as_text=True)


def test_an_unknown_id_is_not_found(analyst):
    assert analyst.get("/files/no-such-id/download").status_code == 404
