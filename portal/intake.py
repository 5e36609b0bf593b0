"""What the portal accepts of a request before reading its body: the precheck the server calls
when a request's headers are complete (portal/server.py).

The server buffers a whole request body (to disk, past half a megabyte) before the app sees it,
so a refusal the app makes comes too late: an anonymous client could fill the temp directory.
The precheck answers from the headers alone, on the server's event loop, so it does no I/O: the
body's declared size against the route's limit, the signed session cookie (the same check
Flask makes), and for an upload the write grant the session recorded. The app checks everything
again with the service once the body is in (a grant revoked a moment ago, a signed-out token).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie

from itsdangerous import BadSignature

PUBLIC_POSTS = ("/signin", "/oauth/token")   # bodies accepted without a session: small forms
API_PREFIXES = ("/api/uploads", "/api/register/")  # bearer-token routes (portal/registration/api.py)
PUBLIC_BODY_BYTES = 64 * 1024
FORM_SLACK_BYTES = 1024 * 1024               # multipart framing around a bulk TSV
UPLOAD_PATHS = ("/register/uploads", "/register/header")   # a data file as the raw body: the upload check


@dataclass(frozen=True)
class Refusal:
    """An answer sent instead of reading a body: status, the field at fault, and why."""
    status: int
    field: str
    message: str

    def body(self) -> bytes:
        """JSON in the shape the register page reads (fields by name), with a plain `error` too."""
        return json.dumps({"error": self.message, "fields": {self.field: [self.message]}, "general": []}).encode()


@dataclass(frozen=True)
class Request:
    """The parts of a request the precheck reads; length is None for a chunked body."""
    method: str
    path: str
    query: str
    length: int | None
    session: Mapping | None   # the signed-in session the cookie holds, if it is valid
    bearer: bool = False      # an API route's Authorization: Bearer token verified (signature, expiry)


Precheck = Callable[[Request], "Refusal | None"]


def precheck(request: Request, form_limit: int, upload_check: Precheck,
             api_check: Precheck | None = None) -> Refusal | None:
    """A refusal for a body the portal will not read, or None to read it."""
    if request.length == 0:
        return None
    if request.length is None:
        return Refusal(411, "Content-Length", "Content-Length: send the body with its length "
                                              "(chunked request bodies are not accepted)")
    if request.path in UPLOAD_PATHS:
        return upload_check(request)
    if api_check is not None and request.path.startswith(API_PREFIXES):
        return api_check(request)
    public = request.path in PUBLIC_POSTS
    limit = PUBLIC_BODY_BYTES if public else form_limit
    if request.length > limit:
        return Refusal(413, "Content-Length", f"Content-Length: {request.length} bytes is more than the "
                                              f"{limit} bytes allowed for {request.path}")
    if not public and request.session is None:
        return Refusal(401, "session", "session: not signed in (or the session expired): sign in again")
    return None


class Sessions:
    """Reads the portal's session cookie as Flask would (signature, age) and keeps a session
    only while its service token has not expired."""

    def __init__(self, app):
        self.serializer = app.session_interface.get_signing_serializer(app)
        self.cookie = app.config["SESSION_COOKIE_NAME"]
        self.max_age = int(app.permanent_session_lifetime.total_seconds())

    def __call__(self, cookie_header: str) -> Mapping | None:
        morsel = SimpleCookie(_only_cookie(cookie_header, self.cookie)).get(self.cookie)
        if morsel is None or self.serializer is None:
            return None
        try:
            session = self.serializer.loads(morsel.value, max_age=self.max_age)
        except (BadSignature, ValueError, TypeError):
            return None
        if not isinstance(session, dict) or not session.get("token"):
            return None
        return session if int(session.get("expires_at", 0)) > time.time() else None


class Bearers:
    """Whether an Authorization header holds a token this commons signed that has not expired
    (the service's own check, metadata/auth.py, with the key the portal shares); revocation and
    grants are the service's to judge once the body is in."""

    def __init__(self, settings):
        from metadata.auth import BadToken, Tokens
        self.tokens, self.bad = Tokens(settings.signing_key()), BadToken

    def __call__(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        try:
            self.tokens.verify(token.strip())
        except self.bad:
            return False
        return True


def _only_cookie(header: str, name: str) -> str:
    """The one pair of the Cookie header named `name` (SimpleCookie gives up on a whole header
    when any other cookie of the site is malformed)."""
    pairs = (pair.strip() for pair in header.split(";"))
    return next((pair for pair in pairs if pair.startswith(name + "=")), "")


Admit = Callable[[str, str, str, Mapping[str, str], bool], "tuple[Refusal | None, bool]"]


def for_app(app) -> Admit:
    """What the server calls at headers-complete, with (method, path, query, waitress's header
    dict, chunked): (the refusal or None, whether the request carries a signed-in session)."""
    from portal.registration import api
    from portal.registration.pages import upload_precheck

    sessions, bearers = Sessions(app), Bearers(app.config["SETTINGS"])
    settings = app.config["SETTINGS"]
    form_limit = settings.max_batch_bytes + FORM_SLACK_BYTES

    def admit(method: str, path: str, query: str, headers: Mapping[str, str], chunked: bool):
        length = None if chunked else int(headers.get("CONTENT_LENGTH") or 0)
        if path.startswith(API_PREFIXES):  # the API reads the bearer token alone, never the cookie
            request = Request(method, path, query, length, None, bearers(headers.get("AUTHORIZATION", "")))
        else:
            request = Request(method, path, query, length, sessions(headers.get("COOKIE", "")))
        refusal = precheck(request, form_limit, lambda r: upload_precheck(r, settings.max_upload_bytes),
                           lambda r: api.precheck(r, form_limit))
        return refusal, request.session is not None or request.bearer
    return admit
