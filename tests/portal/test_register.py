"""Registering one dataset through the portal (Flask test client, real metadata service, demo
commons): the form, inline checks, streamed uploads and every refusal, and the one-step register."""
from __future__ import annotations

import base64
import hashlib
import io
import re

import pytest

from metadata.idl import metadata_thrift as T
from portal.registration import dataset as registration
from portal.objects import ObjectStore
from tests.portal.registering import IBD, IMZML, post, register_pair, send, staging, token, values

def test_the_form_is_made_from_the_dictionary(tom, place):
    page = tom.get("/register").get_data(as_text=True)
    assert re.search(r'<select id="register-polarity" name="polarity">\s*<option value="">choose one</option>\s*'
                     r'<option value="positive">positive</option>\s*<option value="negative">negative</option>', page)
    assert 'for="register-instrument">Instrument *</label>' in page  # required, marked
    assert 'for="register-pixel_size_um">Pixel size (µm)</label>' in page  # unit in the label, not required
    assert "Raster step between neighbouring pixels. Unit: µm." in page
    assert f'<option value="{place["experiment"]}" data-project="{place["project"]}">' in page


def test_a_reader_is_told_they_cannot_register(portal, sign_in, demo):
    sign_in(portal, "ana")
    assert 'id="register-no-access"' in portal.get("/register").get_data(as_text=True)


def test_the_inline_check_names_the_bad_field_in_the_services_words(tom, place):
    answer = post(tom, "/register/check", {"project": place["project"],
                                           "values": values(place, polarity="sideways", raster_width="-3")}).get_json()
    assert set(answer["fields"]) == {"polarity", "raster_width"}
    assert "sideways" in answer["fields"]["polarity"][0] and "positive" in answer["fields"]["polarity"][0]
    good = post(tom, "/register/check", {"project": place["project"], "values": values(place)}).get_json()
    assert good == {"fields": {}, "general": []}


def test_the_inline_check_refuses_an_identifier_that_cannot_name_a_directory(tom, place):
    answer = post(tom, "/register/check", {"project": place["project"],
                                           "values": values(place, submitter_id="../etc")}).get_json()
    assert "submitter_id" in answer["fields"]


def test_the_inline_check_refuses_an_existing_measurement(tom, admin, place):
    existing = next(admin.nodes("measurement", place["project"]))["submitter_id"]
    answer = post(tom, "/register/check", {"project": place["project"],
                                           "values": values(place, submitter_id=existing)}).get_json()
    assert "already registered" in answer["fields"]["submitter_id"][0]


def test_a_good_registration_stores_the_nodes_and_the_files(tom, admin, server, place):
    response = register_pair(tom, place, values(place))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["href"] == f"/measurement/{place['project']}/new-run-1"
    measurement = admin.find(place["project"], "new-run-1")
    assert measurement["properties"]["pixel_size_um"] == 20
    files = {f["properties"]["data_format"]: f["properties"]
             for f in admin.nodes("data_file", place["project"]) if f["submitter_id"].startswith("new-run-1.")}
    assert set(files) == {"imzML", "ibd"}
    for body, props in ((IMZML, files["imzML"]), (IBD, files["ibd"])):
        stored = server.settings.storage_root / place["project"] / "new-run-1" / props["file_name"]
        assert stored.read_bytes() == body
        assert props["md5sum"] == hashlib.md5(body).hexdigest() and props["file_size"] == len(body)
        assert props["storage_url"] == stored.resolve().as_uri()
    assert staging(server) == []


@pytest.mark.parametrize("name", ["../escape.ibd", "a/b.ibd", "a\\b.ibd", "bad\x01.ibd", "x..ibd", ".hidden.ibd",
                                  "run.exe", "noextension", ""])
def test_an_unacceptable_file_name_is_refused_and_nothing_kept(tom, server, place, name):
    response = send(tom, place["project"], name, IBD)
    assert response.status_code == 400
    assert response.get_json()["fields"]["file_name"][0].startswith("file_name:")
    assert staging(server) == [] and not (server.settings.storage_root / "escape.ibd").exists()


def test_a_checksum_mismatch_is_refused_and_nothing_kept(tom, server, place):
    wrong = hashlib.md5(b"something else").digest()
    for header in ({"Content-MD5": base64.b64encode(wrong).decode()}, {"X-Expected-MD5": wrong.hex()}):
        response = send(tom, place["project"], "run.ibd", IBD, header)
        assert response.status_code == 400
        assert "not the expected" in response.get_json()["fields"]["md5sum"][0]
    assert staging(server) == []
    right = send(tom, place["project"], "run.ibd", IBD, {"Content-MD5": base64.b64encode(hashlib.md5(IBD).digest()).decode()})
    assert right.status_code == 201 and right.get_json()["md5sum"] == hashlib.md5(IBD).hexdigest()


def test_a_cut_off_upload_is_refused_and_nothing_kept(tom, server, place):
    response = send(tom, place["project"], "run.ibd", None, input_stream=io.BytesIO(IBD[:1000]),
                    environ_overrides={"CONTENT_LENGTH": str(len(IBD))})
    assert response.status_code == 400
    assert "cut off: 1000 of" in response.get_json()["fields"]["file"][0]
    assert staging(server) == []


class Untouchable(io.BytesIO):
    """A request body that fails the test if the portal reads it."""

    def read(self, *_args):
        raise AssertionError("the portal read the body of a refused upload")

    readinto = readline = read


def test_an_upload_without_a_write_grant_is_refused_before_reading_it(portal, sign_in, server, place):
    sign_in(portal, "ana")  # read access only
    response = portal.post("/register/uploads", query_string={"project": place["project"], "file_name": "run.ibd"},
                           input_stream=Untouchable(IBD[:10]),
                           headers={"X-CSRFToken": token(portal), "Content-Type": "application/octet-stream"})
    assert response.status_code == 403
    assert "no write access" in response.get_json()["fields"]["project"][0]
    assert staging(server) == []


def test_an_upload_without_the_csrf_token_is_refused(tom, server, place):
    response = tom.post("/register/uploads", query_string={"project": place["project"], "file_name": "run.ibd"},
                        data=IBD, headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 400 and "reload" in response.get_json()["general"][0]
    assert staging(server) == []


def test_a_refused_registration_leaves_no_nodes_and_no_files(tom, admin, server, place):
    response = register_pair(tom, place, values(place, polarity="sideways"))
    assert response.status_code == 400
    assert "polarity" in response.get_json()["fields"]
    _assert_nothing_of(admin, server, place)


def test_someone_elses_upload_cannot_be_registered(tom, portal, app, sign_in, admin, server, place):
    upload_id = send(tom, place["project"], "run.ibd", IBD).get_json()["upload_id"]
    other = app.test_client()
    sign_in(other, "ada")
    response = post(other, "/register/commit", {"project": place["project"], "values": values(place),
                                                "uploads": [upload_id, "0" * 32]})
    assert response.status_code == 400 and "is not a file you uploaded" in response.get_json()["fields"]["files"][0]
    assert len(staging(server)) == 3  # tom's upload is still his (directory, bytes, record)


def test_a_registration_needs_the_imzml_and_ibd_pair(tom, admin, server, place):
    upload_id = send(tom, place["project"], "run.ibd", IBD).get_json()["upload_id"]
    response = post(tom, "/register/commit", {"project": place["project"], "values": values(place), "uploads": [upload_id]})
    assert response.status_code == 400 and "one .imzML file and one .ibd file" in response.get_json()["fields"]["files"][0]
    _assert_nothing_of(admin, server, place)


class RefusingSubmit:
    """The real client, except that the final (not dry-run) submit is refused, as a conflicting
    writer or a changed dictionary could make the service do after the files were moved."""

    def __init__(self, client):
        self.client = client

    def __getattr__(self, name):
        return getattr(self.client, name)

    def submit(self, project, entities=None, body="", fmt="json", dry_run=False):
        if not dry_run:
            raise T.ValidationError(code="invalid", message="refused", issues=[
                T.Issue(index=1, row=0, field="md5sum", message="md5sum: refused for the test")])
        return self.client.submit(project, entities, body, fmt, dry_run)


def test_a_submit_refused_after_the_files_were_moved_removes_them(tom, admin, server, place):
    ids = [send(tom, place["project"], name, body).get_json()["upload_id"]
           for name, body in (("run.imzML", IMZML), ("run.ibd", IBD))]
    store = ObjectStore.from_settings(server.settings)
    with pytest.raises(registration.Refused) as refused:
        registration.register(RefusingSubmit(admin), store, "tom", place["project"], values(place), ids,
                              admin.dictionary()["measurement"])
    assert "md5sum: refused for the test" in str(refused.value)
    _assert_nothing_of(admin, server, place)


def _assert_nothing_of(admin, server, place) -> None:
    with pytest.raises(T.NotFound):
        admin.find(place["project"], "new-run-1")
    assert not (server.settings.storage_root / place["project"] / "new-run-1").exists()
    assert staging(server) == []


def test_an_upload_the_page_gives_up_on_is_discarded_by_its_owner_only(tom, app, sign_in, server, place):
    upload_id = send(tom, place["project"], "run.ibd", IBD).get_json()["upload_id"]
    other = app.test_client()
    sign_in(other, "ada")
    path = f"/register/uploads/{upload_id}/discard?project={place['project']}"
    assert other.post(path, headers={"X-CSRFToken": token(other)}).status_code == 404
    assert len(staging(server)) == 3
    assert tom.post(path, headers={"X-CSRFToken": token(tom)}).get_json() == {"discarded": upload_id}
    assert staging(server) == []


def test_an_upload_larger_than_allowed_is_refused_before_reading_it(tom, server, place):
    response = send(tom, place["project"], "run.ibd", None, input_stream=Untouchable(IBD[:10]),
                    environ_overrides={"CONTENT_LENGTH": str(server.settings.max_upload_bytes + 1)})
    assert response.status_code == 413 and "more than the allowed" in response.get_json()["fields"]["file"][0]
    assert staging(server) == []


@pytest.mark.parametrize("project", ["../escape", "a/b", ""])
def test_a_project_that_cannot_name_a_directory_is_refused(portal, sign_in, server, demo, project):
    sign_in(portal, "ada")  # an admin may write anywhere, but not outside the storage root
    response = send(portal, project, "run.ibd", IBD)
    assert response.status_code == 400 and "is not a project name" in response.get_json()["fields"]["project"][0]
    assert staging(server) == [] and not (server.settings.storage_root.parent / "escape").exists()
