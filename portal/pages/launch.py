"""The launch form (/launch?template=<name>&inputs=<ids>, or &tab=&filter=&search= for the files
of an explorer view): pick a template from the catalog, fill its parameters (from a saved
parameter set if you like), launch, and go to the run.

The form is built from the template as the service describes it. Each value is checked as it
is typed (type, enum, range, naming the parameter); on launch the service checks again, and its
message appears next to the parameter it names. A launch identical to a queued, running or
succeeded run starts nothing: the page says so and links to that run, with an explicit
"Run again anyway". An explorer view launches once per measurement, its count shown first.
"""
from __future__ import annotations

from types import SimpleNamespace

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from portal.explorer.widgets import section
from portal.client import get_client
from portal.controls import Choices, Select
from portal.workflows import service, widgets as w

REQUEST = "launch-request"
PARAMS = {"type": w.PARAM, "name": ALL}
HIDDEN, SHOWN = {"display": "none"}, {}

dash.register_page(__name__, path="/launch", title="Run a workflow · labcommons", name="Launch")


def layout(template: str = "", inputs: str = "", tab: str = "", filter: str = "", search: str = "", **_query):
    """The catalog, and the chosen template's form for the given inputs or explorer view."""
    view = {k: v for k, v in (("tab", tab), ("filter", filter), ("search", search)) if v}
    ids = [i for i in (inputs or "").split(",") if i]
    try:
        body = _page(template, ids, view)
    except service.FAILURES as error:
        body = [w.message(service.explain(error), "launch-problem", [("all runs", "/runs")])]
    return html.Div([html.H2("Run a workflow"), *body], className="browse workflows", id="launch-page")


def _page(name: str, ids: list[str], view: dict) -> list:
    catalog = service.templates()
    chosen = catalog.get(name)
    formats = list(chosen.input_formats) if chosen else []
    if view:
        groups = service.cohort_groups(view, formats)
        what = _cohort_summary(groups, chosen)
    elif ids:
        nodes = service.inputs(ids)
        groups = [service.Group(nodes[0]["project_id"], "", ids)]
        what = w.inputs_list(nodes)
    else:
        groups, what = [], html.Div("Open a measurement, or an explorer view, and choose "
                                    "“Run a workflow” there to pick the inputs.", className="hint", id="launch-inputs")
    parts = [section("Inputs", what),
             section("Template", w.catalog(list(catalog.values()), name, lambda t: w.launch_href(t, ids, **view)))]
    if name and chosen is None:
        parts.append(w.message(f"{name!r} is not a workflow template; choose one above", "launch-problem"))
    elif chosen is not None and groups:
        parts.append(section("Parameters", *_form(chosen, groups)))
    return parts


def _cohort_summary(groups: list[service.Group], chosen) -> html.Div:
    files = sum(len(g.input_ids) for g in groups)
    kinds = ""
    if chosen and chosen.input_formats:
        kinds = f" of the formats {chosen.name} takes ({', '.join(chosen.input_formats)})"
    text = (f"This view has {files:,} files{kinds} in {len(groups):,} measurements: "
            f"one run per measurement.")
    items = [html.Li(f"{g.label}: {len(g.input_ids)} files") for g in groups[:50]]
    more = [html.Li(f"… and {len(groups) - 50:,} more")] if len(groups) > 50 else []
    return html.Div([html.Strong(text, id="launch-count"), html.Ul(items + more)], id="launch-inputs")


def _form(template, groups: list[service.Group]) -> list:
    projects = sorted({g.project_id for g in groups})
    sets = [s for project in projects for s in service.parameter_sets(template.name, project)]
    request = {"template": template.name, "groups": [vars(g) for g in groups],
               "specs": [_spec(p) for p in template.parameters]}
    launch_text = "Launch" if len(groups) == 1 else f"Launch {len(groups):,} runs"
    return [
        dcc.Store(id=REQUEST, data=request),
        dcc.Location(id="launch-go", refresh="callback-nav"),
        html.Div([html.Label("Parameter set", className="wf-label"),
                  Select(id="launch-set", label="Parameter set", options=w.set_options(sets), value=None,
                         placeholder="none: fill the form by hand" if sets else "no saved sets for this template",
                         className="wf-input"),
                  html.Div("Picking a set fills the form with its values; the run records the set and its revision.",
                           className="hint")], className="wf-field"),
        html.Div([w.parameter_field(p) for p in template.parameters] or
                 [html.Div("This template takes no parameters.", className="hint")], id="launch-form"),
        Choices(id="launch-reuse", legend="Earlier results", multiple=True, value=["reuse"], className="wf-field",
                options=[{"label": "Reuse the outputs of identical steps of earlier runs", "value": "reuse"}]),
        html.Div([html.Button(launch_text, id="launch-submit", className="button"),
                  html.Button("Run again anyway", id="launch-force", className="button wf-secondary", style=HIDDEN)],
                 className="wf-actions"),
        dcc.Loading(html.Div(id="launch-result"), delay_show=200),
    ]


def _spec(param) -> dict:
    return {"name": param.name, "type": param.type, "enum_values": list(param.enum_values),
            "default_value": param.default_value, "is_required": param.is_required,
            "minimum": param.minimum, "maximum": param.maximum}


def _specs(request) -> dict[str, SimpleNamespace]:
    try:
        return {s["name"]: SimpleNamespace(**s) for s in request["specs"]}
    except (KeyError, TypeError):
        return {}


@callback(Output({"type": w.PARAM_CHECK, "name": ALL}, "children"), Input(PARAMS, "value"), State(PARAMS, "id"),
          State(REQUEST, "data"))
def check_inline(values, ids, request):
    """As the user types: what is wrong with each value, naming the parameter."""
    specs = _specs(request)
    return [w.check_value(specs[i["name"]], v) if i["name"] in specs else None for v, i in zip(values, ids)]


@callback(Output(PARAMS, "value"), Input("launch-set", "value"), State(PARAMS, "value"), State(PARAMS, "id"),
          prevent_initial_call=True)
def fill_from_set(set_id, values, ids):
    """A picked parameter set fills the form (parameters it does not name keep their values)."""
    if not set_id:
        return [no_update] * len(ids)
    try:
        chosen = service.set_parameters(get_client().get(set_id))
    except service.FAILURES:
        return [no_update] * len(ids)
    return [chosen.get(i["name"], v) for v, i in zip(values, ids)]


@callback(Output("launch-result", "children"), Output({"type": w.PARAM_SERVICE, "name": ALL}, "children"),
          Output("launch-go", "href"), Output("launch-force", "style"),
          Input("launch-submit", "n_clicks"), Input("launch-force", "n_clicks"),
          State(PARAMS, "value"), State(PARAMS, "id"), State("launch-set", "value"), State(REQUEST, "data"),
          State("launch-reuse", "value"), prevent_initial_call=True)
def launch(_submit, _force, values, ids, set_id, request, reuse=("reuse",)):
    """Launch once per group; the service checks everything and says what it refuses."""
    force = ctx.triggered_id == "launch-force"
    slots = {i["name"]: None for i in ids}
    try:
        template, groups = str(request["template"]), [service.Group(**g) for g in request["groups"]]
    except (KeyError, TypeError):
        problem = w.message("The form was tampered with; open it again.", "launch-problem")
        return problem, list(slots.values()), no_update, HIDDEN
    params = {i["name"]: str(v).strip() for v, i in zip(values, ids) if v is not None and str(v).strip() != ""}
    results = [_launch_one(template, g, params, set_id or "", force, "reuse" in (reuse or ())) for g in groups]
    if len(results) == 1:
        return _single(results[0], slots)
    existing = any(r.get("existing") for r in results)
    return _many(groups, results), list(slots.values()), no_update, SHOWN if existing else HIDDEN


def _launch_one(template: str, group: service.Group, params: dict, set_id: str, force: bool,
                reuse: bool = True) -> dict:
    try:
        result = get_client().launch(template, group.input_ids, params, set_id, force, reuse)
    except service.FAILURES as error:
        return {"error": service.explain(error)}
    return {"run": result.run.id, "name": result.run.submitter_id, "existing": result.existing}


def _single(result: dict, slots: dict):
    if "error" in result:
        named = w.service_fields(result["error"])
        if named and set(named) <= set(slots):
            slots.update({name: html.Span(text, className="wf-service-message") for name, text in named.items()})
            return w.message("The service refused the launch; see the parameter marked.", "launch-problem"), \
                list(slots.values()), no_update, HIDDEN
        return w.message(result["error"], "launch-problem"), list(slots.values()), no_update, HIDDEN
    if result["existing"]:
        return w.existing_notice(result["run"], result["name"], "launch-existing"), list(slots.values()), no_update, SHOWN
    started = html.Div(f"Launched {result['name']}.", id="launch-started")
    return started, list(slots.values()), w.run_href(result["run"]), HIDDEN


def _many(groups: list[service.Group], results: list[dict]) -> html.Div:
    rows = []
    for group, result in zip(groups, results):
        if "error" in result:
            outcome = html.Span(result["error"], className="wf-service-message")
        else:
            note = " (an identical run already existed)" if result["existing"] else " (launched)"
            outcome = html.Span([dcc.Link(result["name"], href=w.run_href(result["run"])), note])
        rows.append(html.Li([html.Strong(group.label), ": ", outcome]))
    started = sum(1 for r in results if "error" not in r and not r["existing"])
    return html.Div([html.Strong(f"{started:,} runs launched of {len(results):,}."), html.Ul(rows)],
                    id="launch-many")
