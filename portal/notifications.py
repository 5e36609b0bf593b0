"""The signed-in user's notifications (a run they launched has ended): a list, newest first,
with links to the runs, and a form that marks them read. The header shows how many are unread."""
from __future__ import annotations

from flask import Blueprint, Flask, redirect, render_template, request, url_for
from thriftpy2.transport import TTransportException

from metadata.client import ERRORS
from portal.client import get_client
from portal.workflows.qc_text import run_message

bp = Blueprint("notifications", __name__)
# a subject's failing QC checks in people's words ("Pixels with a spectrum 66.67 % (minimum 80 %)")
bp.app_template_filter("qc_words")(run_message)


@bp.route("/notifications")
def page():
    try:
        notes, error = get_client().notifications(), ""
    except ERRORS as exc:
        notes, error = [], exc.message
    return render_template("notifications.html", notes=notes, error=error)


@bp.route("/notifications/read", methods=("POST",))
def mark_read():
    ids = request.form.getlist("id")
    if ids:
        try:
            get_client().mark_notifications_read(ids)
        except ERRORS as exc:
            return render_template("notifications.html", notes=[], error=exc.message), 400
    return redirect(url_for("notifications.page"))


def unread_count() -> int:
    """For the header; 0 when the service cannot say (a header must never fail a page)."""
    try:
        return len(get_client().notifications(unread_only=True))
    except (*ERRORS, TTransportException, OSError):
        return 0


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
