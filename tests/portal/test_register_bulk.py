"""Bulk registration through the portal: a TSV previewed as the service's dry run, every problem
at its row and column, then committed as one batch (Flask test client, real service, demo data)."""
from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pytest

from metadata.idl import metadata_thrift as T
from portal.registration.bulk import preview

HEADER = "type\tsubmitter_id\tinstrument\tionisation\tpolarity\tpixel_size_um\texperiments.submitter_id\tsamples.submitter_id"


def tsv(place: dict, *rows: tuple[str, ...]) -> str:
    lines = [HEADER] + ["\t".join(("measurement", *row, place["experiment"], place["sample"])) for row in rows]
    return "\n".join(lines) + "\n"


def csrf(client) -> str:
    page = client.get("/register/bulk").get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def upload(client, project: str, text: str):
    return client.post("/register/bulk/preview", content_type="multipart/form-data",
                       data={"csrf_token": csrf(client), "project": project,
                             "tsv": (io.BytesIO(text.encode()), "runs.tsv")})


def cell_problems(page: str) -> dict[tuple[int, str], str]:
    """(row, column) -> the messages shown in that cell of the preview table."""
    found = {}
    for row, body in re.findall(r'<tr id="bulk-row-(\d+)">(.*?)</tr>', page, re.S):
        for column, messages in re.findall(r'<td class="bad" data-column="([^"]+)">.*?((?:<span class="cell-problem">.*?</span>)+)', body, re.S):
            found[(int(row), column)] = " ".join(re.findall(r'<span class="cell-problem">(.*?)</span>', messages))
    return found


def test_the_preview_places_each_problem_at_its_row_and_column(tom, admin, place):
    text = tsv(place, ("bulk-1", "timsTOF", "MALDI", "positive", "10"),
               ("bulk-2", "timsTOF", "LASER", "positive", "ten"),
               ("bulk-3", "", "DESI", "sideways", "5"))
    response = upload(tom, place["project"], text)
    assert response.status_code == 400
    problems = cell_problems(response.get_data(as_text=True))
    assert set(problems) == {(3, "ionisation"), (3, "pixel_size_um"), (4, "instrument"), (4, "polarity")}
    assert "LASER" in problems[(3, "ionisation")] and "sideways" in problems[(4, "polarity")]
    assert "instrument is required" in problems[(4, "instrument")]
    assert 'id="bulk-commit"' not in response.get_data(as_text=True)
    assert not [m for m in admin.nodes("measurement", place["project"]) if m["submitter_id"].startswith("bulk-")]


def test_a_clean_preview_commits_every_row(tom, admin, place):
    text = tsv(place, ("bulk-1", "timsTOF", "MALDI", "positive", "10"), ("bulk-2", "Synapt", "DESI", "negative", "50"))
    page = upload(tom, place["project"], text).get_data(as_text=True)
    assert "Dry run: 2 to create" in page and 'id="bulk-commit"' in page
    assert not [m for m in admin.nodes("measurement", place["project"]) if m["submitter_id"].startswith("bulk-")]
    shown = re.search(r'<textarea name="tsv" hidden>(.*?)</textarea>', page, re.S).group(1)
    response = tom.post("/register/bulk/commit", data={"csrf_token": csrf(tom), "project": place["project"],
                                                       "tsv": shown.replace("&#34;", '"')})
    assert "Saved: 2 created" in response.get_data(as_text=True)
    assert admin.find(place["project"], "bulk-2")["properties"]["ionisation"] == "DESI"


def test_a_reader_cannot_commit(portal, sign_in, admin, place):
    sign_in(portal, "ana")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', portal.get("/account").get_data(as_text=True)).group(1)
    response = portal.post("/register/bulk/commit", data={"csrf_token": token, "project": place["project"],
                                                          "tsv": tsv(place, ("bulk-1", "timsTOF", "MALDI", "positive", "10"))})
    assert response.status_code == 403 and "no write access" in response.get_data(as_text=True)
    with pytest.raises(T.NotFound):
        admin.find(place["project"], "bulk-1")


def test_a_file_that_is_not_utf8_is_refused_by_name(tom, place):
    response = tom.post("/register/bulk/preview", content_type="multipart/form-data",
                        data={"csrf_token": csrf(tom), "project": place["project"],
                              "tsv": (io.BytesIO(b"type\tsubmitter_id\n\xff\xfe"), "runs.tsv")})
    assert response.status_code == 400 and "tsv: the file is not UTF-8" in response.get_data(as_text=True)


def test_issues_without_a_column_stay_with_their_row_or_the_batch():
    issue = lambda row, field, message: SimpleNamespace(index=0, row=row, field=field, message=message)
    table = preview("type\tsubmitter_id\texperiments.submitter_id\nmeasurement\tm1\te9\n",
                    [issue(2, "experiments", "no experiment e9"), issue(2, "", "row too short"), issue(0, "", "batch")])
    assert table.rows[0].cells[2] == ("e9", ["no experiment e9"])
    assert table.rows[0].problems == ["row too short"] and table.general == ["batch"]


def test_a_data_file_row_naming_a_file_outside_its_project_is_refused_at_its_cell(tom, admin, place):
    """Issue 13: a storage_url elsewhere is refused at registration, not accepted to fail later."""
    measurement = next(admin.nodes("measurement", place["project"]))["submitter_id"]
    text = ("type\tsubmitter_id\tfile_name\tdata_format\tfile_size\tmd5sum\tstorage_url\tdata_category\t"
            "measurements.submitter_id\n"
            f"data_file\telsewhere.ibd\tx.ibd\tibd\t3\t{'0' * 32}\tfile:///etc/passwd\traw\t{measurement}\n")
    response = upload(tom, place["project"], text)
    assert response.status_code == 400
    problem = cell_problems(response.get_data(as_text=True))[(2, "storage_url")]
    assert f"is not in the storage of project {place['project']}; give file://" in problem
    assert not [f for f in admin.nodes("data_file", place["project"]) if f["submitter_id"] == "elsewhere.ibd"]
