"""The portal: a Flask app (sign-in, exports) with Dash pages mounted inside it.

It holds no data: every page asks the metadata service, as the signed-in user. Run it with
`labcommons portal serve` (waitress), or as part of `labcommons up`.
"""
from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from dash import Dash
from flask import Flask, redirect

from ground import settings as settings_module

HERE = Path(__file__).resolve().parent
SESSION_KEY_LABEL = b"labcommons portal session key v1"


def create_app(test_config: dict | None = None) -> Flask:
    """Build the portal. test_config may carry SETTINGS (a labcommons Settings) and Flask keys."""
    app = Flask(__name__)
    settings = (test_config or {}).get("SETTINGS") or settings_module.load()
    if settings.hub_secrets_dir is not None:
        # the operator's mounted Secret: a missing key stops the start, rather than a user's sign-in
        for name in settings_module.HUB_SHARED_SECRETS:
            settings.hub_secret(name)
    app.config.from_mapping(
        SETTINGS=settings,
        SECRET_KEY=session_key(settings),
        SESSION_COOKIE_NAME="labcommons_portal",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,  # HTTPS only, when the portal is served over https
        REMEMBER_COOKIE_SECURE=settings.secure_cookies,  # flask-login's "remember me" is not offered; were it,
        REMEMBER_COOKIE_SAMESITE="Lax",           # its cookie would be as guarded as the session's
        PERMANENT_SESSION_LIFETIME=settings.token_ttl_seconds,
        # the cookie is set when the session changes (sign-in, sign-out), not on every response:
        # a callback still in flight at sign-out must not write the old session back
        SESSION_REFRESH_EACH_REQUEST=False,
        WTF_CSRF_TIME_LIMIT=None,  # a form's token lives as long as the session it belongs to
    )
    app.config.from_mapping(test_config or {})

    from portal import account, auth, client, csp, csrf, downloads, errors, header, notifications
    from portal.admin import pages as admin
    from portal.explorer import exports
    from portal.notebooks import jupyter, oauth, progress as hub_progress, whoami
    from portal.registration import api as register_api, bulk, pages as register
    from portal.workflows import crate, logs
    app.add_url_rule("/", "home", lambda: redirect(auth.HOME))  # before Dash, so it wins over Dash's "/"
    csrf.init_app(app)
    client.init_app(app)
    dash_app = mount_dash(app)
    auth.init_app(app)
    header.init_app(app)
    errors.init_app(app)
    app.register_blueprint(exports.bp)
    downloads.init_app(app)
    account.init_app(app)
    register.init_app(app)
    bulk.init_app(app)
    register_api.init_app(app)
    admin.init_app(app)
    logs.init_app(app)
    crate.init_app(app)
    notifications.init_app(app)
    oauth.init_app(app)
    jupyter.init_app(app)
    hub_progress.init_app(app)
    whoami.init_app(app)
    app.after_request(security_headers)
    csp.init_app(app, dash_app.csp_hashes)
    claim_dash_callbacks(app)  # last: Flask takes no more set-up after its first request
    return app


def session_key(settings) -> str:
    """The session-cookie key, derived from the service's signing key: stable across restarts,
    the same in every replica, and never the token key itself."""
    return derived_key(settings, SESSION_KEY_LABEL).hex()


def derived_key(settings, label: bytes) -> bytes:
    """A 32-byte key for one use (named by label), derived one-way from the signing key."""
    return hmac.new(settings.signing_key().encode(), label, hashlib.sha256).digest()


def mount_dash(app: Flask) -> Dash:
    """Dash on the Flask app, its pages and assets anchored to this package."""
    from portal import shell
    dash_app = Dash(__name__, server=app, use_pages=True, pages_folder=str(HERE / "pages"),
                    assets_folder=str(HERE / "assets"), url_base_pathname="/", title="labcommons",
                    update_title=None, suppress_callback_exceptions=True)
    shell.init_app(dash_app)
    # the page's language, as base.html declares it (screen readers pick their voice by it)
    dash_app.index_string = dash_app.index_string.replace("<html>", '<html lang="en">', 1)
    return dash_app


def claim_dash_callbacks(app: Flask) -> None:
    """Dash moves the pages' `@callback`s from a process-wide registry into the app at its first
    request; make that request now (a public path), so that each app made in this process
    (tests make several) takes its own callbacks and no other app's."""
    app.test_client().get("/_favicon.ico")


def security_headers(response):
    """After every response: no framing by other sites, no content-type guessing."""
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response
