"""The Parameter sets page (/parameter-sets?template=&project=): the sets the user may read, by
template and name; each revision with its parameters, author, source notebook, notes and date,
the runs that used it, and a diff between any two revisions. Admins also get a form to save a
new revision (the service checks the parameters against the template, as for notebooks)."""
from __future__ import annotations

import dash
from dash import MATCH, Input, Output, State, callback, dcc, html
from flask_login import current_user

from portal.explorer.widgets import section
from portal.client import get_client
from portal.controls import Select
from portal.workflows import service, set_widgets as sw, widgets as w

dash.register_page(__name__, path="/parameter-sets", title="Parameter sets · labcommons", name="Parameter sets")

SOURCE = "portal"   # what a revision saved from this page records as its source


def layout(template: str = "", project: str = "", **_query):
    try:
        sets = get_client().parameter_sets(project, template)
        runs = service.runs_by_revision(sets)
        templates = sorted(service.templates())
    except service.FAILURES as error:
        return html.Div([html.H2("Parameter sets"), w.message(service.explain(error), "psets-problem")],
                        className="browse workflows", id="psets-page")
    body = [html.H2("Parameter sets"), _filters(templates, template, project)]
    body += [_set_section(s, runs) for s in sets] or [html.Div(
        "No parameter sets yet. Save one from a notebook with lc.save_parameter_set(...).",
        className="empty", id="psets-empty")]
    if getattr(current_user, "is_admin", False):
        body.append(_admin_form(templates, template, project))
    return html.Div(body, className="browse workflows", id="psets-page")


def _filters(templates: list[str], chosen: str, project: str) -> html.Div:
    links = [dcc.Link("all templates", href="/parameter-sets", className="nav-link")]
    links += [dcc.Link(name, href=f"/parameter-sets?template={name}" + (f"&project={project}" if project else ""),
                       className="nav-link active" if name == chosen else "nav-link") for name in templates]
    return html.Div(links, className="wf-filters", id="psets-filters")


def _set_section(pset, runs: dict[str, list[str]]) -> html.Section:
    key = sw.set_key(pset)
    numbers = [r.revision for r in pset.revisions]
    parts = [html.Div(f"project {pset.project_id} · {len(numbers)} revision(s)", className="hint"),
             sw.revisions_table(pset.revisions, runs, f"psets-revisions-{key}")]
    if len(numbers) > 1:
        options = [{"label": f"revision {n}", "value": n} for n in numbers]
        params = {str(r.revision): r.params for r in pset.revisions}
        parts.append(html.Div([
            html.Label("Compare", className="wf-label"),
            Select(id={"type": "psets-diff-from", "set": key}, label="Compare revision", options=options,
                   value=numbers[1], clearable=False, className="wf-input"),
            html.Span("with", className="hint"),
            Select(id={"type": "psets-diff-to", "set": key}, label="with revision", options=options,
                   value=numbers[0], clearable=False, className="wf-input"),
            dcc.Store(id={"type": "psets-params", "set": key}, data=params),
            html.Div(_diff(params, numbers[1], numbers[0], key), id={"type": "psets-diff", "set": key}),
        ], className="wf-diff"))
    return section(f"{pset.template} · {pset.name}", *parts, id_=f"psets-set-{key}")


def _diff(params: dict, older, newer, key: str) -> html.Div:
    old, new = params.get(str(older)), params.get(str(newer))
    if old is None or new is None:
        return html.Div("Choose two revisions.", className="hint")
    return sw.diff_table(sw.params_diff(old, new), older, newer, f"psets-diff-table-{key}")


@callback(Output({"type": "psets-diff", "set": MATCH}, "children"),
          Input({"type": "psets-diff-from", "set": MATCH}, "value"),
          Input({"type": "psets-diff-to", "set": MATCH}, "value"),
          State({"type": "psets-params", "set": MATCH}, "data"), prevent_initial_call=True)
def on_compare(older, newer, params):
    """Two revisions picked: what changed from the first to the second."""
    key = dash.ctx.outputs_list["id"]["set"] if dash.ctx.outputs_list else ""
    return _diff(params or {}, older, newer, key)


def _choices(names: list[str]) -> list[dict]:
    """A picker's options: each name as its own label (a bare string would show an empty option)."""
    return [{"label": name, "value": name} for name in names]


def _field(text: str, control) -> html.Div:
    """A control under its visible label (a placeholder vanishes as one types)."""
    return html.Div([html.Label(text, htmlFor=control.id, className="wf-label"), control], className="wf-field")


def _admin_form(templates: list[str], template: str, project: str) -> html.Section:
    try:
        projects = sorted(n["submitter_id"] for n in get_client().nodes("project"))
    except service.FAILURES:
        projects = []
    return section("Save a revision", html.Div([
        html.Div("Saves a new revision when the parameters differ from the set's newest one. "
                 "Parameters: `name = value` lines or a JSON object.", className="hint"),
        _field("Template", Select(id="psets-form-template", label="Template", options=_choices(templates),
                                  value=template or None, placeholder="choose a template", className="wf-input")),
        _field("Project", Select(id="psets-form-project", label="Project", options=_choices(projects),
                                 value=project or None, placeholder="choose a project", className="wf-input")),
        _field("Set name", dcc.Input(id="psets-form-name", placeholder="e.g. liver-smooth", className="wf-input")),
        _field("Parameters", dcc.Textarea(id="psets-form-params", placeholder="snr = 2\nsmoothing = gaussian",
                                          className="wf-input")),
        _field("Notes", dcc.Textarea(id="psets-form-notes", placeholder="why these values", className="wf-input")),
        html.Button("Save revision", id="psets-form-save", className="button"),
        html.Div(id="psets-form-result"),
    ], className="wf-form"), id_="psets-admin")


@callback(Output("psets-form-result", "children"), Input("psets-form-save", "n_clicks"),
          State("psets-form-template", "value"), State("psets-form-project", "value"),
          State("psets-form-name", "value"), State("psets-form-params", "value"),
          State("psets-form-notes", "value"), prevent_initial_call=True)
def on_save(_clicks, template, project, name, params_text, notes):
    """Save the form as a revision, as the signed-in admin; the service's refusal in its words."""
    if not getattr(current_user, "is_admin", False):
        return w.message("Saving parameter sets from the portal needs the admin role.", "psets-form-problem")
    try:
        params = sw.parse_params(params_text)
        saved = get_client().save_parameter_set(template or "", (name or "").strip(), params, project or "",
                                                notes=notes or "", source=SOURCE)
    except ValueError as error:
        return w.message(str(error), "psets-form-problem")
    except service.FAILURES as error:
        return w.message(service.explain(error), "psets-form-problem")
    r = saved.revision
    text = (f"{r.name} already holds these parameters as revision {r.revision}." if saved.existing
            else f"Saved {r.name} · revision {r.revision}.")
    return w.message(text, "psets-form-saved", [("show it", f"/parameter-sets?template={r.template}")])
