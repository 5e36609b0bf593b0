"""Exports stream every row of the view, the same rows the service names when asked straight."""
import csv
import io
import json

import pytest

from portal.explorer import exports

HUMANS = {"IN": {"species": ["human"]}}


@pytest.fixture
def analyst(portal, sign_in, demo):
    sign_in(portal, "ana")
    return portal


def tsv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True)), delimiter="\t"))


def as_text(entry: dict) -> dict:
    return {key: "" if value is None else str(value) for key, value in entry.items()}


@pytest.mark.parametrize("kind, view", [("case", HUMANS), ("file", None), ("case", None)])
def test_the_manifest_holds_the_files_the_service_names(analyst, admin, monkeypatch, kind, view):
    monkeypatch.setattr(exports, "MANIFEST_PAGE", 1)  # page after page, through the cursor
    query = f"?tab={kind}" + (f"&filter={json.dumps(view)}" if view else "")
    response = analyst.get("/export/manifest.tsv" + query)
    assert response.status_code == 200 and response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Content-Type"] == "text/tab-separated-values; charset=utf-8"  # one charset
    expected = list(admin.manifest(kind, view))
    assert len(expected) >= 2
    assert tsv(response) == [as_text(entry) for entry in expected]
    assert list(tsv(response)[0]) == list(exports.MANIFEST_FIELDS)
    assert json.loads(analyst.get("/export/manifest.json" + query).get_data(as_text=True)) == expected


def test_the_search_box_narrows_the_manifest(analyst, admin):
    search = {"search": {"keyword": "ak-case-0005", "fields": [f for k in admin.documents() if k.kind == "case"
                                                                for f in k.search]}}
    rows = tsv(analyst.get("/export/manifest.tsv?tab=case&search=ak-case-0005"))
    assert [r["id"] for r in rows] == [e["id"] for e in admin.manifest("case", search)]


def test_the_table_export_holds_every_matching_document(analyst, admin, monkeypatch):
    monkeypatch.setattr(exports, "HITS_PAGE", 3)  # many pages of hits, no cap
    rows = tsv(analyst.get(f"/export/table.tsv?tab=case&filter={json.dumps(HUMANS)}"))
    total, docs = admin.hits("case", HUMANS, sort=[("id", False)], limit=1000)
    assert total > 3 and [r["id"] for r in rows] == [d["id"] for d in docs]
    assert list(rows[0])[:3] == ["id", "submitter_id", "project_id"]
    assert {r["species"] for r in rows} == {"human"}
    assert rows[0]["organs"] == ",".join(docs[0]["organs"])


@pytest.mark.parametrize("query, message", [
    ("?tab=case&filter=" + json.dumps({"IN": {"orgn": ["liver"]}}), "unknown field &#39;orgn&#39;"),
    ("?tab=case&filter=" + json.dumps({">=": {"age_years": "thirty"}}), "age_years"),
    ("?tab=case&filter={broken", "not valid JSON"),
    ("?tab=samples", "not a document kind"),
])
def test_a_broken_view_gets_a_message_not_a_download(analyst, query, message):
    response = analyst.get("/export/manifest.tsv" + query)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and message in page and "Traceback" not in page
    assert "Content-Disposition" not in response.headers
    assert 'href="/explore"' in page
