""""Open in Jupyter": hand a measurement, an experiment, a saved cohort or the explorer's view
(unsaved: "export to workspace") to the user's notebook server.

GET /jupyter/open/<kind>/<project>/<submitter_id>, /jupyter/open/cohort/<id> or
/jupyter/open/view?tab=&filter=&search= checks, as the user, that the service lets them read
what is opened (else shows the service's reason), then shows a page whose script asks
POST /jupyter/start to start the user's server through the hub's REST API (as the hub service
`labcommons-portal`, scoped to users, auth state and servers) and polls GET /jupyter/status
until it is ready, sending back the context the page was given (an `Opening`'s). Status then writes
the starter notebook (portal/notebooks/starter.py) and, for a cohort, its manifest through the server's
contents API (so it works for local and Kubernetes servers alike) and answers with the
notebook's address, where the browser goes; the hub signs it in through the portal (SSO).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

import requests
from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from flask_login import current_user

from metadata.client import ERRORS
from metadata.idl import metadata_thrift as T
from portal.explorer import exports
from portal.notebooks import oauth, starter
from portal.client import get_client
from portal.explorer import browse, queries, state as st
from portal.notebooks.starter import FOLDER

bp = Blueprint("jupyter", __name__, url_prefix="/jupyter")
KINDS = ("measurement", "experiment")
VIEW_KEYS = ("tab", "filter", "search")  # an explorer view, as in its URL
HUB_TIMEOUT_SECONDS = 30  # the hub answers a start at once (slow_spawn_timeout 0), after its pre-spawn refresh
HUB_DOWN = "JupyterHub cannot be reached at {url}; it may be stopped or starting. Try again in a moment."
SPAWN_FAILED = ("Your notebook server stopped while it was starting. Retry; if it fails again, an administrator "
                "can find why in the hub's log.")
NO_SPECTRA = ("{what} has no imzML file with its ibd, so a notebook would have no spectra to read; open one "
              "whose data files are registered")
HUB_SLOW = "JupyterHub at {url} did not answer within {seconds} s; it may be overloaded. Try again in a moment."


class HubError(RuntimeError):
    """The hub did not do what was asked; the message says what to tell the user."""


@dataclass
class Hub:
    """The hub's REST API as the portal's hub service (a thin adapter; no state)."""
    url: str
    token: str

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        """A call of the hub's REST API (path under /hub/api)."""
        return self.request(method, f"{self.url}/hub/api{path}", **kwargs)

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        """A request as the hub service, to the hub's API or a user's server behind its proxy."""
        try:
            return requests.request(method, url, timeout=HUB_TIMEOUT_SECONDS,
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

    def stop(self, name: str) -> bool:
        """Stop the user's default server: True when one was running (the hub stops it in the background)."""
        response = self.call("DELETE", f"/users/{quote(name)}/server")
        if response.status_code == 404 or (response.status_code == 400 and "not running" in response.text):
            return False  # no hub account yet, or no server
        self._expect(response, f"stop {name}'s notebook server", 202, 204)
        return True

    def server(self, name: str) -> dict:
        """The user's default server as the hub reports it ({} when none)."""
        response = self._expect(self.call("GET", f"/users/{quote(name)}"), "ask about your server", 200)
        return response.json().get("servers", {}).get("", {})

    def put_contents(self, name: str, path: str, model: dict, keep: bool = True) -> None:
        """Write into the user's server (the hub service may access servers); with `keep`, not
        over a file the user already has (and may have edited)."""
        url = f"{self.url}/user/{quote(name)}/api/contents/{quote(path)}"
        if keep and self.request("GET", url, params={"content": 0}).ok:
            return
        self._expect(self.request("PUT", url, json=model), f"write {path}", 200, 201)

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


def listed_measurements(kind: str, node: dict) -> list[dict]:
    """The measurements a node's notebook lists: an experiment's, those with spectra first (a
    measurement's notebook lists none). Refused when there are no spectra to read, for the
    notebook's first cell would raise."""
    if kind == "measurement":
        listed, imaged = [], browse.imzml_pair(browse.files_of(node)) is not None
    else:
        own = browse.by_parent("measurement", node["project_id"], "experiments").get(node["id"], [])
        with_spectra = imaged_measurements(node["project_id"])
        listed = sorted(own, key=lambda m: (m["id"] not in with_spectra, m["submitter_id"]))
        imaged = any(m["id"] in with_spectra for m in own)
    if not imaged:
        raise T.ValidationError(code="invalid", issues=[],
                                message=NO_SPECTRA.format(what=f"{kind} {node['submitter_id']!r}"))
    return listed


def imaged_measurements(project: str) -> set[str]:
    """The ids of the project's measurements with spectra a notebook can read: an imzML file with its ibd."""
    return {measurement for measurement, files in browse.by_parent("data_file", project, "measurements").items()
            if browse.imzml_pair(files)}


def open_button(kind: str, project: str, submitter_id: str, id_: str, imaged: bool):
    """The "Open in Jupyter" link for a page (a full page load: /jupyter/open is a Flask view);
    when there is nothing a notebook could read (`imaged` false), why there is no button."""
    from dash import html
    if not imaged:
        return html.Div(NO_SPECTRA.format(what=f"This {kind}"), className="jupyter-open hint", id=f"{id_}-none")
    href = f"/jupyter/open/{kind}/{quote(project, safe='')}/{quote(submitter_id, safe='')}"
    return html.Div(html.A("Open in Jupyter", href=href, className="button", id=id_), className="jupyter-open")


def readable_node(kind: str, project: str, submitter_id: str) -> dict:
    """The node as the user may read it; the service's exception otherwise."""
    node = get_client().find(project, submitter_id)
    if node["type"] != kind:
        raise T.NotFound(message=f"{submitter_id!r} is a {node['type']}, not a {kind}", code="not_found")
    return node


# -- what is opened ------------------------------------------------------------------------------

@dataclass
class Content:
    """One file written into the user's server; `keep` leaves a copy the user already has."""
    path: str
    model: dict
    keep: bool = True


@dataclass
class Opening:
    """What one hand-off opens, read as the user: the progress page's title, the context its
    script sends back to /start and /status, the starter notebook's path, and the files to write
    (built only once the server is up, the notebook first)."""
    title: str
    context: dict[str, str]
    path: str
    contents: Callable[[], list[Content]]


def opening(context: Mapping) -> Opening:
    """The opening a context names: a measurement or experiment (kind, project, submitter_id),
    a saved cohort (kind "cohort", id) or an explorer view (kind "view", tab, filter, search).
    The service's exception when it refuses the user."""
    kind = str(context.get("kind", ""))
    if kind in KINDS:
        return node_opening(kind, str(context.get("project", "")), str(context.get("submitter_id", "")))
    if kind == "cohort":
        cohort = get_client().cohort(str(context.get("id", "")))
        return cohort_opening(cohort, {"kind": "cohort", "id": cohort.id}, f"cohort “{cohort.name}”")
    if kind == "view":
        view = {key: str(context.get(key, "")) for key in VIEW_KEYS}
        cohort = view_cohort(view)
        return cohort_opening(cohort, {"kind": "view", **view}, f"the explorer's {cohort.kind} view")
    raise T.NotFound(message=f"nothing to open for {kind!r}; open a {', a '.join(KINDS)}, a cohort or a view",
                     code="not_found")


def node_opening(kind: str, project: str, submitter_id: str) -> Opening:
    node = readable_node(kind, project, submitter_id)
    measurements = listed_measurements(kind, node)
    path = starter.notebook_path(kind, node["submitter_id"])

    def contents() -> list[Content]:
        return [Content(path, notebook_model(starter.dataset_notebook(kind, node, measurements)))]
    context = {"kind": kind, "project": node["project_id"], "submitter_id": node["submitter_id"]}
    return Opening(f"{kind} {node['submitter_id']}", context, path, contents)


def view_cohort(view: dict[str, str]) -> T.Cohort:
    """An explorer view (its URL's tab, filter and search) as an unsaved cohort, once the
    service has accepted its filter."""
    try:
        kind, filter_ = queries.view_filter(view)
    except st.BadQuery as error:
        raise T.ValidationError(code="invalid", message=f"this view cannot be opened: {error}", issues=[]) from None
    get_client().hits(kind.kind, filter_, limit=1)  # a filter the service refuses is refused now, with its reason
    return T.Cohort(id="", name="", kind=kind.kind, filter_json=st.compact(filter_) if filter_ else "")


def cohort_opening(cohort: T.Cohort, context: dict[str, str], title: str) -> Opening:
    """The cohort's notebook and, rewritten at each hand-off, its manifest as the service gives
    it to this user (only files in projects they may read)."""
    path = starter.cohort_path(cohort)
    manifest = starter.manifest_path(path)

    def contents() -> list[Content]:
        rows = get_client().manifest(cohort.kind, cohort.filter_json)
        text = "".join(exports.tsv_chunks(exports.MANIFEST_FIELDS, rows))
        notebook = starter.cohort_notebook(cohort, manifest.rpartition("/")[2])
        return [Content(path, notebook_model(notebook)),
                Content(manifest, {"type": "file", "format": "text", "content": text}, keep=False)]
    return Opening(title, context, path, contents)


def notebook_model(notebook) -> dict:
    return {"type": "notebook", "format": "json", "content": notebook}


# -- views -------------------------------------------------------------------------------------

@bp.route("/open/<kind>/<project>/<path:submitter_id>")
def open_page(kind: str, project: str, submitter_id: str):
    if kind not in KINDS:  # this route opens nodes only (a cohort or a view has its own)
        return refusal_page(T.NotFound(message=f"nothing to open for {kind!r}", code="not_found"))
    return progress_page({"kind": kind, "project": project, "submitter_id": submitter_id})


@bp.route("/open/cohort/<cohort_id>")
def open_cohort(cohort_id: str):
    return progress_page({"kind": "cohort", "id": cohort_id})


@bp.route("/open/view")
def open_view():
    """The explorer's current view (its own query string: tab, filter, search), unsaved."""
    return progress_page({"kind": "view", **{key: request.args.get(key, "") for key in VIEW_KEYS}})


def progress_page(context: dict):
    """The progress page, once the service has said the user may read what is opened."""
    try:
        opened = opening(context)
    except T.Unauthenticated:
        raise
    except ERRORS as refused:
        return refusal_page(refused)
    return render_template("jupyter.html", title=opened.title, context=opened.context,
                           hub_url=current_app.config["SETTINGS"].hub_public_url)


def refusal_page(refused):
    return render_template("problem.html", heading="This cannot be opened in Jupyter",
                           message=refused.message[:1].upper() + refused.message[1:] + ".",
                           back=request.referrer or "/browse"), refusal_status(refused)


def refusal_status(refused) -> int:
    return 403 if isinstance(refused, T.Forbidden) else 400 if isinstance(refused, T.ValidationError) else 404


@bp.route("/start", methods=["POST"])
def start():
    """Start (or find running) the user's server; the page polls /status next."""
    opening(request.get_json(silent=True) or {})
    tokens, userdata = oauth.issue(oauth.GrantUser(current_user.name, current_user.token))
    the_hub = hub()  # reads the service token once per request
    the_hub.prepare_user(current_user.name, auth_state(tokens, userdata))
    the_hub.start(current_user.name)
    return jsonify(started=True, at=time.time())


def auth_state(tokens: dict, userdata: dict) -> dict:
    """Auth state as oauthenticator keeps it, complete: a server already running keeps finding
    the user's current token in it (the notebook helper renews from there), and a spawn's
    pre-spawn refresh asks /oauth/userinfo again."""
    return {"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"], "id_token": None,
            "scope": [oauth.SCOPE], "token_response": tokens, "oauth_user": userdata}


@bp.route("/status")
def status():
    """Whether the server is up; once it is, the starter notebook is written and its URL given."""
    opened = opening(request.args.to_dict())
    the_hub = hub()  # reads the service token once per request, not once per file
    server = the_hub.server(current_user.name)
    if not server.get("ready"):
        if not server.get("pending"):  # the start was accepted, so the spawn has failed since
            raise HubError(SPAWN_FAILED)
        return jsonify(ready=False, message="starting your notebook server")
    the_hub.put_contents(current_user.name, FOLDER, {"type": "directory"})
    for content in opened.contents():
        the_hub.put_contents(current_user.name, content.path, content.model, content.keep)
    public = current_app.config["SETTINGS"].hub_public_url  # the browser's address, not the portal's way in
    url = f"{public}/user/{quote(current_user.name)}/lab/tree/{quote(opened.path)}"
    return jsonify(ready=True, url=url, path=opened.path)


@bp.errorhandler(HubError)
def hub_failed(error: HubError):
    return jsonify(error=str(error)), 503


@bp.errorhandler(T.Forbidden)
@bp.errorhandler(T.NotFound)
@bp.errorhandler(T.ValidationError)
def refused(error):
    """The service refused the user (no grant, no such node): its reason, for the page to show."""
    return jsonify(error=error.message), refusal_status(error)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
