"""The workflow pages' pure pieces: inline checks, the service's parameter messages, addresses,
the runs list's URL, and the step and provenance figures."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from metadata.idl import metadata_thrift as T
from portal.workflows import figures, widgets as w


def param(**kw):
    base = {"name": "window", "type": "integer", "enum_values": [], "default_value": "3", "is_required": False,
            "minimum": 1.0, "maximum": 9.0, "unit": "px", "description": ""}
    return SimpleNamespace(**{**base, **kw})


def test_inline_checks_name_the_parameter_as_the_service_does():
    assert w.check_value(param(), "5") is None and w.check_value(param(), "") is None
    assert w.check_value(param(), "0") == "window: 0 is out of range; give 1 to 9"
    assert w.check_value(param(), "2.5") == "window: '2.5' is not an integer"
    assert w.check_value(param(type="number", maximum=None), "1e3") is None
    assert w.check_value(param(type="string", enum_values=["a", "b"]), "c") == "window: 'c' is not allowed; choose one of a, b"
    assert w.check_value(param(type="boolean"), "yes") == "window: 'yes' is not true or false"
    assert w.check_value(param(type="string", default_value="", is_required=True), " ") == "window: required"


def test_a_service_message_is_placed_by_the_parameter_it_names():
    assert w.service_fields("parameters.snr-min: 0 is out of range; give 1 to 9") == \
        {"snr-min": "parameters.snr-min: 0 is out of range; give 1 to 9"}
    assert w.service_fields("parameters.a: 0 is too small; parameters.b_2: 'x' is not a number") == \
        {"a": "parameters.a: 0 is too small", "b_2": "parameters.b_2: 'x' is not a number"}
    assert w.service_fields("input_ids: no imzML file among the inputs") == {}


def test_addresses():
    assert w.launch_href("ims-qc", ["a", "b"]) == "/launch?template=ims-qc&inputs=a%2Cb"
    assert w.launch_href(tab="file", filter='{"IN":{"x":["y"]}}', search="") == \
        "/launch?tab=file&filter=%7B%22IN%22%3A%7B%22x%22%3A%5B%22y%22%5D%7D%7D"
    assert w.node_href({"type": "measurement", "id": "1", "project_id": "p q", "submitter_id": "m/1"}) == \
        "/measurement/p%20q/m%2F1"
    assert w.node_href({"type": "workflow_run", "id": "r"}) == "/runs/r"
    assert w.node_href({"type": "data_file", "id": "f"}) == "/lineage/f"


def test_parameter_sets_are_offered_with_their_revision_and_notes():
    sets = [{"id": "s2", "properties": {"name": "fast", "revision": 2, "notes": "tuned"}},
            {"id": "s1", "properties": {"name": "fast", "revision": 1}}]
    assert w.set_options(sets) == [{"label": "fast · revision 2 — tuned", "value": "s2"},
                                   {"label": "fast · revision 1", "value": "s1"}]


def step(id_, phase, children=(), name=None):
    return T.RunStep(id=id_, name=name or id_, template="t", phase=phase, children=list(children), exit_code=-1)


def test_steps_are_laid_out_by_depth_and_coloured_by_phase():
    steps = [step("main", "Running", ["a", "b"]), step("a", "Succeeded", ["c"]), step("b", "Failed"),
             step("c", "Pending")]
    boxes, edges = figures.step_boxes(steps)
    assert figures.step_levels(boxes, edges) == {"main": 0, "a": 1, "b": 1, "c": 2}
    figure = figures.step_graph(steps)
    colours = {trace.name: trace.marker.color for trace in figure.data[1:]}
    assert colours == {"Running": "#2a6f97", "Succeeded": "#2d8a4e", "Failed": "#b23a3a", "Pending": "#9aa5ad"}
    assert len(figure.layout.annotations) == len(edges) == 3  # one arrowhead per edge
    assert figures.step_graph([]).layout.annotations[0].text == "no steps yet"


def test_groups_are_passed_through_and_a_fan_out_is_one_box_with_its_counts():
    # children as Argo links them: root -> [0] -> a -> [1] -> {loop, b}; the loop's items -> [2] -> end
    items = [step(f"loop(0:{i})", phase, ["g2"], name=f"shard(0:{i})") for i, phase in
             enumerate(["Succeeded", "Succeeded", "Failed"])]
    steps = [step("root", "Failed", ["g0"], name="ims-qc-0123456789abcdef"), step("g0", "Succeeded", ["a"], name="[0]"),
             step("a", "Succeeded", ["g1"]), step("g1", "Failed", ["loop", "b"], name="[1]"),
             step("loop", "Failed", [i.id for i in items], name="shard"), *items, step("b", "Succeeded", ["g2"]),
             step("g2", "Omitted", ["end"], name="[2]"), step("end", "Omitted")]
    boxes, edges = figures.step_boxes(steps)
    shown = {b.id: b for b in boxes}
    assert set(shown) == {"root", "a", "loop", "b", "end"}
    assert set(edges) == {("root", "a"), ("a", "loop"), ("a", "b"), ("loop", "end"), ("b", "end")}
    assert (shown["loop"].label, shown["loop"].hover) == ("shard ×3", "shard: 2 succeeded, 1 failed")
    assert shown["root"].label == "ims-qc-0123456789…" and shown["root"].hover.startswith("ims-qc-0123456789abcdef")


def test_a_cycle_in_reported_steps_does_not_hang_the_layout():
    boxes, edges = figures.step_boxes([step("a", "Running", ["b"]), step("b", "Running", ["a"])])
    assert set(figures.step_levels(boxes, edges)) == {"a", "b"}


def test_the_provenance_figure_carries_each_nodes_address_and_rings_the_focus():
    nodes = {i: {"id": i, "type": t, "project_id": "p", "submitter_id": i, "properties": {}}
             for i, t in (("m", "measurement"), ("f", "data_file"), ("r", "workflow_run"), ("o", "data_file"))}
    levels = {"m": -3, "f": -2, "r": -1, "o": 0}
    edges = {("m", "f", "measurements"), ("f", "r", "input_files"), ("r", "o", "workflow_runs")}
    figure = figures.lineage_graph(nodes, levels, edges, "o", w.node_href)
    hrefs = {h for trace in figure.data[1:] for h in trace.customdata}
    assert hrefs == {"/measurement/p/m", "/lineage/f", "/runs/r", "/lineage/o"}
    files = next(trace for trace in figure.data if trace.name == "Data file")  # the legend names kinds as people do
    assert list(files.marker.line.width) == [3 if h == "/lineage/o" else 0 for h in files.customdata]
    assert list(figure.layout.xaxis.range) == [-3.6, 0.6]
    arrows = {(a.ax, a.x) for a in figure.layout.annotations if a.showarrow}  # parent -> child, left to right
    assert arrows == {(-3, -2), (-2, -1), (-1, 0)}


def test_the_runs_list_address_keeps_only_what_is_set():
    assert w.runs_query({"status": "failed", "template": "", "user": "tom", "offset": 0}) == "?status=failed&user=tom"
    assert w.runs_query({"offset": 25}) == "?offset=25" and w.runs_query({}) == ""


def test_the_catalog_marks_the_chosen_template_and_those_only_analysts_may_launch():
    import json

    from dash import dcc

    catalog = w.catalog([T.WorkflowTemplate(name="qc", title="QC", input_formats=["imzML"], standard=True),
                         T.WorkflowTemplate(name="dev", title="Dev", input_formats=[], standard=False)],
                        "qc", lambda name: f"/launch?template={name}")
    text = json.dumps(catalog.to_plotly_json(), default=lambda c: c.to_plotly_json(), ensure_ascii=False)
    assert "Takes: imzML" in text and "Takes: any data files · outside the standard set: analysts only" in text
    [choose] = [c for card in catalog.children for c in card.children if isinstance(c, dcc.Link)]
    assert choose.href == "/launch?template=dev"


def test_the_steps_table_says_which_image_the_host_s_tools_stood_in_for():
    step = T.RunStep(id="s", name="convert", template="t", phase="Succeeded", children=[], exit_code=0,
                     replaced_image="labcommons/steps:1")
    table = str(w.steps_table(SimpleNamespace(id="r1", steps=[step])))
    assert "ran with the host's tools, not image labcommons/steps:1" in table


def test_the_steps_table_marks_a_reused_step_with_a_link_to_the_run_it_came_from():
    step = T.RunStep(id="s", name="convert", template="t", phase="Succeeded", children=[], exit_code=-1,
                     reused_from_run="r0", reused_from_step="convert")
    table = str(w.steps_table(SimpleNamespace(id="r1", steps=[step])))
    assert "reused from " in table and "run r0" in table and "'/runs/r0'" in table and " (step convert)" in table


def test_a_qc_report_shows_each_check_with_its_threshold_and_the_tic_image():
    report = {"passed": False, "checks": [{"metric": "peaks_mean", "value": 0.2222222, "minimum": 1, "passed": False},
                                          {"metric": "spectra", "value": 9, "minimum": 1, "passed": True}]}
    text = str(w.qc_report(report, {"tic": "/files/f-tic/download"}))
    assert "Mean peaks per spectrum" in text and "0.222" in text and "≥ 1" in text and "wf-qc-failed" in text
    assert "/files/f-tic/download" in text and "run-qc-image" in text
    assert "run-qc-image" not in str(w.qc_report(report))
    run = T.Run(status="succeeded", outcome="failed", failed_checks=["peaks_mean 0.2222 (minimum 1)"])
    status, verdict = w.run_badges(run, "run-status")
    assert "wf-qc-warned" in status.className and verdict.children == "QC failed" and verdict.id == "run-status-qc"
    assert w.outcome_badge(T.Run(status="succeeded", outcome="")) == ""


def test_an_ims_qc_report_shows_thresholds_by_direction_the_dataset_and_its_three_images():
    report = {"passed": True, "checks": [
        {"metric": "dropped_lines", "value": 0, "threshold": 0, "direction": "maximum", "maximum": 0, "passed": True,
         "status": "passed"},
        {"metric": "mass_error_ppm", "value": None, "threshold": 5.0, "direction": "maximum", "maximum": 5.0,
         "passed": True, "status": "not assessed"}],
        "metrics": {"spectra": 9, "spectra_readable": 9, "pixels_missing": 0, "pixels_unreadable": 0},
        "dataset": {"mode": "continuous", "spectrum_type": "profile", "polarity": "positive",
                    "grid": {"x": [1, 3], "y": [1, 3]}, "mz_range": [100.0, 800.0]},
        "mass_accuracy": {"assessed": False}, "profiles": {"dropped_rows": [], "dropped_columns": [1]},
        "pair": {"checked": ["UUID", "SHA-1"], "problems": ["UUID: the ibd starts with 1, but the imzML names 2"]},
        "mean_spectrum": {"top_peaks": [{"mz": 760.5851, "intensity": 10.0}]}}
    images = {name: f"/files/f-{name}/download" for name in ("tic", "missing", "ppm")}
    text = str(w.qc_report(report, images))
    assert "≤ 5" in text and "not assessed" in text and "wf-qc-none" in text
    assert all(f"/files/f-{name}/download" in text for name in images) and "run-qc-ppm" in text
    scaled = {**report, "pixels": {"tic": [1200.4, None, 98765.0]}}  # the colours in numbers
    assert w.image_scales(scaled) == {"tic": " (dark 1,200, yellow 98,765)", "ppm": "; full colour at ±10 ppm"}
    assert "dark 1,200, yellow 98,765" in str(w.qc_report(scaled, images)) and w.image_scales({}) == {}
    facts = dict((label, value) for label, value in w.qc_facts(report))
    assert facts["Pixel grid"] == "3 × 3 pixels, 0 missing, 0 not in the .ibd"
    assert facts["Mass accuracy"] == "not assessed: no reference ion found" and facts["Top peaks (m/z)"] == "760.5851"
    assert facts["Lines"] == "0 rows dropped, 1 column dropped" and w.qc_facts({"checks": []}) == []
    assert facts["imzML + ibd"] == ("do not belong together (UUID, SHA-1 compared): "
                                    "UUID: the ibd starts with 1, but the imzML names 2")


def test_qc_checks_read_as_words_with_units_not_field_names():
    """The run page, the runs list, the badge's tooltip and the measurement's QC history name a
    check as people do, shares in percent and mass errors in ppm (the worker's text is the source)."""
    report = {"checks": [{"metric": "pixel_completeness", "value": 0.6667, "minimum": 0.8, "passed": False},
                         {"metric": "mass_error_ppm", "value": 0.5086, "maximum": 5.0, "passed": True},
                         {"metric": "tic_median", "value": 17730.4, "minimum": 0.0, "passed": True}]}
    text = str(w.qc_report(report)).replace("\\xa0", "\u00a0")  # the components' repr escapes it
    assert "Pixels with a spectrum" in text and "66.67\u00a0%" in text and "≥ 80\u00a0%" in text
    assert "0.51\u00a0ppm" in text and "≤ 5.00\u00a0ppm" in text and "17,730" in text and "1.773e+04" not in text
    assert w.failing_text("pixel_completeness 0.6667 (minimum 0.8)") == "Pixels with a spectrum 66.67\u00a0% (minimum 80\u00a0%)"
    assert w.failing_text("a check the portal does not know 3") == "a check the portal does not know 3"
    assert w.run_message("succeeded; QC failed: mass_error_ppm 10.69 (maximum 5); dropped_lines 3 (maximum 0)") == (
        "succeeded; QC failed: Median mass error (absolute) 10.69\u00a0ppm (maximum 5.00\u00a0ppm); Dropped lines 3 (maximum 0)")
    run = T.Run(id="r", submitter_id="qc-1", template="ims-qc", status="succeeded", outcome="failed",
                message="succeeded; QC failed: dropped_lines 3 (maximum 0)", failed_checks=["dropped_lines 3 (maximum 0)"])
    for shown in (w.runs_table([run]), w.qc_history([run]), w.outcome_badge(run)):
        assert "dropped_lines" not in str(shown) and "Dropped lines 3" in str(shown)


@pytest.mark.parametrize("status, cancel_requested, shown", [
    ("queued", False, {"cancel"}), ("running", False, {"cancel"}), ("running", True, set()),
    ("succeeded", False, set()), ("failed", False, {"retry"}), ("cancelled", False, {"retry"}),
])
def test_cancel_and_retry_are_offered_only_when_they_apply(status, cancel_requested, shown):
    run = T.Run(id="r", status=status, cancel_requested=cancel_requested)
    cancel, retry = w.action_styles(run)
    assert {name for name, style in (("cancel", cancel), ("retry", retry)) if style != {"display": "none"}} == shown


def test_a_run_s_times_say_how_long_it_took():
    run = T.Run(id="r", started_at="2026-12-07T05:00:00Z", finished_at="2026-12-07T05:02:05Z")
    assert w.run_times(run).children == "started 2026-12-07 05:00:00 · finished 2026-12-07 05:02:05 · took 2 min 5 s"
    assert w.run_times(T.Run(id="q", started_at="")).children == "not started yet"
