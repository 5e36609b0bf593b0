"""The portal as an OAuth2 provider for JupyterHub: single sign-on for notebooks.

The hub (oauthenticator's GenericOAuthenticator) sends the browser to /oauth/authorize; a user
signed in to the portal is sent straight back with a code (the hub is first-party: no consent
page), one who is not signs in first. The hub trades the code for tokens at /oauth/token
(authorization code with PKCE, client secret from <data dir>/hub/oauth-client-secret) and asks
/oauth/userinfo for the user: their name and a fresh metadata-service token, minted as a
personal token ("JupyterHub") from the token the grant holds. Each userinfo call mints the next
one from the last, so the hub's refreshes keep a chain of short-lived tokens that ends when the
user is signed out everywhere, disabled, or revokes a token.

Grants live in this process's memory: after a portal restart the hub's refresh fails and the
hub sends the user through /oauth/authorize again, which a signed-in user passes unseen.
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token
from authlib.oauth2.rfc6749 import InvalidRequestError, grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Blueprint, Flask, current_app, jsonify
from flask_login import current_user

from metadata.client import ERRORS, MetadataClient

CLIENT_ID = "jupyterhub"
SCOPE = "profile"
CODE_SECONDS = 300
ACCESS_SECONDS = 3600
TOKEN_NAME = "JupyterHub"
# A grant unused this long is forgotten: by then the service token it holds has expired too
# (LABCOMMONS_TOKEN_TTL_SECONDS, 8 h by default), so it could mint nothing.
GRANT_SECONDS = 24 * 3600

bp = Blueprint("oauth", __name__, url_prefix="/oauth")
require_oauth = ResourceProtector()


@dataclass
class GrantUser:
    """Whom a grant is for: their name and the service token new tokens are minted from."""
    name: str
    service_token: str


@dataclass
class HubClient:
    """The one registered client: the labcommons JupyterHub."""
    secret: str
    redirect_uri: str
    client_id: str = CLIENT_ID

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uri

    def get_allowed_scope(self, scope):
        return SCOPE if scope and SCOPE in scope.split() else ""

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret, self.secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class Code:
    code: str
    user: GrantUser
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float = field(default_factory=lambda: time.time() + CODE_SECONDS)

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope


@dataclass
class Token:
    access_token: str
    refresh_token: str | None
    scope: str
    user: GrantUser
    issued_at: float
    expires_in: int
    revoked: bool = False

    def check_client(self, client):
        return client.get_client_id() == CLIENT_ID

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return self.expires_in

    def is_expired(self):
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self):
        return self.revoked

    def get_user(self):
        return self.user

    def get_client(self):
        return query_client(CLIENT_ID)


class Grants:
    """Codes and tokens in memory (the portal is one process)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.codes: dict[str, Code] = {}
        self.access: dict[str, Token] = {}
        self.refresh: dict[str, Token] = {}

    def add_token(self, token: Token) -> None:
        with self.lock:
            self._forget_expired()
            self.access[token.access_token] = token
            if token.refresh_token:
                self.refresh[token.refresh_token] = token

    def _forget_expired(self) -> None:
        now = time.time()
        for code in [k for k, v in self.codes.items() if v.expires_at < now]:
            del self.codes[code]
        for key in [k for k, v in self.access.items() if v.issued_at + GRANT_SECONDS < now]:
            token = self.access.pop(key)
            self.refresh.pop(token.refresh_token, None)


GRANTS = Grants()


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def save_authorization_code(self, code, request):
        data = request.payload.data
        with GRANTS.lock:
            GRANTS.codes[code] = Code(code, request.user, data.get("redirect_uri"), request.payload.scope or SCOPE,
                                      data.get("code_challenge"), data.get("code_challenge_method"))

    def query_authorization_code(self, code, client):
        found = GRANTS.codes.get(code)
        return found if found and found.expires_at > time.time() else None

    def delete_authorization_code(self, authorization_code):
        with GRANTS.lock:
            GRANTS.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code):
        return authorization_code.user


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        token = GRANTS.refresh.get(refresh_token)
        return token if token and not token.revoked else None

    def authenticate_user(self, refresh_token):
        return refresh_token.user

    def revoke_old_credential(self, refresh_token):
        refresh_token.revoked = True


class RequiredCodeChallenge(CodeChallenge):
    """PKCE for every client, confidential ones too (Authlib requires it of public clients only)."""

    def validate_code_challenge(self, grant, redirect_uri):
        if not grant.request.payload.data.get("code_challenge"):
            raise InvalidRequestError("missing 'code_challenge': this provider requires PKCE (S256)")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("missing 'code_verifier': this provider requires PKCE")
        super().validate_code_verifier(grant, result)


class Validator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        return GRANTS.access.get(token_string)


def save_token(token: dict, request) -> None:
    GRANTS.add_token(Token(token["access_token"], token.get("refresh_token"), token.get("scope", SCOPE),
                           request.user, time.time(), int(token.get("expires_in", ACCESS_SECONDS))))


def issue(user: GrantUser) -> dict:
    """Tokens for the hub without a browser round trip (the hand-off gives them to the hub
    itself), shaped as the token endpoint's answer."""
    token = Token(secrets.token_urlsafe(32), secrets.token_urlsafe(32), SCOPE, user, time.time(), ACCESS_SECONDS)
    GRANTS.add_token(token)
    return {"access_token": token.access_token, "refresh_token": token.refresh_token, "token_type": "Bearer",
            "expires_in": ACCESS_SECONDS, "scope": SCOPE}


@bp.route("/authorize")
def authorize():
    """Signed-in users get a code at once (require_signin sent everyone else to sign in first)."""
    user = GrantUser(current_user.name, current_user.token)
    return _server().create_authorization_response(grant_user=user)


@bp.route("/token", methods=["POST"])
def issue_token():
    return _server().create_token_response()


@bp.route("/userinfo")
@require_oauth(SCOPE)
def userinfo():
    """The user's name and a fresh service token minted from the grant's latest one."""
    grant = current_token.user
    settings = current_app.config["SETTINGS"]
    try:
        with MetadataClient(settings.host, settings.port, grant.service_token) as client:
            issued = client.create_personal_token(TOKEN_NAME, settings.token_ttl_seconds)
    except ERRORS as refused:  # signed out everywhere, disabled, or the chain expired
        return jsonify(error="invalid_token", error_description=refused.message), 401
    grant.service_token = issued.token
    return jsonify(name=grant.name, labcommons_token=issued.token,
                   labcommons_token_expires_at=issued.identity.expires_at)


def query_client(client_id: str):
    """The hub, registered from settings; its secret is read (or made) on first use."""
    if client_id != CLIENT_ID:
        return None
    if "labcommons_hub_client" not in current_app.extensions:
        settings = current_app.config["SETTINGS"]
        current_app.extensions["labcommons_hub_client"] = HubClient(
            settings.hub_secret("oauth-client-secret"), f"{settings.hub_public_url}/hub/oauth_callback")
    return current_app.extensions["labcommons_hub_client"]


def _server() -> AuthorizationServer:
    return current_app.extensions["labcommons_oauth_server"]


def init_app(app: Flask) -> None:
    app.config.setdefault("OAUTH2_TOKEN_EXPIRES_IN", {"authorization_code": ACCESS_SECONDS,
                                                      "refresh_token": ACCESS_SECONDS})
    app.config.setdefault("OAUTH2_REFRESH_TOKEN_GENERATOR", True)
    server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
    app.extensions["labcommons_oauth_server"] = server
    server.register_grant(AuthorizationCodeGrant, [RequiredCodeChallenge(required=True)])
    server.register_grant(RefreshTokenGrant)
    require_oauth.register_token_validator(Validator())
    app.register_blueprint(bp)
    from portal.csrf import csrf
    csrf.exempt(issue_token)  # the hub authenticates with its client secret, not a form token
