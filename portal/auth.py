"""Sign-in for the portal: a form, a flask-login session, and the user's own metadata-service token.

Accounts live in the metadata service (`labcommons user ...`; `labcommons demo` creates one per
role). The portal passes the form to the service's `sign_in` with its operator token; the service
checks the password, slows repeated failures, audits the attempt and returns a session token.
The portal keeps that token in the (signed, HttpOnly) session, and flask-login loads a `User`
from it on every request, so every call reaches the service as that user. Every page needs a
signed-in session: JSON requests and Dash callbacks without one get 401, pages redirect to
/signin?next=... . A session ends when its service token expires, or when the service refuses
the token (signed out everywhere, account disabled), with a message saying why.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import (Blueprint, Flask, flash, g, get_flashed_messages, jsonify, make_response, redirect,
                   render_template, request, session, url_for)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, generate_csrf
from thriftpy2.transport import TTransportException
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from metadata.client import ERRORS
from metadata.idl import metadata_thrift as T
from portal.client import UNREACHABLE, get_client, operator_client, sentence

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
# the hub's server-to-server calls (portal/notebooks/oauth.py, portal/notebooks/whoami.py) and the
# registration API for scripts (portal/registration/api.py: bearer tokens) authenticate themselves
PUBLIC = ("/signin", "/assets/", "/_dash-component-suites/", "/_favicon.ico", "/static/", "/oauth/token",
          "/oauth/userinfo", "/api/whoami", "/api/uploads", "/api/register/")
HOME = "/explore"
UNSAFE_IN_NEXT = re.compile(r"[\x00-\x20\x7f\\]")  # control characters, space, backslash
EXPIRED = "Your session has expired; please sign in again."
NOT_SIGNED_IN = "not signed in (or the session expired): sign in again"


@dataclass(frozen=True, eq=False)
class User(UserMixin):
    """The signed-in user as the session holds them: name, roles, service token and its expiry."""
    name: str
    roles: tuple[str, ...]
    token: str
    expires_at: int

    def get_id(self) -> str:
        return self.name

    @property
    def role(self) -> str:
        """The role to show next to the user's name."""
        return next((r for r in ("admin", "technician", "analyst") if r in self.roles), "no role")

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


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
    notices = get_flashed_messages()
    return render_template("signin.html", form=form, error=error, notices=notices), 401 if error else 200


@bp.route("/signout", methods=("POST",))
def signout():
    """End the session in the service too: its token stops working, so a copy of the cookie is useless."""
    problem = end_service_session()
    logout_user()
    session.clear()
    if problem:
        flash(problem)
    return redirect(url_for("auth.signin"))


def end_service_session() -> str | None:
    """Revoke the session's token in the service; the message to show if that could not be done."""
    try:
        get_client().sign_out()
    except T.Unauthenticated:
        return None  # expired, or signed out already: it works nowhere
    except ERRORS as exc:
        return sentence(exc.message)
    except (TTransportException, OSError):
        return ("Signed out of this browser, but the metadata service could not be reached to end the session "
                "everywhere; once it is back, use \"Sign out everywhere\" on your account page.")
    return None


def start_session(name: str, password: str) -> str | None:
    """Sign in through the service and start a fresh session; else the message to show."""
    try:
        with operator_client() as operator:
            issued = operator.sign_in(name, password, request.remote_addr or "")
    except ERRORS as exc:
        return sentence(exc.message)
    except (TTransportException, OSError):
        return UNREACHABLE
    identity = issued.identity
    user = User(name, tuple(identity.roles), issued.token, identity.expires_at)
    session.clear()  # a fresh session: nothing from before sign-in carries over
    session.permanent = True
    session.update(user=name, role=user.role, roles=list(user.roles), token=user.token, expires_at=user.expires_at,
                   grants=dict(identity.grants))  # for portal/intake.py's precheck of uploads
    login_user(user)
    # a fresh CSRF token now (the form's was cleared with the session), so that no later page's
    # form changes the session (see SESSION_REFRESH_EACH_REQUEST in create_app)
    g.pop("csrf_token", None)
    generate_csrf()
    return None


def load_user(user_id: str) -> User | None:
    """flask-login's loader: the User the session holds, or None (ending it) once its token expired."""
    if session.get("user") != user_id or not session.get("token"):
        return None
    user = User(user_id, tuple(session.get("roles", ())), session["token"], int(session.get("expires_at", 0)))
    if user.expires_at <= time.time():
        end_session(EXPIRED)
        return None
    return user


def end_session(message: str) -> None:
    """Forget the session, keeping only a message for the sign-in page. A script's request (a Dash
    callback, a JSON POST) only reports it: one still in flight when its page signed out would
    otherwise write its cookie over the session that follows (the sign-in form's CSRF token, or
    a new sign-in). The next page load ends the session in the browser."""
    g.session_ended = message
    if request.method == "GET":
        session.clear()
        flash(message)


def safe_next(target: str | None) -> str:
    """A path on this site to return to after sign-in, else HOME. Browsers drop tabs and newlines
    from a URL and read a backslash as a slash, so `/<tab>/evil.example` or `/\\evil.example`
    would leave the site: a target with either, or any other control character or space, is refused."""
    if not target or not target.isascii() or UNSAFE_IN_NEXT.search(target):
        return HOME
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc:
        return HOME
    return target


def signed_in() -> bool:
    return current_user.is_authenticated


def shown_user() -> tuple[str, str] | None:
    """(name, role) of the signed-in user for the header, or None."""
    return (current_user.name, current_user.role) if current_user.is_authenticated else None


def wants_json() -> bool:
    """Whether the request is a script's (Dash callback, JSON POST) rather than a page load."""
    return request.method != "GET" or request.path.startswith("/_dash") or request.is_json


def refuse():
    """Without a session: JSON requests get 401, pages go to sign in and then back."""
    if wants_json():
        ended = g.get("session_ended", "").rstrip(".")
        message = ended[:1].lower() + ended[1:] if ended else NOT_SIGNED_IN
        return jsonify(error=message), 401
    return redirect(url_for("auth.signin", next=request.full_path.rstrip("?")))


def require_signin():
    """Before every request: let public paths through, send everyone else to sign in."""
    if request.path.startswith(PUBLIC) or current_user.is_authenticated:
        return None
    return login_manager.unauthorized()


def token_refused(error: T.Unauthenticated):
    """A view let the service's refusal of the session's token escape: end the session."""
    g.token_refused = error.message
    return end_refused_session(None) or refuse()


def end_refused_session(response):
    """After every request: once the service has refused the session's token (signed out
    everywhere, account disabled), the session ends with the service's reason, whatever the
    view made of the refusal."""
    message = g.pop("token_refused", None)
    if message is None or not current_user.is_authenticated:
        return response
    if request.method == "GET":
        logout_user()
    end_session(sentence(message))
    return make_response(refuse())


def csrf_failed(error: CSRFError):
    """A form without a valid CSRF token: show the sign-in form again, or say so in the page's words."""
    message = "The form had expired or did not come from this site; please try again."
    if current_user.is_authenticated:
        return render_template("problem.html", heading="This form cannot be sent", message=message,
                               back=request.referrer or HOME), 400
    return render_template("signin.html", form=SignInForm(), error=message, notices=[]), 400


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.user_loader(load_user)
    login_manager.unauthorized_handler(refuse)
    app.register_blueprint(bp)
    app.before_request(require_signin)
    app.register_error_handler(CSRFError, csrf_failed)
    app.register_error_handler(T.Unauthenticated, token_refused)
    app.after_request(end_refused_session)
