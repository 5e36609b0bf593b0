"""Defences against cross-site request forgery.

Every form carries a flask-wtf CSRF token (CSRFProtect). Dash's callbacks are JSON POSTs from
the page's own script and carry no form token, so they are exempt from CSRFProtect; instead
they must come from this site: their Origin header (else their Referer) must name this host.
Browsers send Origin on every POST, and a cross-site page cannot forge it; the session cookie
is also SameSite=Lax, so it does not ride along on a cross-site POST at all.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, jsonify, request
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
# Dash names its callback view after its old home, for exemptions like this one.
ORIGIN_CHECKED = {"dash.dash.dispatch"}
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def same_origin() -> bool:
    """Whether the request's Origin (else Referer) is this host."""
    source = urlsplit(request.headers.get("Origin") or request.headers.get("Referer") or "")
    return source.scheme in ("http", "https") and source.netloc == request.host


def _view_name() -> str:
    view = current_app.view_functions.get(request.endpoint or "")
    return f"{view.__module__}.{view.__name__}" if view else ""


def check_origin():
    """Before every request: refuse an unsafe request to a token-exempt view from elsewhere."""
    if request.method in UNSAFE and _view_name() in ORIGIN_CHECKED and not same_origin():
        return jsonify(error="refused: this request did not come from the portal's own pages"), 403
    return None


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    for view in ORIGIN_CHECKED:
        csrf.exempt(view)
    app.before_request(check_origin)
