"""Widgets of the workflow pages: pure functions from templates, runs and nodes to Dash
components, so they are tested without a browser or a service.

Ids carry their page's prefix: "launch-", "runs-", "run-", "lineage-".
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timezone
from urllib.parse import quote, urlencode

from dash import dcc, html

from portal.controls import Select
from portal.explorer.widgets import download_href, measurement_href
from portal.workflows.qc_text import check_amount, check_label, failing_text, run_message, shown  # noqa: F401 (pages use them from here)

PARAM = "launch-param"              # the pattern-matching id type of a parameter's input
PARAM_CHECK = "launch-param-check"  # ...of its inline check's message
PARAM_SERVICE = "launch-param-service"  # ...of the service's message about it
SERVICE_FIELD = re.compile(r"(?:^|;\s*)parameters\.([A-Za-z0-9_-]+):\s*")
RUN_FILTERS = ("status", "template", "user", "project", "since", "before")
OUTCOME_TEXT = {"passed": "QC passed", "failed": "QC failed"}
STATUS_TEXT = {"queued": "Queued", "running": "Running", "succeeded": "Succeeded", "failed": "Failed",
               "cancelled": "Cancelled"}


# -- addresses -------------------------------------------------------------------------------

def run_href(run_id: str) -> str:
    return f"/runs/{quote(run_id, safe='')}"


def lineage_href(node_id: str) -> str:
    return f"/lineage/{quote(node_id, safe='')}"


def launch_href(template: str = "", inputs: Sequence[str] = (), **view) -> str:
    """The launch form for a template and inputs (or an explorer view: tab, filter, search)."""
    params = {k: v for k, v in (("template", template), ("inputs", ",".join(inputs))) if v}
    params.update({k: v for k, v in view.items() if v})
    return "/launch" + ("?" + urlencode(params) if params else "")


def runs_query(query: dict) -> str:
    """The runs list's query string: the filters that are set, and the offset when not 0."""
    params = {k: query.get(k) for k in RUN_FILTERS if query.get(k)}
    if query.get("offset"):
        params["offset"] = str(query["offset"])
    return "?" + urlencode(params) if params else ""


def created_window(since: str, before: str, clear_href: str) -> html.Div:
    """The creation window a link chose (the dashboard's points give one), with the way to drop it."""
    if not since and not before:
        return html.Div(id="runs-window")
    parts = [f"from {since}" if since else "", f"before {before}" if before else ""]
    return html.Div([f"Runs created {' '.join(p for p in parts if p)} · ",
                     dcc.Link("any date", href="/runs" + clear_href)], className="hint", id="runs-window")


def crate_href(run_id: str) -> str:
    return f"/runs/{quote(run_id, safe='')}/crate.zip"


def log_href(run_id: str, step_id: str) -> str:
    return f"/runs/{quote(run_id, safe='')}/steps/{quote(step_id, safe='')}/log"


def node_href(node: dict) -> str:
    """Where a provenance node leads: a run's page, a measurement's page, else its own lineage."""
    if node["type"] == "workflow_run":
        return run_href(node["id"])
    if node["type"] == "measurement":
        return measurement_href(node["project_id"], node["submitter_id"])
    return lineage_href(node["id"])


# -- checks ----------------------------------------------------------------------------------

def check_value(param, raw) -> str | None:
    """What is wrong with a parameter's value, naming it (as the service would); None if fine.
    An empty value leaves the default (or, for a required one, is wrong)."""
    text = "" if raw is None else str(raw).strip()
    if text == "":
        return f"{param.name}: required" if param.is_required and not param.default_value else None
    if param.enum_values and text not in param.enum_values:
        return f"{param.name}: {text!r} is not allowed; choose one of {', '.join(param.enum_values)}"
    if param.type in ("integer", "number"):
        try:
            value = int(text) if param.type == "integer" else float(text)
        except ValueError:
            return f"{param.name}: {text!r} is not {'an integer' if param.type == 'integer' else 'a number'}"
        if (param.minimum is not None and value < param.minimum) or (param.maximum is not None and value > param.maximum):
            return f"{param.name}: {text} is out of range; give {_bound(param.minimum)} to {_bound(param.maximum)}"
    if param.type == "boolean" and text not in ("true", "false"):
        return f"{param.name}: {text!r} is not true or false"
    return None


def _bound(value) -> str:
    if value is None:
        return "any"
    return str(int(value)) if float(value).is_integer() else str(value)


def service_fields(message: str) -> dict[str, str]:
    """The service's message by the parameter each part names (`parameters.<name>: ...`, parts
    joined by "; "); {} when it names none at its start."""
    parts = SERVICE_FIELD.split(message or "")
    if len(parts) < 3 or parts[0].strip():
        return {}
    return {name: f"parameters.{name}: {text.strip()}" for name, text in zip(parts[1::2], parts[2::2])}


# -- the launch form -------------------------------------------------------------------------

def catalog(templates: Sequence, chosen: str, href_for) -> html.Div:
    """The templates as cards: title, description, accepted inputs; the chosen one marked."""
    if not templates:
        return html.Div("No workflow templates are installed.", className="empty", id="launch-catalog")
    cards = []
    for t in templates:
        accepts = ", ".join(t.input_formats) or "any data files"
        cards.append(html.Div([
            html.Div([html.Strong(t.title or t.name), html.Code(t.name, className="wf-name")]),
            html.Div(t.description or "", className="hint"),
            html.Div(f"Takes: {accepts}" + ("" if t.standard else " · outside the standard set: analysts only"),
                     className="wf-accepts"),
            html.Span("chosen", className="wf-chosen") if t.name == chosen
            else dcc.Link("Choose", href=href_for(t.name), className="button", id=f"launch-choose-{t.name}"),
        ], className="wf-card" + (" wf-card-chosen" if t.name == chosen else "")))
    return html.Div(cards, className="wf-catalog", id="launch-catalog")


def parameter_field(param, value: str = "") -> html.Div:
    """One parameter's input: a dropdown for an enum or boolean, a number box with min/max for
    numbers, a text box otherwise; its description, unit and default beside it."""
    id_ = {"type": PARAM, "name": param.name}
    value = value or param.default_value or ""
    if param.enum_values or param.type == "boolean":
        choices = list(param.enum_values) or ["true", "false"]
        control = Select(id=id_, label=param.name, options=[{"label": c, "value": c} for c in choices],
                         value=value or None, clearable=not param.is_required, className="wf-input")
    elif param.type in ("integer", "number"):
        # text, not type=number: the browser would drop a wrong value before the inline check saw it
        control = dcc.Input(id=id_, type="text", inputMode="decimal", value=value, className="wf-input")
    else:
        control = dcc.Input(id=id_, type="text", value=value, className="wf-input")
    hint = [param.description or ""]
    if param.type in ("integer", "number"):
        hint.append(_range_text(param))
    if param.default_value:
        hint.append(f"default {param.default_value}")
    label = param.name + (f" ({param.unit})" if param.unit else "") + (" *" if param.is_required else "")
    return html.Div([
        html.Label(label, className="wf-label"), control,
        html.Div(" · ".join(h for h in hint if h), className="hint"),
        html.Div(id={"type": PARAM_CHECK, "name": param.name}, className="wf-check"),
        html.Div(id={"type": PARAM_SERVICE, "name": param.name}, className="wf-check"),
    ], className="wf-field", id=f"launch-field-{param.name}")


def _range_text(param) -> str:
    kind = "whole number" if param.type == "integer" else "number"
    if param.minimum is None and param.maximum is None:
        return kind
    return f"{kind} from {_bound(param.minimum)} to {_bound(param.maximum)}"


def set_options(sets: Sequence[dict]) -> list[dict]:
    """The parameter-set picker's options: name, revision, notes; newest revision first as given."""
    options = []
    for node in sets:
        p = node["properties"]
        text = f"{p.get('name')} · revision {p.get('revision') or 1}" + (f" — {p['notes']}" if p.get("notes") else "")
        options.append({"label": text, "value": node["id"]})
    return options


def inputs_list(nodes: Sequence[dict]) -> html.Ul:
    """The inputs a launch names (a measurement or data files), each linked to its page."""
    items = [html.Li([dcc.Link(n["submitter_id"], href=node_href(n)), f" · {n['type']}",
                      f" · {n['properties'].get('data_format')}" if n["properties"].get("data_format") else ""])
             for n in nodes]
    return html.Ul(items, className="wf-inputs", id="launch-inputs")


def existing_notice(run_id: str, submitter_id: str, id_: str) -> html.Div:
    """What a launch that matched a run says: no new run was started; open that one."""
    return html.Div([html.Strong("An identical run already exists; nothing new was started. "),
                     dcc.Link(f"Open run {submitter_id}", href=run_href(run_id), id=f"{id_}-link"),
                     html.Span(" — or choose “Run again anyway” to start another.", className="hint")],
                    className="wf-notice", id=id_)


# -- runs ------------------------------------------------------------------------------------

def status_badge(status: str, id_: str | None = None, qc_failed: bool = False) -> html.Span:
    """The execution status; a run that succeeded but failed QC is amber, never plain green."""
    extra = {"id": id_} if id_ else {}
    return html.Span(STATUS_TEXT.get(status, status or "unknown"),
                     className=f"wf-badge wf-{status}" + (" wf-qc-warned" if qc_failed else ""), **extra)


def outcome_badge(run, id_: str | None = None) -> html.Span | str:
    """The run's verdict apart from its status: "QC failed" (red, its checks as the tooltip),
    "QC passed", or nothing when the run has no verdict."""
    if run.outcome not in OUTCOME_TEXT:
        return ""
    extra = {"id": id_} if id_ else {}
    return html.Span(OUTCOME_TEXT[run.outcome], className=f"wf-badge wf-qc-{run.outcome}",
                     title="; ".join(failing_text(c) for c in run.failed_checks or []), **extra)


def run_badges(run, id_: str | None = None) -> list:
    """Status and verdict badges side by side (ids: id_, id_-qc)."""
    return [status_badge(run.status, id_, run.outcome == "failed"),
            outcome_badge(run, f"{id_}-qc" if id_ else None)]


def runs_table(runs: Sequence, titles: dict[str, str] | None = None, inputs: dict[str, str] | None = None,
               id_: str = "runs-table") -> html.Div:
    """Runs, newest first as the service gives them: name, template (its title), what it ran on,
    status, QC, who, when."""
    if not runs:
        return html.Div("No runs match.", className="empty", id=id_)
    titles, inputs = titles or {}, inputs or {}
    head = html.Thead(html.Tr([html.Th(h) for h in ("Run", "Template", "Input", "Status", "QC", "Project", "By",
                                                      "Created", "Finished", "Message")]))
    rows = [html.Tr([html.Td(dcc.Link(r.submitter_id or r.id, href=run_href(r.id))),
                     html.Td(titles.get(r.template) or r.template, title=r.template), html.Td(inputs.get(r.id, ""), className="nowrap"),
                     html.Td(status_badge(r.status, qc_failed=r.outcome == "failed")), html.Td(outcome_badge(r)),
                     html.Td(r.project_id), html.Td(r.created_by),
                     html.Td(_when(r.created_at)), html.Td(_when(r.finished_at)),
                     html.Td(run_message(r.message), className="hint")], className="wf-run-row") for r in runs]
    return html.Table([head, html.Tbody(rows)], className="children", id=id_)


def _when(stamp: str) -> str:
    return (stamp or "").replace("T", " ")[:19]


def pager(total: int, offset: int, size: int, href_for) -> html.Div:
    """`runs 51–100 of 230` with previous/next links."""
    if total == 0:
        return html.Div(id="runs-pager")
    parts = [html.Span(f"runs {offset + 1:,}–{min(offset + size, total):,} of {total:,}")]
    if offset > 0:
        parts.append(dcc.Link("‹ newer", href=href_for(max(offset - size, 0)), id="runs-newer"))
    if offset + size < total:
        parts.append(dcc.Link("older ›", href=href_for(offset + size), id="runs-older"))
    return html.Div(parts, className="wf-pager", id="runs-pager")


def qc_history(runs: Sequence, id_: str = "measurement-qc") -> html.Div:
    """The latest QC verdict as a badge, then each run with an outcome, newest first."""
    if not runs:
        return html.Div("No QC verdict yet: no run with a verdict has used these files.", className="empty", id=id_)
    rows = [[dcc.Link(r.submitter_id or r.id, href=run_href(r.id)), r.template, _when(r.finished_at),
             outcome_badge(r), "; ".join(failing_text(c) for c in r.failed_checks or [])] for r in runs]
    return html.Div([html.Div(["Latest QC: ", outcome_badge(runs[0], f"{id_}-latest")], className="wf-status"),
                     _simple_table(["Run", "Template", "Finished", "QC", "Failing checks"], rows, f"{id_}-history", "")],
                    id=id_)


QC_IMAGES = (("tic", "run-qc-image", "Total ion current per pixel"),
             ("missing", "run-qc-missing", "Pixels: grey acquired, red without a spectrum, orange not in the .ibd"),
             ("ppm", "run-qc-ppm", "Mass error per pixel, ppm: blue below 0, red above, black not measured"))


def qc_report(report: dict, images: dict[str, str] | None = None) -> html.Div:
    """A verdict report inline: each check with its value, threshold and result; what the report
    says of the dataset (grid, mode, polarity, m/z range, mass accuracy, lines, top peaks); and its
    images (TIC, missing pixels, ppm map) that the run registered, by name -> download address."""
    rows = [[html.Span(check_label(c.get("metric", "")), title=c.get("metric", "")),
             check_amount(c.get("metric", ""), c.get("value")), _threshold(c), _result(c)]
            for c in report.get("checks") or [] if isinstance(c, dict)]
    parts = [_simple_table(["Check", "Value", "Threshold", "Result"], rows, "run-qc-checks", "The report names no checks.")]
    facts = qc_facts(report)
    if facts:
        parts.append(_simple_table(["", ""], facts, "run-qc-facts", ""))
    scales = image_scales(report)
    figures = [html.Figure([html.Img(src=href, alt=caption, className="wf-qc-image", id=id_),
                            html.Figcaption(caption + scales.get(name, ""))])
               for name, id_, caption in QC_IMAGES if (href := (images or {}).get(name))]
    if figures:
        parts.append(html.Div(figures, className="wf-qc-images"))
    return html.Div(parts, className="wf-qc-report", id="run-qc-report")


def image_scales(report: dict) -> dict[str, str]:
    """What the QC images' colours stand for, in numbers: the TIC image runs its viridis from the
    lowest pixel to the highest, the ppm map saturates at twice the mass-error threshold (qc_merge)."""
    tic = [v for v in (report.get("pixels") or {}).get("tic") or [] if isinstance(v, (int, float))]
    limit = next((c.get("maximum") for c in report.get("checks") or []
                  if isinstance(c, dict) and c.get("metric") == "mass_error_ppm"), None)
    scales = {"tic": f" (dark {min(tic):,.0f}, yellow {max(tic):,.0f})"} if tic else {}
    if isinstance(limit, (int, float)):
        scales["ppm"] = f"; full colour at ±{2 * limit:g} ppm"
    return scales


def _result(check: dict) -> html.Span:
    status = check.get("status") or ("passed" if check.get("passed") else "failed")
    tone = {"passed": "passed", "failed": "failed"}.get(status, "none")
    return html.Span(status, className=f"wf-badge wf-qc-{tone}")


def qc_facts(report: dict) -> list[list]:
    """(label, text) rows of what an ims-qc report says of its dataset; none for other reports."""
    m, d = report.get("metrics") or {}, report.get("dataset") or {}
    if not d:
        return []
    rows = [("Spectra", f"{m.get('spectra_readable')} of {m.get('spectra')} readable"),
            ("Pixel grid", _grid_text(d.get("grid") or {}, m)),
            ("Spectra kind", f"{d.get('mode')}, {d.get('spectrum_type') or 'spectrum type not stated'}"),
            ("Polarity", d.get("polarity") or "not stated"),
            ("m/z range", " – ".join(f"{v:.4f}" for v in d.get("mz_range") or []) or "none"),
            ("imzML + ibd", _pair_text(report.get("pair") or {})),
            ("Mass accuracy", _accuracy_text(report.get("mass_accuracy") or {})),
            ("Lines", _lines_text(report.get("profiles") or {})),
            ("Top peaks (m/z)", ", ".join(f"{p['mz']:.4f}" for p in (report.get("mean_spectrum") or {}).get("top_peaks", [])))]
    return [[label, text] for label, text in rows]


def _grid_text(grid: dict, m: dict) -> str:
    (x0, x1), (y0, y1) = grid.get("x") or (0, -1), grid.get("y") or (0, -1)
    return (f"{x1 - x0 + 1} × {y1 - y0 + 1} pixels, {m.get('pixels_missing', 0)} missing, "
            f"{m.get('pixels_unreadable', 0)} not in the .ibd")


def _pair_text(pair: dict) -> str:
    if not pair:
        return "not checked"
    compared = ", ".join(pair.get("checked") or []) or "nothing"
    if problems := pair.get("problems"):
        return f"do not belong together ({compared} compared): " + "; ".join(problems)
    return f"belong together ({compared} compared)"


def _accuracy_text(accuracy: dict) -> str:
    if not accuracy.get("assessed"):
        return "not assessed: no reference ion found"
    found = [i["name"] for i in accuracy.get("ions", []) if i.get("found")]
    return (f"median {shown(accuracy['median_ppm'])} ppm, spread {shown(accuracy['spread_ppm'])} ppm over "
            f"{accuracy.get('pixels_measured')} pixels; ions found: {', '.join(found)}")


def _lines_text(lines: dict) -> str:
    counts = [(len(lines.get(f"dropped_{n}s", [])), n) for n in ("row", "column")]
    dropped = [f"{count} {noun if count == 1 else noun + 's'} dropped" for count, noun in counts]
    return ", ".join(dropped) + ("; TIC gradient flagged" if lines.get("gradient_flagged") else "")


def _threshold(check: dict) -> str:
    bounds = [(check["direction"], check.get("threshold"))] if check.get("direction") in ("minimum", "maximum") \
        else [(k, check[k]) for k in ("minimum", "maximum") if check.get(k) is not None]
    metric = check.get("metric", "")
    return ", ".join(f"{'≥' if k == 'minimum' else '≤'} {check_amount(metric, v)}" for k, v in bounds)


def run_facts(run, pset: dict | None, template_title: str) -> html.Table:
    """What exactly ran: template and digest, parameters, the parameter set and its revision."""
    if run.parameter_set_id:
        name = pset["properties"].get("name") if pset else run.parameter_set_id
        set_cell = [f"{name} · revision {run.parameter_set_revision or 1}"]
    else:
        set_cell = ["none"]
    rows = [("Template", [template_title or run.template, " ", html.Code(run.template)]),
            ("Template digest", html.Code(run.template_digest, id="run-digest")),
            ("Parameter set", html.Span(set_cell, id="run-parameter-set")),
            ("Launched", f"{_when(run.created_at)} by {run.created_by}"), ("Attempt", str(run.attempt or 1))]
    return html.Table(html.Tbody([html.Tr([html.Th(k), html.Td(v)]) for k, v in rows]), className="properties",
                      id="run-facts")


def parameters_table(parameters: dict[str, str]) -> html.Div:
    rows = [[name, html.Code(value)] for name, value in sorted(parameters.items())]
    return _simple_table(["Parameter", "Value"], rows, "run-parameters", "This run takes no parameters.")


def files_list(nodes: Sequence[dict], id_: str, empty: str) -> html.Div:
    """Files (inputs or outputs) with their download and their provenance."""
    rows = [[html.A(n["properties"].get("file_name") or n["submitter_id"], href=download_href(n["id"])),
             n["properties"].get("data_format", ""), n["properties"].get("data_category", ""),
             dcc.Link("provenance", href=lineage_href(n["id"]), className="wf-lineage-link")] for n in nodes]
    return _simple_table(["File", "Format", "Category", ""], rows, id_, empty)


def steps_table(run) -> html.Div:
    """Each step (not the step groups): phase, start and finish, exit code, attempts, message (and
    the image the host's tools stood in for, on the local engine), its log."""
    rows = [[s.name, status_badge(_phase_status(s.phase)) if s.phase else "", _when(s.started_at), _when(s.finished_at),
             "" if s.exit_code < 0 else str(s.exit_code), str(s.attempts or ""), _message(s),
             html.A("log", href=log_href(run.id, s.id), target="_blank") if s.log_url else ""]
            for s in run.steps if not _STEP_GROUP.fullmatch(s.name or "")]
    return _simple_table(["Step", "Phase", "Started", "Finished", "Exit code", "Attempts", "Message", "Log"], rows,
                         "run-steps", "No steps have started yet.")


def run_times(run) -> html.Span:
    """When the run started and finished, and how long it took (or has taken so far)."""
    parts = [f"started {_when(run.started_at)}" if run.started_at else "not started yet"]
    if run.finished_at:
        parts.append(f"finished {_when(run.finished_at)}")
    took = _seconds_between(run.started_at, run.finished_at)
    if took is not None:
        parts.append(f"took {_duration(took)}" if run.finished_at else f"running for {_duration(took)}")
    return html.Span(" · ".join(parts), className="hint", id="run-times")


def _seconds_between(start: str, end: str) -> float | None:
    if not start:
        return None
    try:
        begun = datetime.fromisoformat(start.replace("Z", "+00:00"))
        ended = datetime.fromisoformat(end.replace("Z", "+00:00")) if end else datetime.now(timezone.utc)
    except ValueError:
        return None
    return max(0.0, (ended - begun).total_seconds())


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s" if minutes else f"{secs} s"


def action_styles(run) -> tuple[dict, dict]:
    """Cancel only while a run may still be stopped; Retry only after it failed or was cancelled."""
    shown, hidden = {}, {"display": "none"}
    return (shown if run.status in ("queued", "running") and not run.cancel_requested else hidden,
            shown if run.status in ("failed", "cancelled") else hidden)


def _message(step):
    """The step's message, the image the host's tools stood in for, and the run it reused."""
    replaced = getattr(step, "replaced_image", "")
    note = f"ran with the host's tools, not image {replaced}" if replaced else ""
    text = "; ".join(filter(None, [step.message, note]))
    source = getattr(step, "reused_from_run", "")
    if not source:
        return text
    reused = html.Span(["reused from ", dcc.Link(f"run {source}", href=run_href(source)),
                        f" (step {step.reused_from_step})"], className="wf-reused")
    return [f"{text}; ", reused] if text else reused


_STEP_GROUP = re.compile(r"\[\d+\]")


def _phase_status(phase: str) -> str:
    return {"Succeeded": "succeeded", "Failed": "failed", "Error": "failed", "Running": "running",
            "Pending": "queued"}.get(phase, phase.lower())


def _simple_table(headers, rows, id_: str, empty: str) -> html.Div:
    if not rows:
        return html.Div(empty, className="empty", id=id_)
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in headers])),
                       html.Tbody([html.Tr([html.Td(c) for c in row]) for row in rows])],
                      className="children", id=id_)


def message(text: str, id_: str, links: Sequence[tuple[str, str]] = ()) -> html.Div:
    body = [html.Strong(text)] + [dcc.Link(t, href=h, className="message-link") for t, h in links]
    return html.Div(body, className="message", id=id_)
