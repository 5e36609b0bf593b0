"""A run step's log as plain text (/runs/<run>/steps/<step>/log): its stdout and stderr as the step
wrote them, or a line saying it wrote nothing; only after the service has returned the run to the
signed-in user, and only from the run's project's folder of the storage root."""
from __future__ import annotations

import os

from flask import Blueprint, Response, current_app, render_template, send_file
from thriftpy2.transport import TTransportException

from metadata.client import ERRORS
from metadata.idl import metadata_thrift as T
from portal.client import UNREACHABLE, get_client
from ground.storage import NotReadable, open_checked, resolve

bp = Blueprint("run_logs", __name__)
STATUS = {T.NotFound: 404, T.Forbidden: 403, T.Unauthenticated: 401}
HEADING = "This log cannot be shown"
NO_OUTPUT = "No output: the step {step} ({phase}) wrote nothing to stdout or stderr (yet).\n"


@bp.route("/runs/<run_id>/steps/<step_id>/log")
def step_log(run_id: str, step_id: str):
    """The step's log, read fresh each time (a running step's log grows)."""
    try:
        run = get_client().run(run_id)
    except ERRORS as error:
        return refused(HEADING, error.message, STATUS.get(type(error), 400))
    except (TTransportException, OSError):
        return refused(HEADING, UNREACHABLE, 503)
    step = next((s for s in run.steps if s.id == step_id), None)
    if step is None or not step.log_url:
        return refused(HEADING, f"the run {run.submitter_id} has no log for a step {step_id!r}", 404)
    try:
        log = open_checked(resolve(step.log_url, current_app.config["SETTINGS"].storage_root, run.project_id))
    except NotReadable as reason:
        return refused(HEADING, str(reason), 404)
    except OSError as error:  # replaced by a link, or gone, since it was resolved
        return refused(HEADING, f"the log cannot be read: {error.strerror}", 404)
    if os.fstat(log.fileno()).st_size == 0:  # say so, rather than show a blank page
        log.close()
        return Response(NO_OUTPUT.format(step=step.name, phase=step.phase), mimetype="text/plain")
    return send_file(log, mimetype="text/plain", max_age=0, conditional=False)


def refused(heading: str, message: str, status: int):
    """The problem page with `heading` and `message`, and its status."""
    return render_template("problem.html", heading=heading, message=message, issues=[]), status


def init_app(app) -> None:
    app.register_blueprint(bp)
