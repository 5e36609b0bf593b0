"""Widgets of the experiments browser and the measurement page: pure functions from nodes, the
data dictionary and counts to Dash components, so they are tested without a browser or a service.

Ids carry the page's prefix: "experiments-" for the browser's levels, "measurement-" for the
measurement page. Labels, units and descriptions come from the dictionary, never from here.
"""
from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, unquote

from dash import dcc, html

from portal.explorer.figures import capitalized, number, readable_date

# A property name's last word that only repeats its unit (pixel_size_um with unit µm).
UNIT_WORDS = {"um", "hz", "percent", "mg", "years", "bytes", "mm", "ms"}
NO_VALUE = "–"


# -- addresses -------------------------------------------------------------------------------

def project_href(project: str) -> str:
    return f"/browse/{quote(project, safe='')}"


def experiment_href(project: str, experiment: str) -> str:
    return f"{project_href(project)}/experiment/{quote(experiment, safe='')}"


def measurement_href(project: str, measurement: str) -> str:
    return f"/measurement/{quote(project, safe='')}/{quote(measurement, safe='')}"


def browse_route(rest: str) -> tuple[str, ...] | None:
    """The browser level a path under /browse names: () programs, (project,), or
    (project, experiment); None for any other path."""
    parts = tuple(unquote(part) for part in (rest or "").split("/") if part)
    if len(parts) <= 1:
        return parts
    if len(parts) == 3 and parts[1] == "experiment":
        return parts[0], parts[2]
    return None


# -- text ------------------------------------------------------------------------------------

def label(name: str, spec: dict) -> str:
    """A property's label from its dictionary title (else its name) and unit: `pixel_size_um`
    -> `Pixel size (µm)`; sizes in bytes are shown as KB/MB, so their label has no unit."""
    words, unit = name.split("_"), spec.get("unit")
    if unit and len(words) > 1 and words[-1].lower() in UNIT_WORDS:
        words = words[:-1]
    text = spec.get("title") or " ".join(words)
    text = capitalized(text)
    return f"{text} ({unit})" if unit and unit != "bytes" else text


def value_text(value, spec: dict) -> str:
    """A property value for people: lists joined, numbers grouped, sizes in bytes as KB/MB/GB."""
    if value is None or value == "":
        return NO_VALUE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(value_text(v, spec) for v in value)
    if isinstance(value, (int, float)):
        if spec.get("unit") == "bytes":
            return number("file_size", value)
        return f"{int(value):,}" if float(value).is_integer() else f"{value:,.6g}"
    if spec.get("format") in ("date", "date-time"):
        return readable_date(str(value))
    return str(value)


def counted(count: int, title: str) -> str:
    """`3 measurements`, `1 data file`: a count with the dictionary title of what it counts."""
    noun = title.lower()
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


# -- widgets ---------------------------------------------------------------------------------

def breadcrumbs(trail: Sequence[tuple[str, str | None]], id_: str) -> html.Nav:
    """Where the page is: each level links up, the last is the page itself."""
    items = []
    for position, (text, href) in enumerate(trail):
        if position:
            items.append(html.Span("›", className="crumb-sep", **{"aria-hidden": "true"}))
        last = position == len(trail) - 1
        current = {"aria-current": "page"} if last else {}
        items.append(html.Span(text, className="crumb current", **current) if last or not href
                     else dcc.Link(text, href=href, className="crumb"))
    return html.Nav(items, className="breadcrumbs", id=id_, **{"aria-label": "Breadcrumb"})


def heading(type_def: dict, name: str, subtitle: str = "") -> html.Div:
    """The node's type (with the dictionary's description as a hint) and its name."""
    parts = [html.Div(type_def.get("title", ""), className="node-type", title=type_def.get("description", "")),
             html.H2(name, className="node-name")]
    if subtitle:
        parts.append(html.Div(subtitle, className="node-subtitle"))
    return html.Div(parts, className="node-heading")


def properties_table(node: dict, type_def: dict, id_: str) -> html.Table:
    """The node's properties in dictionary order, each with its label, unit and description."""
    values = node.get("properties", {})
    rows = [html.Tr([html.Th(label(name, spec), title=spec.get("description", "")),
                     html.Td(value_text(values[name], spec), className="prop-value"),
                     html.Td(spec.get("description", ""), className="prop-description")],
                    id=f"{id_}-{name}")
            for name, spec in type_def.get("properties", {}).items() if values.get(name) not in (None, "", [])]
    if not rows:
        rows = [html.Tr(html.Td("No properties recorded.", className="empty"))]
    return html.Table(html.Tbody(rows), className="properties", id=id_)


def table(headers: Sequence[str], rows: Sequence[Sequence], id_: str, empty: str) -> html.Div:
    """A plain table of child nodes (cells: text or components); `empty` when there are none."""
    if not rows:
        return html.Div(empty, className="empty", id=id_)
    head = html.Thead(html.Tr([html.Th(h) for h in headers]))
    body = html.Tbody([html.Tr([html.Td(cell) for cell in row]) for row in rows])
    return html.Table([head, body], className="children", id=id_)


def section(title: str, *children, id_: str | None = None) -> html.Section:
    extra = {"id": id_} if id_ else {}
    return html.Section([html.H3(title), *children], className="browse-section", **extra)


def message(text: str, links: Sequence[tuple[str, str]] = (), id_: str = "experiments-problem") -> html.Div:
    """A refusal or a problem, in words, with ways on; never a stack trace."""
    body = [html.Strong(text)]
    if links:
        body.append(html.Div([dcc.Link(text, href=href, className="message-link", refresh=True)
                              for text, href in links]))
    return html.Div(body, className="message", id=id_)


# -- the levels' child tables ----------------------------------------------------------------

def projects_table(program: str, projects: Sequence[dict], counts: dict[str, dict[str, int] | str]) -> html.Div:
    """A program's projects, each with its experiment and measurement counts, or the service's
    refusal where the user may not read the project."""
    rows = []
    for node in projects:
        pid, props = node["submitter_id"], node["properties"]
        numbers = counts.get(pid, {})
        if isinstance(numbers, str):
            tally = [html.Span("no read access", className="no-access", title=numbers)] * 2
        else:
            tally = [f"{numbers.get('experiment', 0):,}", f"{numbers.get('measurement', 0):,}"]
        rows.append([dcc.Link(pid, href=project_href(pid)), props.get("name", ""),
                     props.get("principal_investigator", ""), props.get("data_access", ""), *tally])
    return table(["Project", "Name", "Principal investigator", "Access", "Experiments", "Measurements"],
                 rows, f"experiments-projects-{program}", "No projects in this program yet.")


def experiments_table(project: str, experiments: Sequence[dict], measurements: dict[str, list]) -> html.Div:
    """A project's experiments, each with how many measurements it holds."""
    rows = [[dcc.Link(e["submitter_id"], href=experiment_href(project, e["submitter_id"])),
             e["properties"].get("protocol", ""), e["properties"].get("operator", ""),
             readable_date(e["properties"].get("experiment_date", "")), e["properties"].get("goal", ""),
             f"{len(measurements.get(e['id'], [])):,}"] for e in experiments]
    return table(["Experiment", "Protocol", "Operator", "Date", "Goal", "Measurements"], rows,
                 "experiments-experiments", "No experiments in this project yet.")


def measurements_table(project: str, measurements: Sequence[dict], files: dict[str, list[dict]]) -> html.Div:
    """An experiment's measurements: sample, instrument, method, raster, and their files' formats."""
    rows = []
    for m in measurements:
        props, own = m["properties"], files.get(m["id"], [])
        raster = (f"{props['raster_width']} × {props['raster_height']}"
                  if props.get("raster_width") and props.get("raster_height") else "")
        formats = ", ".join(sorted({f["properties"].get("data_format", "?") for f in own}))
        rows.append([dcc.Link(m["submitter_id"], href=measurement_href(project, m["submitter_id"])),
                     parent_name(m, "samples"), props.get("instrument", ""), props.get("ionisation", ""),
                     props.get("polarity", ""), raster, readable_date(props.get("acquisition_date", "")),
                     f"{len(own)} ({formats})" if own else "0"])
    return table(["Measurement", "Sample", "Instrument", "Ionisation", "Polarity", "Raster (pixels)",
                  "Acquired", "Files"], rows, "experiments-measurements", "No measurements in this experiment yet.")


def files_table(files: Sequence[dict], type_def: dict) -> html.Div:
    """A measurement's data files: name (a download link), format, size, category, checksum, and a
    link to the file's provenance (portal/pages/lineage.py)."""
    specs = type_def.get("properties", {})
    # a plain link, not dcc.Link: a download must leave Dash's page router
    rows = [[html.A(f["properties"].get("file_name", f["submitter_id"]), href=download_href(f["id"])),
             f["properties"].get("data_format", ""),
             value_text(f["properties"].get("file_size"), specs.get("file_size", {})),
             f["properties"].get("data_category", ""), html.Code(f["properties"].get("md5sum", "")),
             dcc.Link("provenance", href=f"/lineage/{quote(f['id'], safe='')}", className="lineage-link")] for f in files]
    return table(["File", "Format", "Size", "Category", "MD5", ""], rows, "measurement-files",
                 "No data files are registered for this measurement.")


def download_href(file_id: str) -> str:
    return f"/files/{quote(file_id, safe='')}/download"


def parent_name(node: dict, link: str) -> str:
    """The submitter_id of the parent a node's link names ("" without one)."""
    return next((each["target_submitter_id"] for each in node.get("links", []) if each["name"] == link), "")


def peaks_table(peaks: Sequence[tuple[float, float]], id_type: str) -> html.Div:
    """A spectrum's top peaks, each m/z a button (id {"type": id_type, "mz": "<m/z>"}) that asks for its ion image."""
    rows = [[html.Button(f"{mz:.4f}", id={"type": id_type, "mz": f"{mz:.4f}"}, className="link-button",
                         title="show its ion image"), f"{height:,.4g}"] for mz, height in peaks]
    return table(["m/z", "Mean intensity (a.u.)"], rows, "measurement-peaks", "The mean spectrum has no peaks.")
