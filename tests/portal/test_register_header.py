"""Registration straight from the imzML (Flask test client, real metadata service, demo commons):
choosing the file fills the measurement's fields from its header, and at commit a pair that does
not belong together is refused, naming what differs, with nothing written."""
from __future__ import annotations

import pytest

from metadata.idl import metadata_thrift as T
from tests.imzml_files import pair_bytes
from tests.portal.registering import IBD, IMZML, post, send, staging, token, values


def read_header(client, project: str, body: bytes, name: str = "slide.imzML"):
    return client.post("/register/header", query_string={"project": project, "file_name": name}, data=body,
                       headers={"X-CSRFToken": token(client), "Content-Type": "application/octet-stream"})


def commit(client, place: dict, vals: dict, imzml: bytes, ibd: bytes, names=("a.imzML", "b.ibd")):
    ids = [send(client, place["project"], name, body).get_json()["upload_id"]
           for name, body in zip(names, (imzml, ibd))]
    return post(client, "/register/commit", {"project": place["project"], "values": vals, "uploads": ids})


def test_choosing_an_imzml_fills_the_fields_from_its_header_and_keeps_nothing(tom, server, place):
    response = read_header(tom, place["project"], IMZML)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["values"] == {"polarity": "positive", "mass_range_low": "400", "mass_range_high": "900",
                                "raster_width": "4", "raster_height": "3", "spectrum_type": "profile",
                                "imzml_mode": "continuous"}
    assert answer["summary"][0] == "12 spectra on a grid of 4 × 3 pixels, continuous"
    assert staging(server) == []
    form = tom.get("/register").get_data(as_text=True)
    assert 'id="register-from-file-polarity"' in form
    # the file is chosen before the fields it fills, so the form reads top down
    assert form.index('id="register-file-imzML"') < form.index('id="register-instrument"')


def test_a_broken_imzml_is_refused_at_its_field_naming_the_line(tom, place):
    response = read_header(tom, place["project"], IMZML[: len(IMZML) // 2])
    assert response.status_code == 400
    (message,) = response.get_json()["fields"]["file-imzML"]
    assert message.startswith("slide.imzML: the imzML is not well-formed XML at line ")


def test_a_reader_may_not_send_a_header(portal, sign_in, place):
    sign_in(portal, "ana")
    response = read_header(portal, place["project"], IMZML)
    assert response.status_code == 403 and "no write access" in response.get_json()["fields"]["project"][0]


def test_a_client_that_names_no_field_gets_the_headers_values(tom, admin, place, tmp_path):
    imzml, ibd = pair_bytes(tmp_path, polarity="negative", spec_type="centroid", mode="processed", width=5, height=2)
    vals = {k: v for k, v in values(place).items() if k != "polarity"}
    response = commit(tom, place, vals, imzml, ibd, names=("slide 7.imzML", "scan-0003.ibd"))
    assert response.status_code == 200, response.get_data(as_text=True)
    props = admin.find(place["project"], "new-run-1")["properties"]
    assert (props["polarity"], props["raster_width"], props["raster_height"]) == ("negative", 5, 2)
    assert (props["spectrum_type"], props["imzml_mode"], props["pixel_size_um"]) == ("centroid", "processed", 20)


@pytest.mark.parametrize("wrong, differences", [
    ("another", ["UUID", "SHA-1"]),
    ("truncated", ["SHA-1", "size"]),
])
def test_a_wrong_pair_is_refused_at_commit_with_nothing_written(tom, admin, server, place, tmp_path, wrong, differences):
    ibd = pair_bytes(tmp_path, width=4, height=3, points=400)[1] if wrong == "another" else IBD[:-500]
    response = commit(tom, place, values(place), IMZML, ibd)
    assert response.status_code == 400
    problems = response.get_json()["fields"]["files"]
    assert [p.split(": ")[2] for p in problems] == differences
    assert all(p.startswith("files: b.ibd does not belong to a.imzML: ") for p in problems)
    with pytest.raises(T.NotFound):
        admin.find(place["project"], "new-run-1")
    assert not (server.settings.storage_root / place["project"] / "new-run-1").exists()
    assert staging(server) == []


def test_an_upper_mass_range_below_the_lower_is_refused_at_its_field(tom, place):
    answer = post(tom, "/register/check", {"project": place["project"], "values": values(
        place, mass_range_low="900", mass_range_high="400")}).get_json()
    assert answer["fields"] == {"mass_range_high": [
        "mass_range_high (400) is below mass_range_low (900); it must be at least mass_range_low"]}
