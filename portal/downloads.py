"""File downloads: only for users the service lets read the file, only from the storage root,
with HTTP range requests (resumable downloads, and readers that seek into large files)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request, send_file
from thriftpy2.transport import TTransportException
from werkzeug.wsgi import FileWrapper

from metadata.client import ERRORS
from metadata.idl import metadata_thrift as T
from portal.client import UNREACHABLE, get_client
from portal.objects import ObjectStore
from ground.storage import NotReadable, resolve

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
    if props.get("storage_url", "").startswith("s3://"):
        return _send_object(props)
    try:
        path = resolve(props.get("storage_url", ""), current_app.config["SETTINGS"].storage_root)
    except NotReadable as reason:
        return _refused(str(reason), 404)
    # conditional=True answers Range and If-None-Match / If-Modified-Since requests
    return send_file(path, as_attachment=True, download_name=props.get("file_name") or path.name,
                     conditional=True, etag=props.get("md5sum") or True, max_age=0)


def _send_object(props: dict):
    """A file in the S3-compatible store, streamed through the portal, with ranges and ETag."""
    store = ObjectStore.from_settings(current_app.config["SETTINGS"])
    key = store.key_of(props["storage_url"]) if store.scheme == "s3" else None
    if key is None:
        root = current_app.config["SETTINGS"].storage_url or "a directory"
        return _refused(f"{props['storage_url']} is outside the storage root ({root}); "
                        "the portal reads only files stored there", 404)
    try:
        size, handle = store.size(key), store.open_read(key)
    except (OSError, ValueError):
        return _refused(f"{props['storage_url']} is not in the storage root (the object is missing)", 404)
    # werkzeug's own FileWrapper is seekable, so a range request reads only its bytes
    response = current_app.response_class(FileWrapper(handle, CHUNK_BYTES), mimetype="application/octet-stream",
                                          direct_passthrough=True)
    response.content_length = size
    response.headers.set("Content-Disposition", "attachment", filename=props.get("file_name") or key.rpartition("/")[2])
    response.set_etag(props.get("md5sum") or f"{size}-{key}")
    response.cache_control.max_age = 0
    return response.make_conditional(request.environ, accept_ranges=True, complete_length=size)


def _refused(message: str, status: int):
    return render_template("problem.html", heading="This file cannot be downloaded", message=message,
                           issues=[]), status


def init_app(app) -> None:
    app.register_blueprint(bp)
