"""Provenance (/lineage/<node_id>): for a file (or a run, a measurement, a parameter set), what
made it (the run, that run's inputs and parameter set, back to the raw measurement) and what
was made from it (runs that used it and their outputs), drawn as a graph whose nodes open their
pages when clicked, and listed below it.

Every node is asked of the service as the signed-in user; nodes the user may not read are left
out of the graph rather than shown."""
from __future__ import annotations

from urllib.parse import unquote

import dash
from dash import Input, Output, callback, dcc, html, no_update

from portal.explorer.widgets import download_href, section
from portal.workflows import figures, service, widgets as w

GRAPH_CONFIG = {"displaylogo": False, "responsive": True}
# the dictionary's labels of the links provenance follows, as a person reads them
LINK_LABELS = {"input_files": "used", "parameter_sets": "configured_by", "workflow_runs": "generated_by",
               "measurements": "data_from"}
TYPE_TITLES = {"data_file": "data file", "workflow_run": "run", "measurement": "measurement",
               "parameter_set": "parameter set"}


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
        head.append(html.A("download", href=download_href(node["id"]), className="button", id="lineage-download"))
    figure = figures.lineage_graph(found.nodes, found.levels, found.edges, focus, w.node_href)
    parts = [dcc.Location(id="lineage-go", refresh="callback-nav"),
             html.Div(head, className="node-heading"),
             dcc.Graph(id="lineage-graph", figure=figure, config=GRAPH_CONFIG)]
    if found.truncated:
        parts.append(html.Div(f"Only the nearest {service.MAX_LINEAGE_NODES} nodes are shown.", className="hint"))
    made_from = [n for n in found.nodes if found.levels[n] < 0]
    made = [n for n in found.nodes if found.levels[n] > 0]
    parts += [section("Made from", _listing(found, made_from, "lineage-ancestors", "Nothing: this is raw data.")),
              section("Used by", _listing(found, made, "lineage-descendants", "Nothing has used it yet."))]
    return parts


def _name(node: dict) -> str:
    return node["properties"].get("file_name") or node["properties"].get("name") or node["submitter_id"]


def _listing(found: service.Lineage, ids: list[str], id_: str, empty: str) -> html.Div:
    """The nodes of one side, nearest first, each a link to its page with how it is linked."""
    if not ids:
        return html.Div(empty, className="empty", id=id_)
    ordered = sorted(ids, key=lambda n: (abs(found.levels[n]), found.nodes[n]["type"], found.nodes[n]["submitter_id"]))
    items = []
    for node_id in ordered:
        node = found.nodes[node_id]
        labels = sorted({LINK_LABELS.get(link, link) for p, c, link in found.edges if node_id in (p, c)})
        items.append(html.Li([html.Span(TYPE_TITLES.get(node["type"], node["type"]), className="wf-kind"), " ",
                              dcc.Link(_name(node), href=w.node_href(node), className="lineage-node"),
                              html.Span(f" ({', '.join(labels)})" if labels else "", className="hint")]))
    return html.Ul(items, id=id_, className="wf-lineage")


@callback(Output("lineage-go", "href"), Input("lineage-graph", "clickData"), prevent_initial_call=True)
def open_clicked(click):
    """A click on a node opens its page (the address the figure carries for it)."""
    try:
        href = click["points"][0]["customdata"]
    except (KeyError, IndexError, TypeError):
        return no_update
    return href if isinstance(href, str) and href.startswith("/") and not href.startswith("//") else no_update
