"""A run (/runs/<run_id>): its live status and step graph, each step's log, its outputs, and
exactly what it ran on and with (inputs, parameters, parameter set and revision, template
digest); Re-run, Cancel and Retry failed steps.

The page asks the service for the run as the signed-in user, so a user without read access to
its project sees the service's refusal. While the run is not final a dcc.Interval asks again.
The buttons are Dash callbacks (covered by portal/csrf.py's Origin check); the service decides
whether each is allowed and the page shows its message when it is not. Re-run is the same
launch, so it shows the existing run unless "Run again anyway" is chosen.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import unquote

import dash
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from ground.storage import NotReadable
from portal.explorer.widgets import breadcrumbs, download_href, section
from portal.client import get_client
from portal.downloads import read_small
from portal.workflows import figures, service, widgets as w

KEY = "run-id"
REFRESH_MS = 1500
HIDDEN, SHOWN = {"display": "none"}, {}
# A verdict report bigger than this is only downloaded: ims-qc reports carry per-pixel values, about
# 70 bytes a pixel (2.7 MB at 200 x 200), so this reads images of up to about 450,000 pixels inline.
MAX_REPORT_BYTES = 32 * 1024 * 1024
GRAPH_CONFIG = {"displaylogo": False, "responsive": True}


def title(run_id: str = "", **_path) -> str:
    return f"Run {unquote(run_id)} · labcommons"


dash.register_page(__name__, path_template="/runs/<run_id>", title=title, name="Run")


def layout(run_id: str = "", **_query):
    run_id = unquote(run_id or "")
    try:
        run = get_client().run(run_id)
        body = _page(run)
    except service.FAILURES as error:
        body = [w.message(service.explain(error), "run-problem", [("all runs", "/runs")])]
    return html.Div(body, className="browse workflows", id="run-page")


def _page(run) -> list:
    catalog = service.templates()
    template = catalog.get(run.template)
    pset = _node(run.parameter_set_id) if run.parameter_set_id else None
    inputs = [n for n in (_node(i) for i in run.input_ids) if n]
    return [
        breadcrumbs([("Runs", "/runs"), (run.submitter_id, None)], "run-breadcrumbs"),  # a run sits under Runs
        dcc.Store(id=KEY, data=run.id), dcc.Store(id="run-refresh", data=0),
        dcc.Location(id="run-go", refresh="callback-nav"),
        dcc.Interval(id="run-tick", interval=REFRESH_MS, disabled=run.status in service.FINAL),
        html.Div([dcc.Link("‹ all runs", href="/runs"), " · ",
                  dcc.Link("provenance graph", href=w.lineage_href(run.id), id="run-lineage"), " · ",
                  html.A("RO-Crate", href=w.crate_href(run.id), id="run-crate", download=f"run-{run.id}.crate.zip",
                         title="The run's provenance as a Workflow Run RO-Crate (zip)")], className="wf-nav"),
        html.Div([html.Div("Workflow run", className="node-type"), html.H2(run.submitter_id, className="node-name")],
                 className="node-heading"),
        html.Div(live(run), id="run-live"),
        html.Div([html.Button("Re-run", id="run-rerun", className="button"),
                  html.Button("Run again anyway", id="run-force", className="button wf-secondary", style=HIDDEN)],
                 className="wf-actions"),
        html.Div(id="run-action"),
        html.Div([section("What ran", w.run_facts(run, pset, template.title if template else "")),
                  section("Parameters", w.parameters_table(run.parameters))], className="browse-columns"),
        section("Inputs", w.files_list(inputs, "run-inputs", "The inputs are no longer readable.")),
    ]


def _node(node_id: str) -> dict | None:
    try:
        return get_client().get(node_id)
    except service.FAILURES:
        return None


def live(run) -> list:
    """What changes while the run runs: status, steps (graph and table, with logs), outputs."""
    outputs = [n for n in (_node(i) for i in run.output_ids) if n]
    none = "This run registered no outputs." if run.status in service.FINAL else "No outputs yet."
    cancel, retry = w.action_styles(run)
    return [
        html.Div(w.run_badges(run, "run-status") + [html.Span(w.run_message(run.message), className="hint", id="run-message"),
                                                    w.run_times(run)], className="wf-status"),
        html.Div([html.Button("Cancel", id="run-cancel", className="button wf-secondary", style=cancel),
                  html.Button("Retry failed steps", id="run-retry", className="button wf-secondary", style=retry)],
                 className="wf-actions"),
        *_verdict(run, outputs),
        dcc.Graph(id="run-graph", figure=figures.step_graph(run.steps), config=GRAPH_CONFIG),
        section("Steps", w.steps_table(run)),
        section("Outputs", w.files_list(outputs, "run-outputs", none)),
    ]


def _verdict(run, outputs: list[dict]) -> list:
    """The verdict report inline (a run with an outcome): the first JSON output holding checks,
    with the image it names among the outputs."""
    if not run.outcome:
        return []
    for node in (n for n in outputs if n["properties"].get("data_format") == "json"):
        try:
            report = json.loads(read_small(node, MAX_REPORT_BYTES))
        except (NotReadable, OSError, ValueError):
            continue
        if isinstance(report, dict) and isinstance(report.get("checks"), list):
            return [section("QC report", w.qc_report(report, _image_hrefs(report, outputs)))]
    return [section("QC report", html.Div("The report cannot be read here; download it below.", className="empty",
                                          id="run-qc-report"))]


def _image_hrefs(report: dict, outputs: list[dict]) -> dict[str, str]:
    """The report's images (name -> its file) that the run registered, as download addresses."""
    described = report.get("images") if isinstance(report.get("images"), dict) else {"tic": report.get("tic_image")}
    by_name = {n["properties"].get("file_name"): download_href(n["id"]) for n in outputs}
    files = {name: Path(str((image or {}).get("path", ""))).name for name, image in described.items()
             if isinstance(image, dict)}
    return {name: by_name[file] for name, file in files.items() if file in by_name}


@callback(Output("run-live", "children"), Output("run-tick", "disabled"), Input("run-tick", "n_intervals"),
          Input("run-refresh", "data"), State(KEY, "data"), prevent_initial_call=True)
def refresh(_tick, _refresh, run_id):
    """Ask the service for the run again; stop asking once it is final."""
    try:
        run = get_client().run(str(run_id))
    except service.FAILURES as error:
        return w.message(service.explain(error), "run-problem"), True
    return live(run), run.status in service.FINAL


@callback(Output("run-action", "children"), Output("run-force", "style"), Output("run-refresh", "data"),
          Output("run-go", "href"),
          Input("run-rerun", "n_clicks"), Input("run-cancel", "n_clicks"), Input("run-retry", "n_clicks"),
          Input("run-force", "n_clicks"), State(KEY, "data"), prevent_initial_call=True)
def act(_rerun, _cancel, _retry, _force, run_id):
    """A button: the service does it, or says why not (its message, as it gave it)."""
    if not any(trigger["value"] for trigger in ctx.triggered):
        # Cancel and Retry redrawn by the live refresh: Dash calls this for the new buttons, unclicked
        return no_update, no_update, no_update, no_update
    action, client = ctx.triggered_id, get_client()
    try:
        if action == "run-cancel":
            run = client.cancel_run(str(run_id))
            return html.Div(f"Cancel asked: {run.message}", id="run-done"), HIDDEN, time.monotonic(), no_update
        if action == "run-retry":
            run = client.retry_run(str(run_id))
            return html.Div(f"Queued again: {run.message}", id="run-done"), HIDDEN, time.monotonic(), no_update
        run = client.run(str(run_id))
        result = client.launch(run.template, run.input_ids, run.parameters, run.parameter_set_id,
                               force=action == "run-force")
    except service.FAILURES as error:
        return w.message(service.explain(error), "run-refused"), HIDDEN, no_update, no_update
    if result.existing:
        return w.existing_notice(result.run.id, result.run.submitter_id, "run-existing"), SHOWN, no_update, no_update
    return html.Div(f"Launched {result.run.submitter_id}.", id="run-done"), HIDDEN, no_update, w.run_href(result.run.id)
