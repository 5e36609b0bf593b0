"""Provenance (/lineage/<node_id>): for a file (or a run, a measurement, a parameter set), what
made it (the run, that run's inputs and parameter set, back to the raw measurement) and what
came of it (the runs that used it, what they produced), drawn as a graph of arrows the way data
flowed, whose nodes open their pages when clicked, and listed below it: "Made from", then
"Produced" (a run's outputs) and "Used by" (runs), each entry saying how it is linked.

Every node is asked of the service as the signed-in user; nodes the user may not read are left
out of the graph rather than shown."""
from __future__ import annotations

from urllib.parse import unquote

import dash
from dash import Input, Output, callback, dcc, html, no_update

from portal.explorer.widgets import breadcrumbs, download_href, project_href, section
from portal.workflows import figures, service, widgets as w

GRAPH_CONFIG = {"displaylogo": False, "responsive": True}
# how a node relates to its neighbour nearer the focus, by the link between them (the child's
# link to its parent: an output's `workflow_runs` names the run that produced it), read
# downstream (the node is the child: a run "used" its input) or upstream (the node is the parent)
DOWNSTREAM = {"input_files": "used", "parameter_sets": "configured by", "workflow_runs": "output of",
              "measurements": "data from"}
UPSTREAM = {"input_files": "input of", "parameter_sets": "configured", "workflow_runs": "produced",
            "measurements": "source of"}
TYPE_TITLES = {"data_file": "data file", "workflow_run": "run", "measurement": "measurement",
               "parameter_set": "parameter set"}
HERE = ("Provenance", None)


def title(node_id: str = "", **_path) -> str:
    return f"Provenance of {unquote(node_id)} · labcommons"


dash.register_page(__name__, path_template="/lineage/<node_id>", title=title, name="Provenance")


def layout(node_id: str = "", **_query):
    node_id = unquote(node_id or "")
    try:
        body = _page(service.lineage(node_id), node_id)
    except service.FAILURES as error:
        body = [w.message(service.explain(error), "lineage-problem", [("all runs", "/runs")])]
    return html.Div(body, className="browse workflows", id="lineage-page")


def _page(found: service.Lineage, focus: str) -> list:
    node = found.nodes[focus]
    head = [html.Div(f"Provenance of a {TYPE_TITLES.get(node['type'], node['type'])}", className="node-type"),
            html.H2(_name(node), className="node-name")]
    if node["type"] == "data_file":
        head.append(html.A("Download", href=download_href(node["id"]), className="button", id="lineage-download"))
    figure = figures.lineage_graph(found.nodes, found.levels, found.edges, focus, w.node_href)
    parts = [breadcrumbs(trail(found, node), "lineage-breadcrumbs"), dcc.Location(id="lineage-go", refresh="callback-nav"),
             html.Div(head, className="node-heading"),
             dcc.Graph(id="lineage-graph", figure=figure, config=GRAPH_CONFIG)]
    if found.truncated:
        parts.append(html.Div(f"Only the nearest {service.MAX_LINEAGE_NODES} nodes are shown.", className="hint"))
    made_from = [n for n in found.nodes if found.levels[n] < 0]
    parts.append(section("Made from", _listing(found, made_from, "lineage-ancestors", "Nothing: this is raw data.")))
    return parts + _downstream(found, node["type"])


def trail(found: service.Lineage, node: dict) -> list[tuple[str, str | None]]:
    """Where the node sits: a run under Runs, a run's output under its run, a parameter set under
    Parameter sets, the rest under its project (and a raw file under its measurement)."""
    parents = {link: found.nodes[p] for p, c, link in found.edges if c == node["id"] and p in found.nodes}
    if node["type"] == "workflow_run":
        return [("Runs", "/runs"), (_name(node), w.node_href(node)), HERE]
    if node["type"] == "parameter_set":
        return [("Parameter sets", "/parameter-sets"), (_name(node), None), HERE]
    if run := parents.get("workflow_runs"):
        return [("Runs", "/runs"), (_name(run), w.node_href(run)), (_name(node), None)]
    crumbs = [("Experiments", "/browse"), (node["project_id"], project_href(node["project_id"]))]
    if node["type"] == "measurement":
        return crumbs + [(_name(node), w.node_href(node)), HERE]
    if measurement := parents.get("measurements"):
        crumbs.append((_name(measurement), w.node_href(measurement)))
    return crumbs + [(_name(node), None)]


def _downstream(found: service.Lineage, focus_type: str) -> list:
    """What came of the node, nearest first: "Produced" (a run's outputs, a measurement's files,
    and the outputs of later runs) and "Used by" (the runs that used it or what it produced)."""
    later = [n for n in found.nodes if found.levels[n] > 0]
    runs = [n for n in later if found.nodes[n]["type"] == "workflow_run"]
    made = [n for n in later if n not in runs]
    sections = [(min([found.levels[n] for n in runs], default=99), "Used by",
                 _listing(found, runs, "lineage-descendants", "Nothing has used it yet."))]
    if made or focus_type in ("workflow_run", "measurement"):
        empty = "No outputs yet." if focus_type == "workflow_run" else "Nothing yet."
        sections.append((min([found.levels[n] for n in made], default=0), "Produced",
                         _listing(found, made, "lineage-outputs", empty)))
    return [section(title, listing) for _, title, listing in sorted(sections, key=lambda each: each[0])]


def _name(node: dict) -> str:
    return node["properties"].get("file_name") or node["properties"].get("name") or node["submitter_id"]


def _listing(found: service.Lineage, ids: list[str], id_: str, empty: str) -> html.Div:
    """The nodes of one side, nearest first, each a link to its page with how it is linked."""
    if not ids:
        return html.Div(empty, className="empty", id=id_)
    ordered = sorted(ids, key=lambda n: (abs(found.levels[n]), found.nodes[n]["type"], found.nodes[n]["submitter_id"]))
    items = []
    for node_id in ordered:
        node, how = found.nodes[node_id], relations(found, node_id)
        items.append(html.Li([html.Span(TYPE_TITLES.get(node["type"], node["type"]), className="wf-kind"), " ",
                              dcc.Link(_name(node), href=w.node_href(node), className="lineage-node"),
                              html.Span(f" ({'; '.join(how)})" if how else "", className="hint")]))
    return html.Ul(items, id=id_, className="wf-lineage")


def relations(found: service.Lineage, node_id: str) -> list[str]:
    """How a node is linked to its neighbours nearer the focus, in words: "output of run qc-1",
    "input of run qc-1", "used raw.imzML"."""
    level, words = found.levels[node_id], []
    for parent, child, link in sorted(found.edges):
        if node_id not in (parent, child):
            continue
        other = parent if child == node_id else child
        if other not in found.nodes or abs(found.levels[other]) >= abs(level):
            continue
        verbs = DOWNSTREAM if child == node_id else UPSTREAM
        words.append(f"{verbs.get(link, link)} {_kind_name(found.nodes[other])}")
    return sorted(set(words))


def _kind_name(node: dict) -> str:
    """A neighbour named in a relation: runs by kind and name, the rest by name."""
    return f"run {_name(node)}" if node["type"] == "workflow_run" else _name(node)


@callback(Output("lineage-go", "href"), Input("lineage-graph", "clickData"), prevent_initial_call=True)
def open_clicked(click):
    """A click on a node opens its page (the address the figure carries for it)."""
    try:
        href = click["points"][0]["customdata"]
    except (KeyError, IndexError, TypeError):
        return no_update
    return href if isinstance(href, str) and href.startswith("/") and not href.startswith("//") else no_update
