"""The object store's keys and URLs, where a project's files may lie, and the store's setting
(pure: no bytes are written); its lock and its whole-object writes, in a directory."""
from __future__ import annotations

from pathlib import Path

import pytest

from ground.settings import SettingsError, load
from ground.storage import Layout, NotReadable, object_key
from portal.objects import ObjectStore


@pytest.fixture
def local(tmp_path):
    return ObjectStore.from_settings(load({"LABCOMMONS_DATA_DIR": str(tmp_path)}))


def test_a_local_key_is_a_file_url_inside_the_root_that_the_service_accepts(local, tmp_path):
    url = local.url("proj/m1/run.ibd")
    assert url == (tmp_path / "storage" / "proj/m1/run.ibd").resolve().as_uri()
    layout = Layout.from_settings(load({"LABCOMMONS_DATA_DIR": str(tmp_path)}))
    assert layout.problem(url, "proj") is None
    assert "not in the storage of project other" in layout.problem(url, "other")


@pytest.mark.parametrize("key", ["", "../x", "a/../../x", "a//b", "./a", "a/."])
def test_a_key_that_could_leave_the_root_is_refused(local, key):
    with pytest.raises(ValueError):
        local.url(key)


def test_only_urls_under_the_projects_s3_prefix_name_keys():
    assert object_key("s3://bucket/commons/p/m/run.ibd", "bucket/commons", "p") == "p/m/run.ibd"
    for url in ("s3://bucket/commonsX/p/x.ibd", "s3://bucket/commons/../secret", "s3://other/commons/p/x.ibd",
                "file:///bucket/commons/p/x.ibd", "s3://bucket/commons/p/x.ibd?versionId=1", "s3://bucket/commons/p/",
                "s3://bucket/commons/q/x.ibd", "s3://bucket/commons/p/../q/x.ibd", "s3://bucket/commons/p//x.ibd",
                "s3://bucket/commons/px/x.ibd", "s3://bucket/commons/p.ibd"):
        with pytest.raises(NotReadable, match="outside the prefix of project p"):
            object_key(url, "bucket/commons", "p")


def test_the_service_names_what_a_projects_storage_url_may_be(tmp_path):
    layout = Layout.from_settings(load({"LABCOMMONS_DATA_DIR": str(tmp_path), "LABCOMMONS_STORAGE_URL": "s3://b/c"}))
    root = (tmp_path / "storage").resolve()
    assert layout.problem(f"file://{root}/p/m/x.ibd", "p") is None
    assert layout.problem("s3://b/c/p/m/x.ibd", "p") is None
    for url in (f"file://{root}/q/x.ibd", f"file://{root}/p/../q/x.ibd", "file:///etc/passwd", "s3://b/c/q/x",
                "https://example.org/p/x.ibd", "", f"file://{root}/p"):
        assert layout.problem(url, "p") == (f"{url!r} is not in the storage of project p; give "
                                            f"file://{root}/p/... or s3://b/c/p/..."), url


def test_without_an_object_store_no_s3_url_is_a_projects():
    layout = Layout(root=Path("/srv/storage"))
    assert "give file:///srv/storage/p/..." in layout.problem("s3://b/c/p/x.ibd", "p")


def test_a_storage_url_other_than_s3_is_refused_by_name():
    with pytest.raises(SettingsError, match="LABCOMMONS_STORAGE_URL"):
        load({"LABCOMMONS_STORAGE_URL": "https://example.org/bucket"})
    assert load({"LABCOMMONS_STORAGE_URL": "s3://b/p", "LABCOMMONS_S3_ENDPOINT_URL": "http://127.0.0.1:9000"}).storage_url == "s3://b/p"


def test_a_lock_is_held_by_one_holder_at_a_time_and_released(local):
    # a file lock: two holders in one process conflict as two processes do (each opens the file)
    with local.exclusive("staging/u1/receiving.lock") as first:
        with local.exclusive("staging/u1/receiving.lock") as second:
            assert first and not second
        with local.exclusive("staging/u2/receiving.lock") as other:
            assert other
    with local.exclusive("staging/u1/receiving.lock") as again:
        assert again


def test_a_record_is_replaced_whole_and_leaves_no_temporary_file(local, tmp_path):
    local.write_text("staging/u1/resumable.json", "old")
    local.write_text("staging/u1/resumable.json", "new")
    assert local.read_text("staging/u1/resumable.json") == "new"
    assert sorted(p.name for p in (tmp_path / "storage" / "staging" / "u1").iterdir()) == ["resumable.json"]
