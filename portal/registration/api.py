"""The registration API for scripts (`labcommons upload`, `lc.upload`): resumable uploads and the
register step, authenticated by the caller's service token as `Authorization: Bearer <token>`.

CSRF: these views are exempt from the form token, and that is safe only because they take their
identity from the Authorization header alone and never from the session cookie. A browser adds
the cookie to a cross-site request by itself, but never an Authorization header: a cross-site
form cannot set one, and a cross-site script that sets one must first pass a CORS preflight the
portal never grants. So a request a foreign page can make arrives here without a bearer token
and is refused 401, even when the browser holds a signed-in session. (The form's own routes,
/register/uploads and /register/commit, keep the session and the CSRF token.)

Protocol (portal/registration/resumable.py; docs/registration.md, "Uploading from scripts"):
  POST   /api/uploads?project=&file_name=   Upload-Length: N      -> 201 upload_id, Upload-Offset: 0
  HEAD   /api/uploads/<id>                                         -> Upload-Offset, Upload-Length
  PATCH  /api/uploads/<id>   Upload-Offset: k, Content-MD5 (opt.)  -> 204 Upload-Offset: k + chunk
  POST   /api/uploads/<id>/complete   {"md5sum": hex}             -> the staged upload
  DELETE /api/uploads/<id>                                         -> 204, everything received removed
  POST   /api/register/check   {"project", "values"}              -> messages by field
  POST   /api/register/commit  {"project", "values" | "measurement", "uploads": [ids]}
"""
from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, g, jsonify, request
from thriftpy2.transport import TTransportException

from metadata.client import ERRORS
from metadata.idl import metadata_thrift as T
from portal.client import UNREACHABLE, PooledClient, get_client, pool
from portal.csrf import csrf
from portal.intake import Refusal, Request
from portal.registration import dataset as registration, pages, resumable, uploads
from portal.registration.dataset import Refused, can_write
from portal.registration.uploads import UploadRefused

bp = Blueprint("register_api", __name__, url_prefix="/api")
NO_STORE = {"Cache-Control": "no-store"}
BYTE_COUNT = re.compile(r"^[0-9]{1,20}$")
WITHOUT_TOKEN = ("Authorization: give your token as 'Authorization: Bearer <token>' (labcommons upload sends "
                 "LABCOMMONS_TOKEN); this API does not use the portal's sign-in session")


@bp.before_request
def bearer():
    """The request's client holds the bearer's token; the session cookie is never consulted."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _refusal("Authorization", WITHOUT_TOKEN, 401)
    g.client = PooledClient(pool(), token.strip())
    return None


def writer(project: str) -> str:
    """The caller's name, once the service says they may write `project`; refused otherwise."""
    identity = get_client().whoami()
    require_write(identity, project)
    return identity.user


def require_write(identity: T.Identity, project: str) -> None:
    if problem := registration.project_problem(project):
        raise UploadRefused("project", problem)
    if not can_write(identity, project):
        raise UploadRefused("project", f"project: {identity.user} has no write access to project {project!r}; "
                                       "ask an administrator for a write grant", 403)


@bp.route("/uploads", methods=("POST",))
def create():
    """A new resumable upload of Upload-Length bytes."""
    project, name = request.args.get("project", ""), request.args.get("file_name", "")
    user = writer(project)
    length = _integer("Upload-Length")
    upload = resumable.create(pages.store(), {"user": user, "project": project, "file_name": name}, length,
                              current_app.config["SETTINGS"].max_upload_bytes)
    headers = {"Location": f"/api/uploads/{upload.upload_id}", "Upload-Offset": "0", **NO_STORE}
    return jsonify(upload_id=upload.upload_id, offset=0, length=length, expires_at=upload.expires_at), 201, headers


@bp.route("/uploads/<upload_id>", methods=("GET",))
def status(upload_id: str):
    """Where the upload stands (HEAD gives the same headers): the offset to send from."""
    upload = _mine(upload_id)
    reached = resumable.offset(pages.store(), upload)
    headers = {"Upload-Offset": str(reached), "Upload-Length": str(upload.length), **NO_STORE}
    return jsonify(upload_id=upload.upload_id, offset=reached, length=upload.length, file_name=upload.file_name,
                   project=upload.project, expires_at=upload.expires_at), 200, headers


@bp.route("/uploads/<upload_id>", methods=("PATCH",))
def append(upload_id: str):
    """One chunk at Upload-Offset, its MD5 checked when Content-MD5 (or X-Expected-MD5) is given."""
    upload = _mine(upload_id)
    at = _integer("Upload-Offset")
    reached = resumable.append(pages.store(), upload, at, request.stream, request.content_length or 0,
                               uploads.expected_md5(request.headers))
    return Response(status=204, headers={"Upload-Offset": str(reached), **NO_STORE})


@bp.route("/uploads/<upload_id>/complete", methods=("POST",))
def complete(upload_id: str):
    """Check the whole file's MD5 and stage it for /api/register/commit."""
    upload = _mine(upload_id)
    body = pages.json_object()
    staged = resumable.complete(pages.store(), upload, str(body.get("md5sum", "")).strip().lower())
    return jsonify(upload_id=staged.upload_id, file_name=staged.file_name, data_format=staged.data_format,
                   md5sum=staged.md5sum, file_size=staged.file_size)


@bp.route("/uploads/<upload_id>", methods=("DELETE",))
def cancel(upload_id: str):
    resumable.cancel(pages.store(), _mine(upload_id))
    return Response(status=204)


def _mine(upload_id: str) -> resumable.Upload:
    """The caller's upload in progress, on a project they may still write."""
    identity = get_client().whoami()
    upload = resumable.find(pages.store(), upload_id, identity.user)
    require_write(identity, upload.project)  # a grant revoked mid-upload stops it
    return upload


def _integer(header: str) -> int:
    """A byte count header as plain ASCII digits (str.isdigit takes '²', and int() refuses 5,000 digits)."""
    raw = request.headers.get(header, "").strip()
    if not BYTE_COUNT.match(raw):
        raise UploadRefused(header, f"{header}: give a whole number of bytes, at most 20 digits 0-9 (got {raw[:40]!r})")
    return int(raw)


@bp.route("/register/check", methods=("POST",))
def check():
    """The service's dry run of a new measurement's fields, messages by field."""
    body = pages.json_object()
    project = str(body.get("project", ""))
    writer(project)
    fields, general = registration.check(get_client(), project, pages.values_of(body), pages.measurement_type())
    return jsonify(fields=fields, general=general)


@bp.route("/register/commit", methods=("POST",))
def commit():
    """Register the completed uploads with a new measurement (values) or an existing one (measurement)."""
    return pages.commit_answer(pages.json_object())


def _refusal(field: str, message: str, status: int):
    return jsonify(error=message, fields={field: [message]}, general=[]), status, NO_STORE


@bp.errorhandler(UploadRefused)
def upload_refused(refused: UploadRefused):
    answer, status, headers = _refusal(refused.field, refused.message, refused.status)
    if isinstance(refused, resumable.OffsetConflict):  # tus: a conflict says where the upload stands
        headers = {**headers, "Upload-Offset": str(refused.offset)}
    return answer, status, headers


@bp.errorhandler(Refused)
def registration_refused(refused: Refused):
    message = "; ".join([m for ms in refused.fields.values() for m in ms] + refused.general)
    return jsonify(error=message, fields=refused.fields, general=refused.general), refused.status, NO_STORE


def service_refused(error):
    """The service's refusal, or its absence, as JSON; a refused token is 401; a full storage 507."""
    if full := uploads.storage_full(error):
        return upload_refused(full)
    if isinstance(error, (TTransportException, OSError)):
        return _refusal("service", UNREACHABLE, 503)
    status = 401 if isinstance(error, T.Unauthenticated) else 403 if isinstance(error, T.Forbidden) else 400
    return _refusal("Authorization" if status == 401 else "service", error.message, status)


for _error in (*ERRORS, TTransportException, OSError):
    bp.register_error_handler(_error, service_refused)


def precheck(request: Request, form_limit: int) -> Refusal | None:
    """What portal/intake.py refuses of an API request with a body, from its headers: no verified
    bearer token, or a body over the chunk limit (PATCH) or the form limit (the JSON calls)."""
    if not request.bearer:
        return Refusal(401, "Authorization", WITHOUT_TOKEN)
    chunk = request.method == "PATCH"
    limit = resumable.MAX_CHUNK_BYTES if chunk else form_limit
    if request.length > limit:
        return Refusal(413, "Content-Length", f"Content-Length: {request.length} bytes is more than the {limit} "
                                              f"bytes allowed for one {'chunk' if chunk else 'request'}")
    return None


def init_app(app) -> None:
    csrf.exempt(bp)  # identity from the bearer header only: see the module's docstring
    app.register_blueprint(bp)
