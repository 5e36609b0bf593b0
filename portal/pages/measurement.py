"""A measurement (/measurement/<project>/<submitter_id>): its instrument parameters, where it
belongs, its files, and previews of its imzML image: the total-ion-current image, beside it the
ion image of an m/z window, the mean spectrum with its top peaks, and the spectrum of the pixel
clicked on the image.

The layout asks the service for the measurement; the previews are filled in by a callback
(computed on the first visit, then read from the cache, see portal/previews/cache.py), a click on
the image asks for that pixel's spectrum, and a typed m/z (or a clicked peak, which fills it in)
for its ion image. Each callback asks the service for the measurement again, as the signed-in
user, before it reads a file.
"""
from __future__ import annotations

from urllib.parse import quote, unquote

import dash
from dash import ALL, Input, Output, Patch, State, callback, ctx, dcc, html, no_update

from ims import images
from portal.explorer import browse, widgets as w
from portal.notebooks.jupyter import open_button
from portal.previews import figures
from portal.workflows import widgets as wf

KEY = "measurement-key"
# A profile peak of a time-of-flight instrument spans tenths of a dalton; switch to ppm for
# high-resolution data.
DEFAULT_TOLERANCE = "0.25 Da"
ION_HINT = "Type an m/z, or click a peak of the mean spectrum, to see its ion image."
GRAPH_CONFIG = {"displaylogo": False, "responsive": True}


def title(project: str = "", submitter_id: str = "", **_path) -> str:
    return f"{unquote(submitter_id)} · {unquote(project)} · labcommons"


dash.register_page(__name__, path_template="/measurement/<project>/<submitter_id>", title=title, name="Measurement")


def layout(project: str = "", submitter_id: str = "", **_query):
    """The measurement's page; the service's message (and a way back) when it cannot be shown."""
    project, submitter_id = unquote(project or ""), unquote(submitter_id or "")
    try:
        body = _measurement(project, submitter_id)
    except browse.FAILURES as error:
        body = [w.message(browse.explain(error), [("all programs", "/browse")], id_="measurement-problem")]
    return html.Div(body, className="browse measurement", id="measurement-page")


def _measurement(project_id: str, submitter_id: str) -> list:
    dictionary = browse.dictionary()
    node = browse.node(project_id, submitter_id, "measurement")
    program = w.parent_name(browse.project(project_id), "programs")
    experiment = w.parent_name(node, "experiments")
    trail = [("Experiments", "/browse"), (program, "/browse"), (project_id, w.project_href(project_id)),
             (experiment, w.experiment_href(project_id, experiment)), (submitter_id, None)]
    props = node["properties"]
    method = " · ".join(str(props[k]) for k in ("instrument", "ionisation", "polarity") if props.get(k))
    files = browse.files_of(node)
    return [w.breadcrumbs(trail, "measurement-breadcrumbs"),
            w.heading(dictionary["measurement"], submitter_id, method),
            open_button("measurement", project_id, submitter_id, "measurement-jupyter",
                        imaged=browse.imzml_pair(files) is not None),
            html.Div([w.section("Instrument parameters",
                                w.properties_table(node, dictionary["measurement"], "measurement-properties")),
                      w.section("Belongs to", _belongs_to(project_id, node))], className="browse-columns"),
            w.section("Files", w.files_table(files, dictionary["data_file"])),
            w.section("Workflows", workflow_panel(node)),
            w.section("Quality control", wf.qc_history(browse.qc_runs(files))),
            w.section("Previews", dcc.Store(id=KEY, data={"project": project_id, "submitter_id": submitter_id,
                                                          "centroid": props.get("spectrum_type") == "centroid"}),
                      dcc.Loading(html.Div(id="measurement-previews"), delay_show=200))]


def _belongs_to(project_id: str, node: dict) -> html.Table:
    experiment = w.parent_name(node, "experiments")
    rows = [("Project", dcc.Link(project_id, href=w.project_href(project_id))),
            ("Experiment", dcc.Link(experiment, href=w.experiment_href(project_id, experiment))),
            ("Sample", w.parent_name(node, "samples"))]
    return html.Table(html.Tbody([html.Tr([html.Th(k), html.Td(v)]) for k, v in rows]), className="properties",
                      id="measurement-parents")


def workflow_panel(node: dict) -> html.Div:
    """A way to launch a workflow on this measurement's raw files, and to the project's runs."""
    return html.Div([dcc.Link("Run a workflow", href=wf.launch_href(inputs=[node["id"]]), className="button",
                              id="measurement-launch"),
                     html.Span(" on this measurement's files; ", className="hint"),
                     dcc.Link("runs in this project", href=f"/runs?project={quote(node['project_id'], safe='')}",
                              id="measurement-runs")], id="measurement-workflows")


def previews(preview, x: int, y: int, mz, intensity, centroid: bool = False) -> html.Div:
    """The TIC image (pixel (x, y) outlined) beside the ion image and its controls, then that pixel's
    spectrum and the mean spectrum with its top peaks (a click on one shows its ion image);
    centroid spectra as sticks."""
    peaks = images.top_peaks(preview.mz, preview.mean, centroid=centroid)
    return html.Div([
        html.Div([_graph("measurement-tic", figures.tic_figure(preview, (x, y))),
                  html.Div("Click a pixel of the image to see its spectrum.", className="hint")],
                 className="preview-image"),
        html.Div([_graph("measurement-ion", figures.empty_figure(ION_HINT, height=420)), ion_controls(),
                  html.Div(id="measurement-ion-problem", className="field-problem", role="alert")],
                 className="preview-image", id="measurement-ion-panel"),
        html.Div([_graph("measurement-pixel", figures.pixel_figure(mz, intensity, x, y, preview.binned or centroid)),
                  html.Div(id="measurement-pixel-note", className="hint"),
                  _graph("measurement-mean", figures.mean_spectrum_figure(preview, peaks, sticks=centroid)),
                  html.H4("Top peaks of the mean spectrum"), w.peaks_table(peaks, "measurement-peak")],
                 className="preview-spectra"),
    ], className="previews")


def ion_controls() -> html.Div:
    """m/z and tolerance (with its unit, ppm or Da) of the ion image; Enter, leaving a field, or
    Show draws it."""
    return html.Div([
        html.Label(["m/z ", dcc.Input(id="measurement-ion-mz", type="text", inputMode="decimal", debounce=True,
                                      placeholder="e.g. 760.585", size="10")]),
        html.Label(["± ", dcc.Input(id="measurement-ion-tolerance", type="text", debounce=True,
                                    value=DEFAULT_TOLERANCE, placeholder="5 ppm or 0.25 Da", size="10")]),
        html.Button("Show", id="measurement-ion-show", className="button")], className="ion-controls")


def _graph(id_: str, figure) -> dcc.Graph:
    return dcc.Graph(id=id_, figure=figure, config=GRAPH_CONFIG, className="preview-graph")


def _key(data) -> tuple[str, str] | None:
    """(project, submitter_id) from the page's store; None if it was tampered into something else."""
    try:
        return str(data["project"]), str(data["submitter_id"])
    except (KeyError, TypeError):
        return None


def _centroid(data) -> bool:
    """Whether the measurement's spectra are centroids (drawn as sticks); only how they are drawn."""
    return isinstance(data, dict) and data.get("centroid") is True


@callback(Output("measurement-previews", "children"), Input(KEY, "data"))
def render_previews(data):
    """The previews, starting at the brightest pixel; or why there are none."""
    key = _key(data)
    if key is None:
        return None
    try:
        preview, x, y, mz, intensity = browse.pixel_spectrum(*key)
    except browse.FAILURES as error:
        return w.message(browse.explain(error), id_="measurement-previews-problem")
    return previews(preview, x, y, mz, intensity, _centroid(data))


@callback(Output("measurement-pixel", "figure"), Output("measurement-pixel-note", "children"),
          Output("measurement-tic", "figure"), Input("measurement-tic", "clickData"), State(KEY, "data"),
          prevent_initial_call=True)
def show_pixel(click, data):
    """A click on the TIC image: that pixel's spectrum, read from the ibd file, and the pixel
    outlined on the image (a patch: the heatmap itself is not sent again)."""
    key = _key(data)
    try:
        point = click["points"][0]
        x, y = int(point["x"]), int(point["y"])
    except (KeyError, IndexError, TypeError, ValueError):
        return no_update, no_update, no_update
    if key is None:
        return no_update, no_update, no_update
    try:
        preview, x, y, mz, intensity = browse.pixel_spectrum(*key, x, y)
    except browse.FAILURES as error:
        return no_update, browse.explain(error), no_update
    marker = Patch()
    marker["layout"]["shapes"] = figures.pixel_marker(x, y)
    return figures.pixel_figure(mz, intensity, x, y, preview.binned or _centroid(data)), "", marker


@callback(Output("measurement-ion-mz", "value"), Input("measurement-mean", "clickData"),
          Input({"type": "measurement-peak", "mz": ALL}, "n_clicks"), prevent_initial_call=True)
def pick_peak(click, _peaks):
    """A click on the mean spectrum, or on a peak of the table: its m/z into the ion image's field."""
    if isinstance(ctx.triggered_id, dict):
        return ctx.triggered_id["mz"] if ctx.triggered[0]["value"] else no_update
    try:
        return f"{float(click['points'][0]['x']):.4f}"
    except (KeyError, IndexError, TypeError, ValueError):
        return no_update


@callback(Output("measurement-ion", "figure"), Output("measurement-ion-problem", "children"),
          Input("measurement-ion-mz", "value"), Input("measurement-ion-tolerance", "value"),
          Input("measurement-ion-show", "n_clicks"), State(KEY, "data"), prevent_initial_call=True)
def show_ion_image(mz, tolerance, _show, data):
    """The ion image of m/z ± tolerance (cached per file pair and window), or what is wrong with them."""
    key = _key(data)
    if key is None:
        return no_update, no_update
    if not str(mz or "").strip() and ctx.triggered_id == "measurement-ion-tolerance":
        return no_update, ""   # a tolerance set before any m/z: nothing to draw yet, nothing wrong
    try:
        query = images.typed_window("" if mz is None else mz, tolerance)
        preview, image = browse.ion_image(*key, query)
    except images.WindowError as wrong:
        return no_update, str(wrong)
    except browse.FAILURES as error:
        return no_update, browse.explain(error)
    return figures.ion_figure(preview, image, query), ""
