"""The object store's keys and URLs (pure: no bytes are written), and its setting."""
from __future__ import annotations

import pytest

from ground.settings import SettingsError, load
from portal.objects import ObjectStore


@pytest.fixture
def local(tmp_path):
    return ObjectStore.from_settings(load({"LABCOMMONS_DATA_DIR": str(tmp_path)}))


def test_a_local_key_is_a_file_url_inside_the_root_and_back(local, tmp_path):
    url = local.url("proj/m1/run.ibd")
    assert url == (tmp_path / "storage" / "proj/m1/run.ibd").resolve().as_uri()
    assert local.key_of(url) == "proj/m1/run.ibd"


@pytest.mark.parametrize("key", ["", "../x", "a/../../x", "a//b", "./a", "a/."])
def test_a_key_that_could_leave_the_root_is_refused(local, key):
    with pytest.raises(ValueError):
        local.url(key)


def test_only_urls_under_the_s3_prefix_name_keys():
    store = ObjectStore(fs=None, root="bucket/commons", scheme="s3")
    assert store.key_of("s3://bucket/commons/p/m/run.ibd") == "p/m/run.ibd"
    for url in ("s3://bucket/commonsX/p.ibd", "s3://bucket/commons/../secret", "s3://other/commons/p.ibd",
                "file:///bucket/commons/p.ibd", "s3://bucket/commons/p.ibd?versionId=1", "s3://bucket/commons/"):
        assert store.key_of(url) is None, url


def test_a_storage_url_other_than_s3_is_refused_by_name():
    with pytest.raises(SettingsError, match="LABCOMMONS_STORAGE_URL"):
        load({"LABCOMMONS_STORAGE_URL": "https://example.org/bucket"})
    assert load({"LABCOMMONS_STORAGE_URL": "s3://b/p", "LABCOMMONS_S3_ENDPOINT_URL": "http://127.0.0.1:9000"}).storage_url == "s3://b/p"
