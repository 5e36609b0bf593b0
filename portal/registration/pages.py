"""The Register pages: one dataset through a form (with streamed uploads), and many in bulk.

Plain Flask pages and a small script (static/register.js) rather than Dash, because an upload
must reach the portal as a streamed request body: Dash's Upload reads the whole file into the
browser as base64. Every POST carries the CSRF token (a form field, or the X-CSRFToken header).
"""
from __future__ import annotations

from urllib.parse import parse_qs

from flask import Blueprint, current_app, jsonify, render_template, request, session
from flask_wtf.csrf import CSRFError
from thriftpy2.transport import TTransportException

from metadata.client import ERRORS
from portal.registration import dataset as registration, form as register_form, headers, uploads
from portal.client import UNREACHABLE, get_client
from portal.intake import Refusal, Request
from portal.objects import ObjectStore
from portal.registration.dataset import Refused, can_write
from portal.registration.uploads import UploadRefused

bp = Blueprint("register", __name__)


def store() -> ObjectStore:
    return ObjectStore.from_settings(current_app.config["SETTINGS"])


def measurement_type() -> dict:
    return get_client().dictionary()[register_form.MEASUREMENT]


@bp.route("/register")
def page():
    """The form: the dictionary's fields, and the experiments and samples the user may write."""
    client = get_client()
    projects = registration.writable_projects(client)
    remember_grants(client.whoami())
    experiments = [(p, e["submitter_id"]) for p in projects for e in client.nodes("experiment", p)]
    samples = [(p, s["submitter_id"]) for p in projects for s in client.nodes("sample", p)]
    return render_template("register.html", fields=register_form.fields(measurement_type()),
                           projects=projects, experiments=experiments, samples=samples,
                           formats=list(uploads.FORMATS.values()))


def remember_grants(identity) -> None:
    """Keep the session's copy of the user's grants current (upload_precheck reads it), writing
    the cookie only when they changed: a grant given after sign-in counts from this page on."""
    grants = dict(identity.grants)
    if session.get("grants") != grants:
        session["grants"] = grants


def upload_precheck(upload: Request, limit: int) -> Refusal | None:
    """The upload route's refusals that need no body and no service (portal/intake.py): sign-in,
    a write grant as the session last saw it, the declared size. The view checks again."""
    if upload.session is None:
        return Refusal(401, "session", "session: not signed in (or the session expired): sign in again")
    project = (parse_qs(upload.query).get("project") or [""])[0]
    roles, grants = upload.session.get("roles") or (), upload.session.get("grants") or {}
    if "admin" not in roles and grants.get(project) != "write":
        return Refusal(403, "project", f"project: {upload.session.get('user')} has no write access to project "
                                       f"{project!r}; ask an administrator for a write grant (then reload the page)")
    if upload.length > limit:
        return Refusal(413, "file", f"file: {upload.length} bytes is more than the allowed {limit} bytes")
    return None


@bp.route("/register/check", methods=("POST",))
def check():
    """Inline validation: the service's dry run of the measurement, messages by field."""
    body = json_object()
    fields, general = registration.check(get_client(), str(body.get("project", "")), values_of(body),
                                         measurement_type())
    return jsonify(fields=fields, general=general)


@bp.route("/register/uploads", methods=("POST",))
def upload():
    """One file as the raw request body; refused before any byte is read unless the user may write."""
    project, name = request.args.get("project", ""), request.args.get("file_name", "")
    if problem := registration.project_problem(project):
        return _refusal("project", problem, 400)
    identity = get_client().whoami()
    if not can_write(identity, project):
        return _refusal("project", f"project: {identity.user} has no write access to project {project!r}; "
                                   "ask an administrator for a write grant", 403)
    length = request.content_length
    if length is None:
        return _refusal("file", "Content-Length: send the file with its length (no chunked encoding)", 411)
    limit = current_app.config["SETTINGS"].max_upload_bytes
    if length > limit:
        return _refusal("file", f"file: {length} bytes is more than the allowed {limit} bytes", 413)
    uploads.data_format(name)  # the name, before any byte is written
    staged = uploads.stage(store(), request.stream, length, uploads.expected_md5(request.headers),
                           {"user": identity.user, "project": project, "file_name": name})
    return jsonify(upload_id=staged.upload_id, file_name=staged.file_name, data_format=staged.data_format,
                   md5sum=staged.md5sum, file_size=staged.file_size), 201


@bp.route("/register/header", methods=("POST",))
def imzml_header():
    """The measurement values an imzML's header gives: the file is the raw body, read as it streams
    and kept nowhere (the page sends it when the technician chooses it, to fill the form)."""
    project, identity = request.args.get("project", ""), get_client().whoami()
    if registration.project_problem(project) or not can_write(identity, project):
        return _refusal("project", f"project: {identity.user} has no write access to project {project!r}", 403)
    header = headers.read(request.stream, request.args.get("file_name", "the imzML"))
    return jsonify(headers.for_form(header, measurement_type()))


@bp.route("/register/uploads/<upload_id>/discard", methods=("POST",))
def discard(upload_id: str):
    """Remove a staged upload the user no longer wants (the page calls it when a step fails)."""
    try:
        staged = uploads.claim(store(), upload_id, get_client().whoami().user, request.args.get("project", ""))
    except UploadRefused as refused:
        return _refusal(refused.field, refused.message, 404)
    uploads.discard(store(), staged)
    return jsonify(discarded=upload_id)


@bp.route("/register/commit", methods=("POST",))
def commit():
    """Register the measurement and its staged files in one step, all or nothing."""
    return commit_answer(json_object())


def json_object() -> dict:
    """The request's JSON body as an object ({} when it has none); UploadRefused naming `body` when
    it is something else (a list, a string, not JSON), so a script's mistake is said, not a 500."""
    body = request.get_json(silent=True, force=True)
    if body is None and not request.content_length:
        return {}
    if not isinstance(body, dict):
        got = "text that is not JSON" if body is None else f"a JSON {type(body).__name__}"
        raise UploadRefused("body", f'body: give a JSON object such as {{"project": ..., "values": {{...}}}}, not {got}')
    return body


def values_of(body: dict) -> dict:
    """The body's `values`: field name -> value."""
    values = body.get("values") or {}
    if not isinstance(values, dict):
        raise UploadRefused("values", "values: give the measurement's fields as a JSON object of field name to value")
    return values


def uploads_of(body: dict) -> list[str]:
    """The body's `uploads`: the upload ids to register."""
    ids = body.get("uploads") or []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise UploadRefused("uploads", "uploads: give the upload ids as a JSON list of strings")
    return ids


def commit_answer(body: dict):
    """Register what a commit body names (the form's, or the API's with "measurement" for an
    existing one) as the signed-in caller; the answer names the measurement's page."""
    project = str(body.get("project", ""))
    result = registration.register(get_client(), store(), get_client().whoami().user, project,
                                   values_of(body), uploads_of(body),
                                   measurement_type(), existing=str(body.get("measurement") or "").strip())
    measurement = registration.measurement_of(result)
    return jsonify(registered=measurement, project=project, href=f"/measurement/{project}/{measurement}",
                   created=result.created)


def _refusal(field: str, message: str, status: int):
    return jsonify(fields={field: [message]}, general=[]), status


@bp.errorhandler(UploadRefused)
def upload_refused(refused: UploadRefused):
    return _refusal(refused.field, refused.message, refused.status)


@bp.errorhandler(Refused)
def registration_refused(refused: Refused):
    return jsonify(fields=refused.fields, general=refused.general), refused.status


@bp.errorhandler(CSRFError)
def csrf_refused(_error):
    return jsonify(fields={}, general=["The page had expired or did not come from this site; reload it."]), 400


def service_refused(error):
    """The service's own refusal (ValidationError, Forbidden, ...) or its absence: a page for
    the form's GET, JSON for the script's POSTs; a full storage is said as such."""
    if request.method != "GET" and (full := uploads.storage_full(error)):
        return upload_refused(full)
    unreachable = isinstance(error, (TTransportException, OSError))
    message = UNREACHABLE if unreachable else error.message
    status = 503 if unreachable else 403 if type(error).__name__ == "Forbidden" else 400
    if request.method == "GET":
        return render_template("problem.html", heading="Registration is not available", message=message,
                               issues=[]), status
    return jsonify(fields={}, general=[message]), status


for _error in (*ERRORS, TTransportException, OSError):
    bp.register_error_handler(_error, service_refused)


def init_app(app) -> None:
    app.register_blueprint(bp)
