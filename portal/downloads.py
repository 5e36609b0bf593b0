"""File downloads: only for users the service lets read the file, only from the storage root,
with HTTP range requests (resumable downloads, and readers that seek into large files)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, send_file
from thriftpy2.transport import TTransportException

from metadata.client import ERRORS
from metadata.idl import metadata_thrift as T
from portal.client import get_client
from portal.storage import NotReadable, resolve

bp = Blueprint("downloads", __name__)
STATUS = {T.NotFound: 404, T.Forbidden: 403, T.Unauthenticated: 401}


@bp.route("/files/<file_id>/download")
def download(file_id: str):
    """The file's bytes, after the service has returned its node to the signed-in user."""
    try:
        node = get_client().get(file_id)
    except ERRORS as error:
        return _refused(error.message, STATUS.get(type(error), 400))
    except (TTransportException, OSError):
        return _refused("The metadata service cannot be reached; try again in a moment.", 503)
    if node["type"] != "data_file":
        abort(404)
    props = node["properties"]
    try:
        path = resolve(props.get("storage_url", ""), current_app.config["SETTINGS"].storage_root)
    except NotReadable as reason:
        return _refused(str(reason), 404)
    # conditional=True answers Range and If-None-Match / If-Modified-Since requests
    return send_file(path, as_attachment=True, download_name=props.get("file_name") or path.name,
                     conditional=True, etag=props.get("md5sum") or True, max_age=0)


def _refused(message: str, status: int):
    return render_template("problem.html", heading="This file cannot be downloaded", message=message,
                           issues=[]), status


def init_app(app) -> None:
    app.register_blueprint(bp)
