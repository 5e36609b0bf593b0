"""The Parameter sets page in-process: sets by template and name with their revisions, the diff
between two revisions, the runs that used each revision, and the admins' form, against a real
service (the fixtures of test_workflow_pages.py: a one-step template and a measurement)."""
from __future__ import annotations

import json

import pytest

from metadata.server import LOCAL_ADMIN
from portal.workflows import set_widgets as sw
from tests.portal.test_workflow_pages import (OTHER, TEMPLATE, measurement, open_page, post, settings, sets,  # noqa: F401
                                              tom)

KEY = f"test-proj/{TEMPLATE}/fast"


@pytest.fixture
def ada(measurement, app, sign_in):  # noqa: F811 - the admin of the demo accounts
    client = app.test_client()
    sign_in(client, "ada")
    return client


def compare(client, older, newer, params) -> str:
    ids = {kind: {"type": kind, "set": KEY} for kind in ("psets-diff", "psets-diff-from", "psets-diff-to",
                                                         "psets-params")}
    answer = post(client, '"type":"psets-diff"}.children', {"id": ids["psets-diff"], "property": "children"},
                  [{"id": ids["psets-diff-from"], "property": "value", "value": older},
                   {"id": ids["psets-diff-to"], "property": "value", "value": newer}],
                  [{"id": ids["psets-params"], "property": "data", "value": params}],
                  changed=json.dumps(ids["psets-diff-from"], sort_keys=True, separators=(",", ":")) + ".value")
    return json.dumps(answer, ensure_ascii=False)


def save_form(client, template, name, params, project="test-proj", notes="") -> str:
    answer = post(client, "psets-form-result.children", {"id": "psets-form-result", "property": "children"},
                  [{"id": "psets-form-save", "property": "n_clicks", "value": 1}],
                  [{"id": f"psets-form-{k}", "property": "value", "value": v}
                   for k, v in (("template", template), ("project", project), ("name", name),
                                ("params", params), ("notes", notes))], changed="psets-form-save.n_clicks")
    return json.dumps(answer, ensure_ascii=False)


def test_the_page_lists_sets_by_template_with_revisions_and_the_runs_of_each(tom, admin, measurement, sets):
    run = admin.launch(TEMPLATE, [measurement], parameter_set_id=sets["fast-r1"]).run
    page = open_page(tom, "/parameter-sets")
    assert f"{OTHER} · other" in page and f"{TEMPLATE} · fast" in page
    assert page.index(f"{OTHER} · other") < page.index(f"{TEMPLATE} · fast")   # by template, then name
    table = page[page.index(f"{TEMPLATE} · fast"):]
    assert table.index('"r2"') < table.index('"r1"') and "window = " in table and f'"{LOCAL_ADMIN}"' in table
    assert f"/runs/{run.id}" in page and "none yet" in page   # r1 was used by the run, r2 by none
    assert "revision 1" in page and "revision 2" in page     # the default diff: r1 with r2
    assert "psets-admin" not in page                          # the save form is for admins
    only = open_page(tom, "/parameter-sets", f"?template={OTHER}")
    assert f"{OTHER} · other" in only and f"{TEMPLATE} · fast" not in only


def test_the_diff_names_changed_added_and_removed_parameters(tom, sets):
    params = {"1": {"window": "5", "mode": "ok"}, "2": {"window": "6", "extra": "x"}}
    text = compare(tom, 1, 2, params)
    assert '"changed"' in text and '"added"' in text and '"removed"' in text and "revision 1" in text
    assert "hold the same parameters" in compare(tom, 2, 2, params)


def test_params_diff_is_by_name():
    changes = sw.params_diff({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "5", "d": "4"})
    assert [(c.name, c.kind, c.old, c.new) for c in changes] == [
        ("b", "changed", "2", "5"), ("c", "removed", "3", None), ("d", "added", None, "4")]
    assert sw.parse_params("window = 5\n\nmode=fail") == {"window": "5", "mode": "fail"}
    assert sw.parse_params('{"window": 5}') == {"window": "5"}
    with pytest.raises(ValueError, match="line 1"):
        sw.parse_params("window 5")


def test_an_admin_saves_a_revision_from_the_portal(ada, tom, admin, sets):
    page = open_page(ada, "/parameter-sets")
    assert "psets-admin" in page and "Save revision" in page
    assert f'{{"label": "{TEMPLATE}", "value": "{TEMPLATE}"}}' in page and '{"label": "test-proj", "value": "test-proj"}' in page
    assert all(f'"htmlFor": "psets-form-{name}"' in page for name in ("template", "project", "name", "params", "notes"))
    assert "Saved fast · revision 3" in save_form(ada, TEMPLATE, "fast", "window = 8", notes="wider")
    assert "already holds these parameters as revision 3" in save_form(ada, TEMPLATE, "fast", '{"window": 8}')
    refused = save_form(ada, TEMPLATE, "fast", "window = 12")
    assert "psets-form-problem" in refused and "parameters.window" in refused and "between 1 and 9" in refused
    newest = admin.parameter_sets("test-proj", TEMPLATE)[0].revisions[0]
    assert (newest.revision, newest.params, newest.source, newest.created_by) == (3, {"window": "8"}, "portal", "ada")
    assert "admin role" in save_form(tom, TEMPLATE, "fast", "window = 7")


def test_the_header_links_to_the_page(tom, measurement):
    assert "shell-parameter-sets" in tom.get("/_dash-layout").get_data(as_text=True)
