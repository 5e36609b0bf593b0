"""The workflow pages in-process: the launch form, the runs list, the run page, the step logs and
the provenance graph, their callbacks posted as the pages' script posts them, against a real
metadata service with a one-step template (tests/workflows/runs/conftest.py's, plus an integer
parameter with a range) and a measurement with real files; a Worker runs the runs in-process."""
from __future__ import annotations

import dataclasses
import io
import json
import zipfile

import pytest
import yaml

from tests.portal.conftest import ORIGIN, _prop
from tests.workflows.runs import conftest as runs_fixtures, test_worker
from tests.workflows.runs.conftest import template
from tests.workflows.runs.test_worker import run_until

TEMPLATE = "size-report"
OTHER = "other-report"   # a second template, whose sets the first one's form must not offer
measurement = runs_fixtures.measurement   # fixtures: a measurement with real files; an in-process Worker
worker = test_worker.worker
PARAM_IDS = ({"type": "launch-param", "name": "mode"}, {"type": "launch-param", "name": "window"})


def wf_template() -> dict:
    """The test template with an integer parameter (1 to 9 px) besides its `mode` enum. The hint
    goes under both catalog annotations: `parameters` (this branch's placeholder catalog) and
    `parameter-hints` (metadata/workflow_catalog.py, where the base template already has it)."""
    doc = template()
    doc["spec"]["arguments"]["parameters"].append({"name": "window", "value": "3",
                                                   "description": "Smoothing window."})
    notes, hint = doc["metadata"]["annotations"], {"type": "integer", "minimum": 1, "maximum": 9, "unit": "px"}
    notes["labcommons.io/parameters"] = json.dumps({"window": hint})
    if "labcommons.io/parameter-hints" in notes:
        notes["labcommons.io/parameter-hints"] = json.dumps({**json.loads(notes["labcommons.io/parameter-hints"]),
                                                             "window": hint})
    notes["labcommons.io/title"] = "Size report"
    return doc


@pytest.fixture
def settings(settings, tmp_path):
    directory = tmp_path / "templates"
    directory.mkdir()
    (directory / f"{TEMPLATE}.yaml").write_text(yaml.safe_dump(wf_template()))
    other = wf_template()
    other["metadata"]["name"] = OTHER
    (directory / f"{OTHER}.yaml").write_text(yaml.safe_dump(other))
    return dataclasses.replace(settings, templates_dir=directory, triggers_dir=tmp_path / "no-triggers")


@pytest.fixture
def files(admin, measurement):
    return sorted(e.child_id for e in admin.edges(measurement) if e.child_type == "data_file")


@pytest.fixture
def sets(admin, project):
    """Two revisions of one parameter set for the template, and one for another template."""
    saved = {f"fast-r{r}": admin.save_parameter_set(TEMPLATE, "fast", {"window": r + 4}, project).revision
             for r in (1, 2)}
    saved["other"] = admin.save_parameter_set(OTHER, "other", {"window": 2}, project).revision
    assert [saved["fast-r1"].revision, saved["fast-r2"].revision] == [1, 2]
    return {key: revision.id for key, revision in saved.items()}


@pytest.fixture
def tom(measurement, app, sign_in):  # the measurement's project exists before the grants
    client = app.test_client()
    sign_in(client, "tom")
    return client


@pytest.fixture
def ana(measurement, app, sign_in):
    client = app.test_client()
    sign_in(client, "ana")
    return client


# -- posting callbacks -------------------------------------------------------------------------

def post(client, output: str, outputs, inputs: list, state: list = (), changed: str = ""):
    """Post to the callback whose output spec contains `output`; the response's `response`."""
    deps = client.get("/_dash-dependencies").get_json()
    spec = next(d for d in deps if output in d["output"])
    if outputs is None:  # plain ids only, as the spec names them
        outputs = [_prop(o) for o in spec["output"].strip(".").split("...")]
        outputs = outputs if len(outputs) > 1 else outputs[0]
    body = {"output": spec["output"], "outputs": outputs, "inputs": inputs, "state": list(state),
            "changedPropIds": [changed] if changed else []}
    answer = client.post("/_dash-update-component", json=body, headers={"Origin": ORIGIN})
    assert answer.status_code in (200, 204), answer.get_data(as_text=True)[:2000]
    return answer.get_json()["response"] if answer.status_code == 200 else None


def open_page(client, path: str, search: str = "") -> str:
    answer = post(client, "_pages_content.children", None,
                  [{"id": "_pages_location", "property": "pathname", "value": path},
                   {"id": "_pages_location", "property": "search", "value": search}])
    return json.dumps(answer["_pages_content"]["children"], ensure_ascii=False)


def wildcard(kind: str, prop: str, values=None) -> list[dict]:
    return [{"id": {**i, "type": kind}, "property": prop, **({} if values is None else {"value": values[n]})}
            for n, i in enumerate(PARAM_IDS)]


def by_name(response: dict, kind: str, prop: str) -> dict:
    """A wildcard output's values by parameter name."""
    found = {}
    for key, props in response.items():
        if key.startswith("{"):
            id_ = json.loads(key)
            if id_["type"] == kind:
                found[id_["name"]] = props[prop]
    return found


def launch(client, values=("ok", "3"), set_id=None, force=False, request=None, changed="launch-submit.n_clicks",
           reuse=("reuse",)):
    state = wildcard("launch-param", "value", list(values)) + wildcard("launch-param", "id", list(PARAM_IDS))
    state = [s if s["property"] == "value" else {**s, "value": s["id"]} for s in state]
    outputs = [{"id": "launch-result", "property": "children"}, wildcard("launch-param-service", "children"),
               {"id": "launch-go", "property": "href"}, {"id": "launch-force", "property": "style"}]
    return post(client, "launch-result.children", outputs,
                [{"id": "launch-submit", "property": "n_clicks", "value": 1},
                 {"id": "launch-force", "property": "n_clicks", "value": 1 if force else None}],
                [state[:2], state[2:], {"id": "launch-set", "property": "value", "value": set_id},
                 {"id": "launch-request", "property": "data", "value": request},
                 {"id": "launch-reuse", "property": "value", "value": list(reuse)}],
                changed="launch-force.n_clicks" if force else changed)


def request_for(inputs) -> dict:
    return {"template": TEMPLATE, "groups": [{"project_id": "test-proj", "measurement": "", "input_ids": list(inputs)}],
            "specs": []}


# -- the launch form ---------------------------------------------------------------------------

def test_the_launch_form_offers_the_catalog_the_parameters_and_the_sets_newest_first(tom, measurement, sets):
    page = open_page(tom, "/launch", f"?inputs={measurement}")
    assert "Size report" in page and "Takes: imzML, ibd" in page and "launch-form" not in page  # choose first
    page = open_page(tom, "/launch", f"?template={TEMPLATE}&inputs={measurement}")
    assert '"m"' in page and "window (px)" in page and "whole number from 1 to 9" in page and "Smoothing window." in page
    assert '"ok"' in page and '"fail"' in page                                   # the enum as a dropdown
    assert page.index("fast · revision 2") < page.index("fast · revision 1") and "other · revision" not in page
    assert '"launch-reuse"' in page and '"value":["reuse"]' in page.replace(" ", "")  # reuse offered, on


def test_an_unknown_template_and_an_unreadable_input_are_explained(tom, measurement, admin):
    assert "'nope' is not a workflow template" in open_page(tom, "/launch", f"?template=nope&inputs={measurement}")
    admin.set_grant("tom", "test-proj", "")
    page = open_page(tom, "/launch", f"?template={TEMPLATE}&inputs={measurement}")
    assert "launch-problem" in page and f"no node with id '{measurement}'" in page  # unreadable: not there


def test_values_are_checked_inline_naming_the_parameter(tom, measurement):
    answer = post(tom, "launch-param-check", wildcard("launch-param-check", "children"),
                  [wildcard("launch-param", "value", ["maybe", "12"])],
                  [[{**s, "value": s["id"]} for s in wildcard("launch-param", "id")],
                   {"id": "launch-request", "property": "data",
                    "value": {"specs": [{"name": "mode", "type": "string", "enum_values": ["ok", "fail"],
                                         "default_value": "ok", "is_required": False, "minimum": None, "maximum": None},
                                        {"name": "window", "type": "integer", "enum_values": [], "default_value": "3",
                                         "is_required": False, "minimum": 1, "maximum": 9}]}}])
    checks = by_name(answer, "launch-param-check", "children")
    assert checks["mode"].startswith("mode: 'maybe' is not allowed")
    assert checks["window"] == "window: 12 is out of range; give 1 to 9"


def test_a_parameter_set_fills_the_form(tom, sets):
    answer = post(tom, '"type":"launch-param"}.value', wildcard("launch-param", "value"),
                  [{"id": "launch-set", "property": "value", "value": sets["fast-r2"]}],
                  [wildcard("launch-param", "value", ["fail", "3"]),
                   [{**s, "value": s["id"]} for s in wildcard("launch-param", "id")]], changed="launch-set.value")
    assert by_name(answer, "launch-param", "value") == {"mode": "fail", "window": "6"}


def test_a_launch_goes_to_its_run_and_the_same_launch_shows_the_existing_run(tom, admin, measurement, sets):
    first = launch(tom, set_id=sets["fast-r1"], request=request_for([measurement]))
    run_id = first["launch-go"]["href"].removeprefix("/runs/")
    run = admin.run(run_id)
    assert run.parameter_set_revision == 1 and run.parameters == {"mode": "ok", "window": "3"} and run.reuse
    again = launch(tom, set_id=sets["fast-r1"], request=request_for([measurement]))
    notice = json.dumps(again["launch-result"])
    assert "An identical run already exists" in notice and f"/runs/{run_id}" in notice
    assert "launch-go" not in again and again["launch-force"]["style"] == {}
    assert admin.runs().total == 1
    forced = launch(tom, set_id=sets["fast-r1"], request=request_for([measurement]), force=True, reuse=())
    assert forced["launch-go"]["href"] != first["launch-go"]["href"] and admin.runs().total == 2
    assert not admin.run(forced["launch-go"]["href"].removeprefix("/runs/")).reuse   # the box unticked


def test_the_services_refusal_appears_next_to_the_parameter_it_names(tom, measurement, admin):
    answer = launch(tom, values=("ok", "99"), request=request_for([measurement]))
    assert by_name(answer, "launch-param-service", "children")["window"]["props"]["children"].startswith(
        "parameters.window: ")
    assert admin.runs().total == 0


def test_a_reader_may_not_launch_and_is_told_why(ana, measurement, admin):
    answer = launch(ana, request=request_for([measurement]))
    assert "write" in json.dumps(answer["launch-result"]) and admin.runs().total == 0


def test_an_explorer_view_launches_once_per_measurement_after_showing_the_count(tom, measurement, files, admin):
    admin.reindex()
    view = '?template=size-report&tab=file&filter={"IN":{"project_id":["test-proj"]}}'
    page = open_page(tom, "/launch", view)
    assert "This view has 2 files of the formats size-report takes (imzML, ibd) in 1 measurements" in page
    assert "test-proj / m: 2 files" in page
    groups = [{"project_id": "test-proj", "measurement": "m", "input_ids": files},
              {"project_id": "test-proj", "measurement": "gone", "input_ids": ["no-such-file"]}]
    answer = launch(tom, request={"template": TEMPLATE, "groups": groups, "specs": []})
    text = json.dumps(answer["launch-result"])
    assert "1 runs launched of 2" in text and "no data file or measurement with id 'no-such-file'" in text


# -- runs list, run page, logs, provenance -------------------------------------------------------

def render_runs(client, query: dict):
    return post(client, "runs-list.children", [{"id": "runs-list", "property": "children"},
                                               {"id": "runs-tick", "property": "disabled"}],
                [{"id": "runs-query", "property": "data", "value": query},
                 {"id": "runs-tick", "property": "n_intervals", "value": None}])


def test_the_runs_list_filters_pages_and_refreshes_only_while_a_run_is_live(tom, ana, admin, measurement, worker):
    done = admin.launch(TEMPLATE, [measurement], {"window": "4"}).run
    run_until(worker, admin, done.id)
    queued = admin.launch(TEMPLATE, [measurement], {"window": "5"}).run
    answer = render_runs(ana, {"status": "", "offset": 0})
    text = json.dumps(answer["runs-list"], ensure_ascii=False)
    assert text.index(queued.submitter_id) < text.index(done.submitter_id) and answer["runs-tick"]["disabled"] is False
    row = text.split("wf-run-row")[1]  # the template's title and the measurement the run ran on
    assert '"Size report"' in row and '"m"' in row
    answer = render_runs(ana, {"status": "succeeded", "template": TEMPLATE, "user": done.created_by, "offset": 0})
    text = json.dumps(answer["runs-list"], ensure_ascii=False)
    assert done.submitter_id in text and queued.submitter_id not in text and answer["runs-tick"]["disabled"] is True
    assert "runs 1–1 of 1" in text
    refused = json.dumps(render_runs(ana, {"project": "secret", "offset": 0})["runs-list"])
    assert "runs-problem" in refused and "secret" in refused
    filters = post(tom, "runs-query.data", {"id": "runs-query", "property": "data"},
                   [{"id": f"runs-{k}", "property": "value", "value": v}
                    for k, v in (("status", "failed"), ("template", None), ("user", " tom "), ("project", None))],
                   [{"id": "runs-query", "property": "data", "value": {"since": "2026-12-01", "before": ""}}])
    assert filters["runs-query"]["data"] == {"status": "failed", "template": "", "user": "tom", "project": "",
                                             "since": "2026-12-01", "before": "", "offset": 0}  # a link's window kept
    day = done.created_at[:10]
    assert done.submitter_id in json.dumps(render_runs(ana, {"since": day, "offset": 0})["runs-list"])
    assert "No runs match" in json.dumps(render_runs(ana, {"before": day, "offset": 0})["runs-list"])


def test_the_run_page_shows_what_ran_its_steps_logs_outputs_and_provenance(tom, admin, measurement, sets, worker, files):
    run = admin.launch(TEMPLATE, [measurement], parameter_set_id=sets["fast-r2"]).run
    page = open_page(tom, f"/runs/{run.id}")
    assert "Queued" in page and "fast · revision 2" in page and run.template_digest in page
    done = run_until(worker, admin, run.id)
    live = post(tom, "run-live.children", [{"id": "run-live", "property": "children"},
                                           {"id": "run-tick", "property": "disabled"}],
                [{"id": "run-tick", "property": "n_intervals", "value": 1},
                 {"id": "run-refresh", "property": "data", "value": 0}],
                [{"id": "run-id", "property": "data", "value": run.id}], changed="run-tick.n_intervals")
    text = json.dumps(live["run-live"])
    assert "Succeeded" in text and live["run-tick"]["disabled"] is True and "report.json" in text
    [output] = done.output_ids
    assert f"/files/{output}/download" in text and f"/lineage/{output}" in text
    [step] = [s for s in done.steps if s.name == "measure"]
    log = tom.get(f"/runs/{run.id}/steps/{step.id}/log")
    assert log.status_code == 200 and log.mimetype == "text/plain"
    assert log.data.decode() == "No output: the step measure (Succeeded) wrote nothing to stdout or stderr (yet).\n"
    page = open_page(tom, f"/runs/{run.id}")
    assert all(f"/lineage/{f}" in page for f in files) and '"window"' in page and f"/runs/{run.id}/crate.zip" in page
    crate = tom.get(f"/runs/{run.id}/crate.zip")
    assert crate.status_code == 200 and crate.mimetype == "application/zip"
    metadata = json.loads(zipfile.ZipFile(io.BytesIO(crate.data)).read("ro-crate-metadata.json"))
    revisions = [e for e in metadata["@graph"] if e["@id"] == f"#parameter-set-{sets['fast-r2']}"]
    assert [(e["name"], e["version"]) for e in revisions] == [("fast", "2")]


def test_a_run_that_failed_qc_is_never_plain_green_and_its_report_is_shown_inline(tom, admin, measurement, worker):
    failed = run_until(worker, admin, admin.launch(TEMPLATE, [measurement], {"mode": "qc-fail"}).run.id)
    passed = run_until(worker, admin, admin.launch(TEMPLATE, [measurement], {"mode": "qc-pass"}).run.id)
    listed = render_runs(tom, {"status": "", "offset": 0})["runs-list"]
    rows = json.dumps(listed, ensure_ascii=False).split("wf-run-row")   # one row's cells per part
    failed_row = next(row for row in rows if failed.submitter_id in row)
    passed_row = next(row for row in rows if passed.submitter_id in row)
    assert "QC failed" in failed_row and "wf-succeeded wf-qc-warned" in failed_row   # amber, not green
    assert "bytes 8 (minimum 1000)" in failed_row                                   # the badge's tooltip
    assert "QC passed" in passed_row and "wf-qc-warned" not in passed_row
    page = open_page(tom, f"/runs/{failed.id}")
    assert "run-status-qc" in page and "QC failed" in page and "run-qc-checks" in page
    checks = page[page.index("QC report"):page.index("run-qc-checks")]   # the table, before its id
    assert all(text in checks for text in ('"bytes"', '"8"', "≥ 1000", '"files"', "≥ 1", '"failed"', '"passed"'))
    plain = run_until(worker, admin, admin.launch(TEMPLATE, [measurement]).run.id)
    page = open_page(tom, f"/runs/{plain.id}")
    assert "run-qc-report" not in page and "QC failed" not in page and "QC passed" not in page


def act(client, run_id: str, button: str, clicks: int | None = 1):
    return post(client, "run-action.children", [{"id": "run-action", "property": "children"},
                                                {"id": "run-force", "property": "style"},
                                                {"id": "run-refresh", "property": "data"},
                                                {"id": "run-go", "property": "href"}],
                [{"id": f"run-{b}", "property": "n_clicks", "value": clicks if b == button else None}
                 for b in ("rerun", "cancel", "retry", "force")],
                [{"id": "run-id", "property": "data", "value": run_id}], changed=f"run-{button}.n_clicks")


def test_cancel_and_retry_redrawn_by_the_live_refresh_do_nothing_until_clicked(tom, admin, measurement):
    run = admin.launch(TEMPLATE, [measurement]).run  # queued: no worker here
    assert not act(tom, run.id, "cancel", clicks=None)  # Dash calls for the new, unclicked button: no update
    assert admin.run(run.id).status == "queued"


def test_rerun_shows_the_existing_run_unless_forced_and_refusals_are_the_services(tom, ana, admin, measurement, worker):
    run = admin.launch(TEMPLATE, [measurement]).run
    run_until(worker, admin, run.id)
    again = act(tom, run.id, "rerun")
    assert "An identical run already exists" in json.dumps(again["run-action"]) and again["run-force"]["style"] == {}
    forced = act(tom, run.id, "force")
    assert forced["run-go"]["href"].startswith("/runs/") and admin.runs().total == 2
    retry = act(tom, run.id, "retry")
    assert "only a failed or cancelled run can be retried" in json.dumps(retry["run-action"])
    cancel = act(ana, forced["run-go"]["href"].removeprefix("/runs/"), "cancel")
    assert "run-refused" in json.dumps(cancel["run-action"]) and "may cancel" in json.dumps(cancel["run-action"])
    mine = act(tom, forced["run-go"]["href"].removeprefix("/runs/"), "cancel")
    assert "cancelled by tom" in json.dumps(mine["run-action"])


def test_a_user_without_read_sees_the_services_message_not_the_run_nor_its_log(ana, admin, measurement, worker):
    run = admin.launch(TEMPLATE, [measurement]).run
    done = run_until(worker, admin, run.id)
    admin.set_grant("ana", "test-proj", "")
    page = open_page(ana, f"/runs/{run.id}")
    assert "run-problem" in page and f"no run with id '{run.id}'" in page and run.template_digest not in page
    step = done.steps[0]
    assert ana.get(f"/runs/{run.id}/steps/{step.id}/log").status_code == 404
    assert ana.get(f"/runs/{run.id}/crate.zip").status_code == 404
    assert f"no node with id '{done.output_ids[0]}'" in open_page(ana, f"/lineage/{done.output_ids[0]}")


def test_provenance_goes_from_an_output_back_to_the_raw_measurement_and_forward_from_a_raw_file(
        ana, admin, measurement, worker, files, sets):
    run = admin.launch(TEMPLATE, [measurement], parameter_set_id=sets["fast-r1"]).run
    [output] = run_until(worker, admin, run.id).output_ids
    page = open_page(ana, f"/lineage/{output}")
    trail = page[:page.index("\"lineage-breadcrumbs\"")]  # the trail comes first: an output sits under its run
    assert '"/runs"' in trail and f"/runs/{run.id}" in trail and "/browse" not in trail
    ancestors = page[page.index("Made from"):page.index("Used by")]
    assert f"/runs/{run.id}" in ancestors and "/measurement/test-proj/m" in ancestors
    assert all(f"/lineage/{f}" in ancestors for f in files) and f"/lineage/{sets['fast-r1']}" in ancestors
    assert all(words in ancestors for words in ("produced", "input of run", "configured run", "source of"))
    assert "Nothing has used it yet." in page and "/files/" in page and "Produced" not in page
    raw = open_page(ana, f"/lineage/{files[0]}")
    trail = raw[:raw.index("\"lineage-breadcrumbs\"")]  # a raw file sits under its project and measurement
    assert '"/browse/test-proj"' in trail and "/measurement/test-proj/m" in trail
    used_by, produced = raw.index("Used by"), raw.index("Produced")  # the run first, then its outputs
    assert used_by < produced and f"/runs/{run.id}" in raw[used_by:produced] and f"/lineage/{output}" in raw[produced:]
    of_run = open_page(ana, f"/lineage/{run.id}")  # a run's outputs are what it produced, not what used it
    produced = of_run[of_run.index("Produced"):of_run.index("Used by")]
    assert f"/lineage/{output}" in produced and "output of run" in produced
    click = post(ana, "lineage-go.href", {"id": "lineage-go", "property": "href"},
                 [{"id": "lineage-graph", "property": "clickData",
                   "value": {"points": [{"customdata": f"/runs/{run.id}"}]}}], changed="lineage-graph.clickData")
    assert click["lineage-go"]["href"] == f"/runs/{run.id}"


def test_the_measurement_page_links_to_launch_and_to_each_files_provenance(tom, measurement, files):
    page = open_page(tom, "/measurement/test-proj/m")
    assert f"/launch?inputs={measurement}" in page and all(f"/lineage/{f}" in page for f in files)


def test_the_measurement_page_shows_the_latest_qc_verdict_and_its_history(tom, admin, measurement, worker):
    page = open_page(tom, "/measurement/test-proj/m")
    assert "No QC verdict yet" in page
    passed = run_until(worker, admin, admin.launch(TEMPLATE, [measurement], {"mode": "qc-pass"}).run.id)
    failed = run_until(worker, admin, admin.launch(TEMPLATE, [measurement], {"mode": "qc-fail"}).run.id)
    run_until(worker, admin, admin.launch(TEMPLATE, [measurement]).run.id)   # no verdict: not in the history
    page = open_page(tom, "/measurement/test-proj/m")
    latest = page[page.index("Latest QC"):page.index("measurement-qc-latest")]
    assert "QC failed" in latest and "QC passed" not in latest
    history = page[page.index("measurement-qc-latest"):page.index("measurement-qc-history")]
    assert history.index(failed.submitter_id) < history.index(passed.submitter_id)
    assert "bytes 8 (minimum 1000)" in history and history.count("/runs/") == 2


def test_the_explorer_offers_its_views_files_to_the_launch_form(tom, measurement):
    from portal.explorer import state as st

    data = st.to_data(st.State(kind="file", filter={"IN": {"project_id": ["test-proj"]}}, search="m"))
    answer = post(tom, "explore-chips.children", None, [{"id": "explore-state", "property": "data", "value": data}])
    (link,) = [json.dumps(child) for child in answer["explore-exports"]["children"]
               if child["props"].get("id") == "explore-launch"]
    assert "Run a workflow on these files" in link
    assert "/launch?tab=file&filter=%7B%22IN%22%3A%7B%22project_id%22%3A%5B%22test-proj%22%5D%7D%7D&search=m" in link
