"""The Content-Security-Policy of every portal response.

Scripts come only from the portal itself, plus Dash's own inline scripts (the renderer's start
and the pages' title callback, allowed by their hashes, which Dash computes: `Dash.csp_hashes`);
no other page has an inline script or event-handler attribute (templates load theirs from
/static). Styles need 'unsafe-inline': Dash 4 components and plotly.js insert <style> elements
at run time (webpack's style-loader, plotly's rules), and neither takes a nonce. Forms post to
the portal, and sign-in may end at the hub (OAuth redirects after the sign-in form), so its
origin is allowed there too.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from flask import Flask


def policy(script_hashes: Sequence[str], hub_url: str = "") -> str:
    """The header's value: Dash's inline-script hashes, and the hub's origin for form redirects."""
    hub = urlsplit(hub_url)
    hub_origin = f" {hub.scheme}://{hub.netloc}" if hub.scheme in ("http", "https") and hub.netloc else ""
    directives = {
        "default-src": "'self'",
        "script-src": " ".join(["'self'", *script_hashes]),
        "style-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'" + hub_origin,
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def init_app(app: Flask, script_hashes: Callable[[], Sequence[str]]) -> None:
    """Every response carries the policy. The hashes are asked for at the first response: Dash
    adds the pages' inline script (the title's clientside callback) at its first request."""
    @functools.cache
    def value() -> str:
        return policy(script_hashes(), app.config["SETTINGS"].hub_public_url)

    @app.after_request
    def content_security_policy(response):
        response.headers.setdefault("Content-Security-Policy", value())
        return response
