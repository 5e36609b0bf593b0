"""A run's Workflow Run RO-Crate as a download (/runs/<run>/crate.zip): built from what the service
returns to the signed-in user (metadata/run_crate.py), so it names only what they may read."""
from __future__ import annotations

import tempfile
from io import BytesIO
from pathlib import Path

from flask import Blueprint, current_app, send_file
from thriftpy2.transport import TTransportException

from metadata import run_crate, templates
from metadata.client import ERRORS
from portal.client import UNREACHABLE, get_client
from portal.workflows.logs import STATUS, refused

bp = Blueprint("run_crate", __name__)


@bp.route("/runs/<run_id>/crate.zip")
def crate(run_id: str):
    settings = current_app.config["SETTINGS"]
    try:
        record = run_crate.gather(get_client(), run_id, templates.load(settings.templates_dir), settings.engine)
    except ERRORS as error:
        return refused("This crate cannot be made", error.message, STATUS.get(type(error), 400))
    except (TTransportException, OSError):
        return refused("This crate cannot be made", UNREACHABLE, 503)
    with tempfile.TemporaryDirectory(prefix="labcommons-crate-") as folder:
        path = run_crate.write_zip(record, Path(folder) / "crate.zip")
        data = path.read_bytes()  # small: the crate references the data files, never copies them
    return send_file(BytesIO(data), mimetype="application/zip", as_attachment=True,
                     download_name=f"run-{record.run.id}.crate.zip", max_age=0)


def init_app(app) -> None:
    app.register_blueprint(bp)
