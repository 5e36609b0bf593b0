"""File downloads: only for users the service lets read the file, only from the file's project's
folder (or prefix) of the storage root, with HTTP range requests (resumable downloads, and readers
that seek into large files)."""
from __future__ import annotations

import os

from flask import Blueprint, abort, current_app, render_template, request
from thriftpy2.transport import TTransportException
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
        handle = open_checked(resolve(props.get("storage_url", ""), _settings().storage_root, node["project_id"]))
    except NotReadable as reason:
        return _refused(str(reason), 404)
    except OSError as error:  # replaced by a link, or gone, since it was resolved
        return _refused(f"{props.get('file_name') or 'the file'} cannot be read: {error.strerror}", 404)
    return _stream(handle, os.fstat(handle.fileno()).st_size, props, props.get("md5sum") or "")


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
    return _stream(handle, size, props, props.get("md5sum") or f"{size}-{key}")


def _stream(handle, size: int, props: dict, etag: str):
    """An open file as an attachment, answering Range and If-None-Match requests."""
    # werkzeug's own FileWrapper is seekable, so a range request reads only its bytes
    response = current_app.response_class(FileWrapper(handle, CHUNK_BYTES), mimetype="application/octet-stream",
                                          direct_passthrough=True)
    response.content_length = size
    response.headers.set("Content-Disposition", "attachment", filename=props.get("file_name") or "download")
    response.set_etag(etag or str(size))
    response.cache_control.max_age = 0
    return response.make_conditional(request.environ, accept_ranges=True, complete_length=size)


def _settings():
    return current_app.config["SETTINGS"]


def _refused(message: str, status: int):
    return render_template("problem.html", heading="This file cannot be downloaded", message=message,
                           issues=[]), status


def init_app(app) -> None:
    app.register_blueprint(bp)
