"""The signed-in user's account page: personal API tokens (create, list, revoke) and
"sign out everywhere". Plain forms with CSRF tokens; the service does the work and the checks."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_login import current_user, logout_user
from thriftpy2.transport import TTransportException

from metadata.client import ERRORS
from portal.client import get_client

bp = Blueprint("account", __name__)
TTL_CHOICES = {"30 days": 30 * 86400, "90 days": 90 * 86400, "1 year": 365 * 86400}


@bp.route("/account")
def page(new_token: str = "", error: str = "", status: int = 200):
    """The user's tokens, and the form to make one."""
    try:
        tokens = get_client().personal_tokens()
    except ERRORS as exc:
        tokens, error = [], error or exc.message
    now = datetime.now(timezone.utc).timestamp()
    ended = [t for t in tokens if t.revoked or t.expires_at <= now]
    current = [t for t in tokens if t not in ended]
    return render_template("account.html", tokens=current, ended=ended, new_token=new_token, error=error,
                           ttl_choices=list(TTL_CHOICES), user=current_user.name), status


@bp.route("/account/tokens", methods=("POST",))
def create_token():
    name = request.form.get("name", "").strip()
    ttl = TTL_CHOICES.get(request.form.get("ttl", ""), TTL_CHOICES["30 days"])
    try:
        issued = get_client().create_personal_token(name, ttl)
    except ERRORS as exc:
        return page(error=exc.message, status=400)
    return page(new_token=issued.token)  # shown once, never stored by the portal


@bp.route("/account/tokens/<token_id>/revoke", methods=("POST",))
def revoke_token(token_id: str):
    try:
        get_client().revoke_personal_token(token_id)
    except ERRORS as exc:
        return page(error=exc.message, status=400)
    return redirect(url_for("account.page"))


@bp.route("/account/sign-out-everywhere", methods=("POST",))
def sign_out_everywhere():
    """Every session and token issued to the user so far stops working, this one included."""
    try:
        get_client().sign_out_everywhere(current_user.name)
    except (*ERRORS, TTransportException, OSError) as exc:
        return page(error=getattr(exc, "message", "The metadata service cannot be reached."), status=400)
    logout_user()
    session.clear()
    return redirect(url_for("auth.signin"))


def day(timestamp: int) -> str:
    """A Unix time as its UTC date, for people."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.add_template_filter(day, "day")
