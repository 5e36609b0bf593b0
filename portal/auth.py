"""Sign-in for the portal: a form, a session, and the user's own metadata-service token.

Accounts live in the metadata service (`labcommons user ...`; `labcommons demo` creates one per
role). The portal passes the form to the service's `sign_in` with its operator token; the service
checks the password, slows repeated failures, audits the attempt and returns a session token,
which the portal keeps in the session: every request reaches the service as that user. Every
page needs a signed-in session; JSON callbacks without one get 401, pages redirect to /signin.
"""
from __future__ import annotations

import time

from flask import (Blueprint, Flask, jsonify, redirect, render_template, request, session,
                   url_for)
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from thriftpy2.transport import TTransportException
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from metadata.client import ERRORS
from portal.client import operator_client

bp = Blueprint("auth", __name__)
PUBLIC = ("/signin", "/assets/", "/_dash-component-suites/", "/_favicon.ico", "/static/")
HOME = "/explore"


class SignInForm(FlaskForm):
    username = StringField("User name", validators=[DataRequired(), Length(max=128)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


@bp.route("/signin", methods=("GET", "POST"))
def signin():
    """Show the form; on a valid POST start the user's session and go where they were headed."""
    form, error = SignInForm(), None
    if form.validate_on_submit():
        error = start_session(form.username.data.strip(), form.password.data)
        if error is None:
            return redirect(safe_next(request.args.get("next")))
    elif form.errors:
        error = "Give a user name and a password."
    return render_template("signin.html", form=form, error=error), 401 if error else 200


@bp.route("/signout", methods=("POST",))
def signout():
    session.clear()
    return redirect(url_for("auth.signin"))


def start_session(user: str, password: str) -> str | None:
    """Sign in through the service and keep the token in a fresh session; else the message to show."""
    try:
        with operator_client() as operator:
            issued = operator.sign_in(user, password, request.remote_addr or "")
    except ERRORS as exc:
        return exc.message[:1].upper() + exc.message[1:] + "."
    except (TTransportException, OSError):
        return "The metadata service cannot be reached; try again in a moment."
    session.clear()
    session.permanent = True
    session.update(user=user, role=main_role(issued.identity.roles), token=issued.token,
                   expires_at=issued.identity.expires_at)
    return None


def main_role(roles: list[str]) -> str:
    """The role to show next to the user's name."""
    return next((r for r in ("admin", "technician", "analyst") if r in roles), "no role")


def safe_next(target: str | None) -> str:
    """A local path to return to after sign-in; never another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


def signed_in() -> bool:
    return bool(session.get("token")) and session.get("expires_at", 0) > time.time()


def current_user() -> tuple[str, str] | None:
    """(name, role) of the signed-in user, or None."""
    return (session["user"], session["role"]) if signed_in() else None


def require_signin():
    """Before every request: let public paths through, send everyone else to sign in."""
    if request.path.startswith(PUBLIC) or signed_in():
        return None
    session.pop("token", None)
    if request.method != "GET" or request.path.startswith("/_dash"):
        return jsonify(error="not signed in (or the session expired): sign in again"), 401
    return redirect(url_for("auth.signin", next=request.full_path.rstrip("?")))


def csrf_failed(error: CSRFError):
    """A sign-in or sign-out form without a valid CSRF token: show the form again."""
    message = "The form had expired or did not come from this site; please try again."
    return render_template("signin.html", form=SignInForm(), error=message), 400


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.before_request(require_signin)
    app.register_error_handler(CSRFError, csrf_failed)
    app.context_processor(lambda: {"current_user": current_user()})
