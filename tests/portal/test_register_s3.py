"""Registration and downloads with an S3-compatible storage root (LABCOMMONS_STORAGE_URL=s3://...),
against a real S3 server on loopback (moto's ThreadedMotoServer), through fsspec's s3fs."""
from __future__ import annotations

import dataclasses
import hashlib
import urllib.request

import pytest

from metadata.idl import metadata_thrift as T
from portal import create_app
from tests.portal.registering import IBD, register_pair, values
from tests.stored import plant

BUCKET, PREFIX = "lab-objects", "commons"


@pytest.fixture
def s3_endpoint(monkeypatch):
    """A real S3 API on a free loopback port, with a bucket; credentials only in the environment."""
    from moto.server import ThreadedMotoServer

    for name, value in (("AWS_ACCESS_KEY_ID", "test-key"), ("AWS_SECRET_ACCESS_KEY", "test-secret"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket_fs(endpoint).mkdir(BUCKET)
    yield endpoint
    # moto keeps its buckets per process, not per server: empty them for the next test
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    server.stop()


def bucket_fs(endpoint: str):
    import fsspec

    return fsspec.filesystem("s3", endpoint_url=endpoint, use_listings_cache=False, skip_instance_cache=True)


@pytest.fixture
def settings(settings):
    """The service's settings name the bucket too: it checks each storage_url against the project's prefix."""
    return dataclasses.replace(settings, storage_url=f"s3://{BUCKET}/{PREFIX}")


@pytest.fixture
def s3_portal(server, admin, demo, s3_endpoint, sign_in):
    """The portal over the demo commons, its storage root an S3 prefix, signed in as tom."""
    settings = dataclasses.replace(server.settings, port=server.bound_port(), s3_endpoint_url=s3_endpoint)
    client = create_app({"SETTINGS": settings, "TESTING": True}).test_client()
    assert sign_in(client, "tom").status_code == 302
    return client


def objects(endpoint: str) -> list[str]:
    return sorted(bucket_fs(endpoint).find(f"{BUCKET}/{PREFIX}"))


def test_a_registration_stores_the_files_in_the_bucket(s3_portal, admin, place, s3_endpoint):
    response = register_pair(s3_portal, place, values(place))
    assert response.status_code == 200, response.get_data(as_text=True)
    base = f"{BUCKET}/{PREFIX}/{place['project']}/new-run-1"
    assert objects(s3_endpoint) == [f"{base}/run.ibd", f"{base}/run.imzML"]  # and nothing left in staging
    ibd = next(f for f in admin.nodes("data_file", place["project"]) if f["submitter_id"] == "new-run-1.ibd")
    assert ibd["properties"]["storage_url"] == f"s3://{base}/run.ibd"
    assert ibd["properties"]["md5sum"] == hashlib.md5(IBD).hexdigest()
    assert bucket_fs(s3_endpoint).cat(f"{base}/run.ibd") == IBD


def test_a_download_streams_from_the_bucket_with_ranges(s3_portal, admin, place):
    register_pair(s3_portal, place, values(place))
    ibd = next(f for f in admin.nodes("data_file", place["project"]) if f["submitter_id"] == "new-run-1.ibd")
    whole = s3_portal.get(f"/files/{ibd['id']}/download")
    assert whole.status_code == 200 and whole.data == IBD
    part = s3_portal.get(f"/files/{ibd['id']}/download", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.data == IBD[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(IBD)}"
    again = s3_portal.get(f"/files/{ibd['id']}/download", headers={"If-None-Match": f'"{hashlib.md5(IBD).hexdigest()}"'})
    assert again.status_code == 304


def test_a_refused_registration_leaves_nothing_in_the_bucket(s3_portal, admin, place, s3_endpoint):
    response = register_pair(s3_portal, place, values(place, ionisation="LASER"))
    assert response.status_code == 400 and "ionisation" in response.get_json()["fields"]
    assert objects(s3_endpoint) == []
    with pytest.raises(T.NotFound):
        admin.find(place["project"], "new-run-1")


@pytest.mark.parametrize("key", ["elsewhere/secret.ibd", f"{PREFIX}/other-project/secret.ibd"])
def test_an_object_outside_the_projects_prefix_is_never_read(s3_portal, admin, server, place, s3_endpoint, key):
    """Refused by the service, naming storage_url; a node holding it all the same is not read."""
    bucket_fs(s3_endpoint).pipe(f"{BUCKET}/{key}", b"not yours")
    batch = [{"type": "measurement", "submitter_id": "m-outside", "instrument": "x", "ionisation": "MALDI",
              "polarity": "positive", "experiments": {"submitter_id": place["experiment"]},
              "samples": {"submitter_id": place["sample"]}},
             {"type": "data_file", "submitter_id": "outside.ibd", "file_name": "secret.ibd", "data_format": "ibd",
              "file_size": 9, "md5sum": "0" * 32, "storage_url": f"s3://{BUCKET}/{key}",
              "measurements": {"submitter_id": "m-outside"}}]
    with pytest.raises(T.ValidationError) as refused:
        admin.submit(place["project"], batch)
    [issue] = refused.value.issues
    assert (issue.field, issue.index) == ("storage_url", 1)
    assert f"s3://{BUCKET}/{PREFIX}/{place['project']}/..." in issue.message
    plant(server, place["project"], batch)
    node = admin.find(place["project"], "outside.ibd")
    response = s3_portal.get(f"/files/{node['id']}/download")
    assert response.status_code == 404 and b"not yours" not in response.data


def test_a_resumable_upload_appends_parts_and_completes_in_a_bucket(server, s3_endpoint):
    """Objects cannot be appended to: each chunk is a part, completion joins them with their MD5."""
    import io

    from portal.objects import ObjectStore
    from portal.registration import resumable

    settings = dataclasses.replace(server.settings, storage_url=f"s3://{BUCKET}/{PREFIX}", s3_endpoint_url=s3_endpoint)
    store = ObjectStore.from_settings(settings)
    who = {"user": "tom", "project": "p1", "file_name": "run.ibd"}
    upload = resumable.create(store, who, len(IBD), limit=1 << 30)
    half = len(IBD) // 2
    assert resumable.append(store, upload, 0, io.BytesIO(IBD[:half]), half, None) == half
    assert resumable.offset(store, resumable.find(store, upload.upload_id, "tom")) == half
    with pytest.raises(resumable.OffsetConflict):
        resumable.append(store, upload, 0, io.BytesIO(IBD[:half]), half, None)
    resumable.append(store, upload, half, io.BytesIO(IBD[half:]), len(IBD) - half, None)
    staged = resumable.complete(store, upload, hashlib.md5(IBD).hexdigest())
    assert (staged.md5sum, staged.file_size) == (hashlib.md5(IBD).hexdigest(), len(IBD))
    assert objects(s3_endpoint) == [f"{BUCKET}/{PREFIX}/.staging/{upload.upload_id}/{name}"
                                    for name in ("resumable.json", "run.ibd", "upload.json")]
