"""File downloads: only for users the service lets read the file, only from the file's project's
folder (or prefix) of the storage root, with HTTP range requests (resumable downloads, and readers
that seek into large files).

A local file, or the range asked for, is handed to the server's event loop (wsgi.file_wrapper,
positioned at the range's start; waitress sends Content-Length bytes from there), so a slow
reader costs a socket and no worker thread. An object in an S3 store is streamed by the worker
thread: reading it may wait on the network, which the loop must not.
"""
from __future__ import annotations

import os

from flask import Blueprint, abort, current_app, render_template, request, send_file
from thriftpy2.transport import TTransportException
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import FileWrapper

from metadata.client import ERRORS
from metadata.idl import metadata_thrift as T
from portal.client import UNREACHABLE, get_client
from portal.objects import ObjectStore
from ground.storage import NotReadable, object_key, open_checked, resolve

bp = Blueprint("downloads", __name__)
STATUS = {T.NotFound: 404, T.Forbidden: 403, T.Unauthenticated: 401}
CHUNK_BYTES = 1024 * 1024


@bp.route("/files/<file_id>/download")
def download(file_id: str):
    """The file's bytes, after the service has returned its node to the signed-in user."""
    try:
        node = get_client().get(file_id)
    except ERRORS as error:
        return _refused(error.message, STATUS.get(type(error), 400))
    except (TTransportException, OSError):
        return _refused(UNREACHABLE, 503)
    if node["type"] != "data_file":
        abort(404)
    props = node["properties"]
    try:
        if props.get("storage_url", "").startswith("s3://"):
            return _send_object(props, node["project_id"])
        path = resolve(props.get("storage_url", ""), _settings().storage_root, node["project_id"])
        handle = open_checked(path)
    except NotReadable as reason:
        return _refused(str(reason), 404)
    except OSError as error:  # replaced by a link, or gone, since it was resolved
        return _refused(f"{props.get('file_name') or 'the file'} cannot be read: {error.strerror}", 404)
    stat = os.fstat(handle.fileno())
    return file_response(handle, stat.st_size, props.get("file_name") or path.name,
                         props.get("md5sum") or f"{stat.st_size}-{stat.st_mtime_ns}", stat.st_mtime, on_loop=True)


def read_small(node: dict, limit: int) -> bytes:
    """Up to limit bytes of a data file the service returned to the user (a report to show
    inline), from the file's project's folder or prefix; NotReadable or OSError when it cannot."""
    props = node["properties"]
    if props.get("storage_url", "").startswith("s3://"):
        store = ObjectStore.from_settings(_settings())
        with store.open_read(object_key(props["storage_url"], store.root, node["project_id"])) as handle:
            return handle.read(limit)
    with open_checked(resolve(props.get("storage_url", ""), _settings().storage_root, node["project_id"])) as handle:
        return handle.read(limit)


def _send_object(props: dict, project_id: str):
    """A file in the S3-compatible store, streamed through the portal, with ranges and ETag."""
    store = ObjectStore.from_settings(_settings())
    if store.scheme != "s3":
        raise NotReadable(f"{props['storage_url']} is outside the storage root (a directory); "
                          "the portal reads only files stored there")
    key = object_key(props["storage_url"], store.root, project_id)
    try:
        size, handle = store.size(key), store.open_read(key)
    except (OSError, ValueError):
        raise NotReadable(f"{props['storage_url']} is not in the storage root (the object is missing)") from None
    return file_response(handle, size, props.get("file_name") or key.rpartition("/")[2],
                         props.get("md5sum") or f"{size}-{key}", None, on_loop=False)


def file_response(handle, size: int, name: str, etag: str, modified: float | None, on_loop: bool):
    """The file, or the range asked for, as an attachment; answers Range, If-None-Match and
    If-Modified-Since. on_loop: the server's event loop sends it (a local file, never waiting)."""
    # always octet-stream: a file named x.js served as JavaScript could be loaded by a <script>
    # from this origin, which the CSP's script-src 'self' would allow (nosniff then refuses it)
    response = send_file(handle, mimetype="application/octet-stream", as_attachment=True, download_name=name,
                         conditional=False, last_modified=modified, max_age=0)
    response.response = FileWrapper(handle, CHUNK_BYTES)  # werkzeug's, seekable: a range reads only its bytes
    response.content_length = size
    response.set_etag(etag)
    try:
        response = response.make_conditional(request.environ, accept_ranges=True, complete_length=size)
    except HTTPException:
        handle.close()
        raise
    return handed_over(response, handle) if on_loop else response


def handed_over(response, handle):
    """The response with its body given to the server's file wrapper, from the range's start."""
    wrapper = request.environ.get("wsgi.file_wrapper")
    if wrapper is None or response.status_code not in (200, 206):
        return response  # no such server (tests), or no body to send (304, 412)
    handle.seek(response.content_range.start if response.status_code == 206 else 0)
    response.response = wrapper(handle, CHUNK_BYTES)
    return response


def _settings():
    return current_app.config["SETTINGS"]


def _refused(message: str, status: int):
    return render_template("problem.html", heading="This file cannot be downloaded", message=message,
                           issues=[]), status


def init_app(app) -> None:
    app.register_blueprint(bp)
