""""Open in Jupyter": hand a measurement or an experiment to the user's notebook server.

GET /jupyter/open/<kind>/<project>/<submitter_id> checks, as the user, that the service lets
them read the node (else shows the service's reason), then shows a page whose script asks
POST /jupyter/start to start the user's server through the hub's REST API (as the hub service
`labcommons-portal`, scoped to users, auth state and servers) and polls GET /jupyter/status
until it is ready. Status then writes a starter notebook for the context (nbformat, through the
server's contents API, so it works for local and Kubernetes servers alike) and answers with the
notebook's address, where the browser goes; the hub signs it in through the portal (SSO).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import quote

import nbformat
import requests
from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from flask_login import current_user
from nbformat import v4

from metadata.client import ERRORS
from metadata.idl import metadata_thrift as T
from portal import oauth
from portal.client import get_client

bp = Blueprint("jupyter", __name__, url_prefix="/jupyter")
KINDS = ("measurement", "experiment")
FOLDER = "labcommons"
HUB_TIMEOUT_SECONDS = 30  # the hub answers a start at once (slow_spawn_timeout 0), after its pre-spawn refresh
HUB_DOWN = "JupyterHub cannot be reached at {url}; it may be stopped or starting. Try again in a moment."
SPAWN_FAILED = ("Your notebook server stopped while it was starting. Retry; if it fails again, an administrator "
                "can find why in the hub's log.")
HUB_SLOW = "JupyterHub at {url} did not answer within {seconds} s; it may be overloaded. Try again in a moment."


class HubError(RuntimeError):
    """The hub did not do what was asked; the message says what to tell the user."""


@dataclass
class Hub:
    """The hub's REST API as the portal's hub service (a thin adapter; no state)."""
    url: str
    token: str

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return requests.request(method, f"{self.url}/hub/api{path}", timeout=HUB_TIMEOUT_SECONDS,
                                    headers={"Authorization": f"token {self.token}"}, **kwargs)
        except requests.Timeout:
            raise HubError(HUB_SLOW.format(url=self.url, seconds=HUB_TIMEOUT_SECONDS)) from None
        except requests.RequestException:
            raise HubError(HUB_DOWN.format(url=self.url)) from None

    def prepare_user(self, name: str, auth_state: dict) -> None:
        """Make sure the hub knows the user, with a fresh grant in their auth state."""
        if self.call("GET", f"/users/{quote(name)}").status_code == 404:
            self._expect(self.call("POST", f"/users/{quote(name)}"), "create your hub account", 201, 409)
        self._expect(self.call("PATCH", f"/users/{quote(name)}", json={"auth_state": auth_state}),
                     "hand your token to the hub", 200)

    def start(self, name: str) -> None:
        response = self.call("POST", f"/users/{quote(name)}/server")
        if response.status_code == 400 and "already running" in response.text:
            return
        self._expect(response, "start your notebook server", 201, 202)

    def server(self, name: str) -> dict:
        """The user's default server as the hub reports it ({} when none)."""
        response = self._expect(self.call("GET", f"/users/{quote(name)}"), "ask about your server", 200)
        return response.json().get("servers", {}).get("", {})

    def put_contents(self, name: str, path: str, model: dict) -> None:
        """Write into the user's server (the hub service may access servers)."""
        url = f"{self.url}/user/{quote(name)}/api/contents/{quote(path)}"
        headers = {"Authorization": f"token {self.token}"}
        try:
            if requests.get(url, headers=headers, params={"content": 0}, timeout=HUB_TIMEOUT_SECONDS).ok:
                return  # keep what the user already has (and may have edited)
            response = requests.put(url, json=model, headers=headers, timeout=HUB_TIMEOUT_SECONDS)
        except requests.RequestException:
            raise HubError(HUB_DOWN.format(url=self.url)) from None
        self._expect(response, f"write {path}", 200, 201)

    @staticmethod
    def _expect(response: requests.Response, doing: str, *ok: int) -> requests.Response:
        if response.status_code not in ok:
            raise HubError(f"JupyterHub could not {doing} ({response.status_code}: {_reason(response)}).")
        return response


def _reason(response: requests.Response) -> str:
    try:
        return response.json().get("message", "")[:200]
    except ValueError:
        return response.text[:200]


def hub() -> Hub:
    settings = current_app.config["SETTINGS"]
    return Hub(settings.hub_api_base_url, settings.hub_secret("portal-service-token"))


def starter_notebook(kind: str, node: dict, measurements: list[dict] = ()) -> nbformat.NotebookNode:
    """A notebook for one measurement or experiment (given its measurements, imaged first): load
    a few spectra with the notebook helper, plot one, smooth and pick peaks with parameters in a
    cell, and save them as a parameter set."""
    md, code = v4.new_markdown_cell, v4.new_code_cell
    dataset = f"{kind} {node['submitter_id']}"
    cells = [
        md(f"# {dataset} (project `{node['project_id']}`)\n\nMade by the labcommons portal's *Open in Jupyter*. "
           "The helper reads the metadata service's address and your token from this server's environment "
           "(docs/notebooks.md)."),
        code(f"import labcommons\n\nlc = labcommons.connect()\n{_dataset_lines(kind, node, measurements)}"
             "spectra = lc.dataset(DATASET).spectra(limit=5)\nlen(spectra)"),
        code("import plotly.graph_objects as go\n\nmz, intensity = spectra.mz[0], spectra.intensity[0]\n"
             "go.Figure(go.Scatter(x=mz, y=intensity), layout={'xaxis_title': 'm/z', 'yaxis_title': 'intensity'})"),
        md("## Processing parameters\nThe `ims-preprocess` workflow's own parameters: change them, re-run the "
           "cells below, and save them when the peaks look right."),
        code('params = {"smoothing": "gaussian", "smoothing-window": 1.0, "snr": 3}'),
        code("import numpy as np\n\n"
             "# a preview of the workflow's smoothing and peak picking on this spectrum\n"
             "step = float(np.median(np.diff(mz))) or 1.0\n"
             "width = max(1, int(round(params['smoothing-window'] / step)))\n"
             "smoothed = np.convolve(intensity, np.ones(width) / width, mode='same') "
             "if params['smoothing'] != 'none' else intensity\n"
             "noise = float(np.median(np.abs(smoothed - np.median(smoothed)))) or 1.0\n"
             "peaks = [i for i in range(1, len(smoothed) - 1) if smoothed[i] > smoothed[i - 1]\n"
             "         and smoothed[i] >= smoothed[i + 1] and smoothed[i] / noise >= params['snr']]\n"
             "len(peaks)"),
        md("Save the parameters as a named set (a new revision when the name exists); technicians pick it "
           "in the workflow form. Saving needs write access to the project."),
        code(f'saved = lc.save_parameter_set(template="ims-preprocess", name={node["submitter_id"] + "-tuned"!r},\n'
             '                              params=params, dataset=DATASET, notes="tuned in the starter notebook")\n'
             "saved.revision"),
    ]
    notebook = v4.new_notebook(cells=cells)
    notebook.metadata["labcommons"] = {"kind": kind, "id": node["id"], "project_id": node["project_id"],
                                       "submitter_id": node["submitter_id"]}
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def _dataset_lines(kind: str, node: dict, measurements) -> str:
    """DATASET: the measurement itself, or an experiment's first measurement (the helper reads
    spectra of a measurement), with the others listed to try."""
    if kind == "measurement":
        return f"DATASET = {node['id']!r}  # measurement {node['submitter_id']}\n"
    listed = "".join(f"    {m['id']!r},  # {m['submitter_id']}\n" for m in measurements)
    return (f"# the measurements of experiment {node['submitter_id']}\nMEASUREMENTS = [\n{listed}]\n"
            "DATASET = MEASUREMENTS[0]\n")


def experiment_measurements(node: dict) -> list[dict]:
    """An experiment's measurements the user may read, those with an imzML file first."""
    client = get_client()
    own = [m for m in client.nodes("measurement", node["project_id"])
           if any(link["target_id"] == node["id"] for link in m["links"])]
    imaged = {link["target_id"] for f in client.nodes("data_file", node["project_id"])
              if f["properties"].get("data_format") == "imzML" for link in f["links"]}
    return sorted(own, key=lambda m: (m["id"] not in imaged, m["submitter_id"]))


def open_button(kind: str, project: str, submitter_id: str, id_: str):
    """The "Open in Jupyter" link for a page (a full page load: /jupyter/open is a Flask view)."""
    from dash import html
    href = f"/jupyter/open/{kind}/{quote(project, safe='')}/{quote(submitter_id, safe='')}"
    return html.Div(html.A("Open in Jupyter", href=href, className="button", id=id_), className="jupyter-open")


def notebook_path(kind: str, submitter_id: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in submitter_id)
    return f"{FOLDER}/{kind}-{safe}.ipynb"


def readable_node(kind: str, project: str, submitter_id: str) -> dict:
    """The node as the user may read it; the service's exception otherwise."""
    if kind not in KINDS:
        raise T.NotFound(message=f"nothing to open for {kind!r}", code="not_found")
    node = get_client().find(project, submitter_id)
    if node["type"] != kind:
        raise T.NotFound(message=f"{submitter_id!r} is a {node['type']}, not a {kind}", code="not_found")
    return node


@bp.route("/open/<kind>/<project>/<path:submitter_id>")
def open_page(kind: str, project: str, submitter_id: str):
    """The progress page, once the service has said the user may read the node."""
    try:
        node = readable_node(kind, project, submitter_id)
    except T.Unauthenticated:
        raise
    except ERRORS as refused:
        status = 403 if isinstance(refused, T.Forbidden) else 404
        return render_template("problem.html", heading="This cannot be opened in Jupyter",
                               message=refused.message[:1].upper() + refused.message[1:] + ".",
                               back=request.referrer or "/browse"), status
    return render_template("jupyter.html", kind=kind, node=node, hub_url=current_app.config["SETTINGS"].hub_public_url)


@bp.route("/start", methods=["POST"])
def start():
    """Start (or find running) the user's server; the page polls /status next."""
    body = request.get_json(silent=True) or {}
    readable_node(body.get("kind", ""), body.get("project", ""), body.get("submitter_id", ""))
    grant = oauth.issue(oauth.GrantUser(current_user.name, current_user.token))
    hub().prepare_user(current_user.name, auth_state(current_user.name, grant))
    hub().start(current_user.name)
    return jsonify(started=True, at=time.time())


def auth_state(name: str, grant: dict) -> dict:
    """Auth state as oauthenticator keeps it; the hub's pre-spawn refresh fills in oauth_user
    (with a token minted just then) through /oauth/userinfo."""
    return {"access_token": grant["access_token"], "refresh_token": grant["refresh_token"], "id_token": None,
            "scope": [oauth.SCOPE], "token_response": grant, "oauth_user": {"name": name}}


@bp.route("/status")
def status():
    """Whether the server is up; once it is, the starter notebook is written and its URL given."""
    kind, project, submitter_id = (request.args.get(k, "") for k in ("kind", "project", "submitter_id"))
    node = readable_node(kind, project, submitter_id)
    server = hub().server(current_user.name)
    if not server.get("ready"):
        if not server.get("pending"):  # the start was accepted, so the spawn has failed since
            raise HubError(SPAWN_FAILED)
        return jsonify(ready=False, message="starting your notebook server")
    path = notebook_path(kind, submitter_id)
    measurements = experiment_measurements(node) if kind == "experiment" else []
    hub().put_contents(current_user.name, FOLDER, {"type": "directory"})
    hub().put_contents(current_user.name, path, {"type": "notebook", "format": "json",
                                                 "content": starter_notebook(kind, node, measurements)})
    public = current_app.config["SETTINGS"].hub_public_url  # the browser's address, not the portal's way in
    url = f"{public}/user/{quote(current_user.name)}/lab/tree/{quote(path)}"
    return jsonify(ready=True, url=url, path=path)


@bp.errorhandler(HubError)
def hub_failed(error: HubError):
    return jsonify(error=str(error)), 503


@bp.errorhandler(T.Forbidden)
@bp.errorhandler(T.NotFound)
@bp.errorhandler(T.ValidationError)
def refused(error):
    """The service refused the user (no grant, no such node): its reason, for the page to show."""
    return jsonify(error=error.message), 403 if isinstance(error, T.Forbidden) else 404


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
