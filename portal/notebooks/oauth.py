"""The portal as an OAuth2 provider for JupyterHub: single sign-on for notebooks.

The hub (oauthenticator's GenericOAuthenticator) sends the browser to /oauth/authorize; a user
signed in to the portal is sent straight back with a code (the hub is first-party: no consent
page), one who is not signs in first. The hub trades the code for tokens at /oauth/token
(authorization code with PKCE, client secret from <data dir>/hub/oauth-client-secret) and asks
/oauth/userinfo for the user: their name and their metadata-service token.

Any portal replica serves any step, and none keeps a grant. A code, access token or refresh
token is a sealed blob (portal/seal.py; the key is derived from the signing key all replicas
share) holding the user's name, an expiry and a personal token of the metadata service, the one
shared store. What may happen only once the service enforces: each personal token is renewed
at most once (renew_personal_token), so of two replicas given the same code or refresh token one
wins and the other refuses.

- /authorize mints a personal token for the code alone ("JupyterHub sign-in", CODE_SECONDS).
- Redeeming the code (after the redirect and PKCE checks) renews it into the grant's token
  ("JupyterHub", LABCOMMONS_TOKEN_TTL_SECONDS) and revokes it: a replayed code fails everywhere.
- A refresh renews the grant's token into the next one, so an old refresh token fails
  everywhere (rotation). The renewed token keeps working until it expires: a running notebook
  server may hold it in its environment.
- /userinfo answers with the grant's token once the service confirms it still stands: signing
  out everywhere, disabling the account or revoking the token on the account page ends the grant.

So the user's token list gains one "JupyterHub" token per refresh (the hub refreshes once its
access token, ACCESS_SECONDS, has lapsed) and one revoked sign-in token per sign-in; userinfo
adds none.
"""
from __future__ import annotations

import secrets
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidGrantError, InvalidRequestError, grants
from authlib.oauth2.rfc6750 import BearerTokenValidator, InvalidTokenError
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Blueprint, Flask, current_app, jsonify
from flask_login import current_user
from thriftpy2.transport import TTransportException

from metadata.client import ERRORS, MetadataClient
from portal.seal import Seal, SealError

CLIENT_ID = "jupyterhub"
SCOPE = "profile"
CODE_SECONDS = 120  # RFC 6749 4.1.2: codes expire shortly (10 minutes at most)
ACCESS_SECONDS = 3600
TOKEN_NAME = "JupyterHub"
CODE_TOKEN_NAME = "JupyterHub sign-in"
GRANT_KEY_LABEL = b"labcommons portal oauth grant key v1"
CODE, ACCESS, REFRESH = "code", "access token", "refresh token"

bp = Blueprint("oauth", __name__, url_prefix="/oauth")
require_oauth = ResourceProtector()


@dataclass
class GrantUser:
    """Whom a grant is for: their name and the service token the grant's next one is minted from."""
    name: str
    service_token: str
    token_expires_at: int = 0  # of service_token; issue() mints its own and knows it


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


@dataclass(frozen=True)
class Grant:
    """A code, access token or refresh token, opened: the methods are what Authlib asks of each."""
    user: GrantUser
    scope: str
    expires_at: float
    redirect_uri: str = ""
    code_challenge: str = ""
    code_challenge_method: str = ""

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def check_client(self, client):
        return client.get_client_id() == CLIENT_ID

    def get_expires_in(self):
        return max(0, int(self.expires_at - time.time()))

    def is_expired(self):
        return time.time() >= self.expires_at

    def is_revoked(self):
        return False  # revocation is the service's, asked at every use

    def get_user(self):
        return self.user

    def get_client(self):
        return query_client(CLIENT_ID)


class ServiceUnavailable(OAuth2Error):
    error = "temporarily_unavailable"
    status_code = 503
    description = "the metadata service cannot be reached; try again shortly"


def seal(kind: str, grant: Grant) -> str:
    return current_app.extensions["labcommons_oauth_seal"].seal(kind, asdict(grant), grant.expires_at)


def unseal(kind: str, blob: str, error: type[OAuth2Error]) -> Grant:
    """The grant a blob holds; `error` (naming what is wrong with it) if it is not one of ours."""
    try:
        fields = current_app.extensions["labcommons_oauth_seal"].open(kind, blob)
    except SealError as bad:
        raise error(description=str(bad)) from None
    return Grant(**dict(fields, user=GrantUser(**fields["user"])))


@contextmanager
def refusals(error: type[OAuth2Error], what: str):
    """A refusal of the service as `error`, saying what failed and the service's reason."""
    try:
        yield
    except ERRORS as refused:
        raise error(description=f"{what}: {refused.message}") from None
    except (TTransportException, OSError):
        raise ServiceUnavailable() from None


def service(token: str) -> MetadataClient:
    settings = current_app.config["SETTINGS"]
    return MetadataClient(settings.host, settings.port, token)


def renew(user: GrantUser, revoke: bool) -> GrantUser:
    """The grant's next service token, renewed from its current one (which may be renewed once)."""
    with service(user.service_token) as client:
        issued = client.renew_personal_token(TOKEN_NAME, current_app.config["SETTINGS"].token_ttl_seconds, revoke)
    return GrantUser(user.name, issued.token, issued.identity.expires_at)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def generate_authorization_code(self):
        """The code is the request sealed with a personal token minted for this code alone."""
        request, data = self.request, self.request.payload.data
        with refusals(AccessDeniedError, "no code could be issued"), service(request.user.service_token) as client:
            issued = client.create_personal_token(CODE_TOKEN_NAME, CODE_SECONDS)
        user = GrantUser(request.user.name, issued.token, issued.identity.expires_at)
        return seal(CODE, Grant(user, request.payload.scope or SCOPE, time.time() + CODE_SECONDS,
                                data.get("redirect_uri") or "", data.get("code_challenge") or "",
                                data.get("code_challenge_method") or ""))

    def save_authorization_code(self, code, request):
        pass  # the code carries itself

    def query_authorization_code(self, code, client):
        return unseal(CODE, code, InvalidGrantError)

    def delete_authorization_code(self, authorization_code):
        pass  # redeeming revoked the code's service token: no replica accepts it again

    def authenticate_user(self, authorization_code):
        """Called once the redirect and PKCE checks have passed: the one redemption."""
        with refusals(InvalidGrantError, "this code cannot be redeemed (it has been used already?)"):
            return renew(authorization_code.user, revoke=True)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        return unseal(REFRESH, refresh_token, InvalidGrantError)

    def authenticate_user(self, refresh_token):
        with refusals(InvalidGrantError, "this refresh token cannot be used (used already, or the grant ended)"):
            return renew(refresh_token.user, revoke=False)

    def revoke_old_credential(self, refresh_token):
        pass  # renewing its service token retired it on every replica


class RequiredCodeChallenge(CodeChallenge):
    """PKCE with S256 for every client, confidential ones too (Authlib requires it of public
    clients only, and takes `plain`, its default when no method is named, which shows the
    verifier to anyone who sees the authorization request)."""
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("missing 'code_challenge': this provider requires PKCE (S256)")
        if data.get("code_challenge_method") != "S256":
            shown = data.get("code_challenge_method") or "none given, which means plain"
            raise InvalidRequestError(f"code_challenge_method: only S256 is accepted ({shown})")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("missing 'code_verifier': this provider requires PKCE")
        super().validate_code_verifier(grant, result)


class Validator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        return unseal(ACCESS, token_string, InvalidTokenError)


def bearer_tokens(grant_type=None, client=None, user: GrantUser | None = None, scope=None, expires_in=None,
                  include_refresh_token=True) -> dict:
    """The token endpoint's answer for a grant whose service token is user's (Authlib's token
    generator, and issue()'s): the access token lapses within ACCESS_SECONDS and a quarter of the
    token lifetime, the refresh token with the service token. The hub refreshes auth state older
    than a quarter of the lifetime (hub/sso.py), so by then the access token has lapsed and the
    hub's refresh renews the service token while it is still valid: the chain never runs out."""
    scope, now = scope or SCOPE, time.time()
    lifetime = min(ACCESS_SECONDS, max(1, current_app.config["SETTINGS"].token_ttl_seconds // 4))
    access_expires = min(now + lifetime, user.token_expires_at)
    token = {"access_token": seal(ACCESS, Grant(user, scope, access_expires)), "token_type": "Bearer",
             "expires_in": int(access_expires - now), "scope": scope}
    if include_refresh_token:
        token["refresh_token"] = seal(REFRESH, Grant(user, scope, user.token_expires_at))
    return token


def issue(user: GrantUser) -> tuple[dict, dict]:
    """A grant for the hub without a browser round trip (the hand-off gives it to the hub
    itself): tokens shaped as the token endpoint's answer, and the userdata /oauth/userinfo
    answers for them. The grant's token is minted from user's."""
    with service(user.service_token) as client:
        issued = client.create_personal_token(TOKEN_NAME, current_app.config["SETTINGS"].token_ttl_seconds)
    grant = GrantUser(user.name, issued.token, issued.identity.expires_at)
    return bearer_tokens(user=grant), userdata(grant, issued.identity.expires_at)


def userdata(user: GrantUser, expires_at: int) -> dict:
    """Who the grant is for, with its service token: what the hub keeps as oauth_user."""
    return {"name": user.name, "labcommons_token": user.service_token, "labcommons_token_expires_at": expires_at}


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
    """The user's name and the grant's service token, once the service confirms it still stands."""
    user = current_token.user
    with refusals(InvalidTokenError, "the grant has ended"), service(user.service_token) as client:
        identity = client.whoami()
    return jsonify(userdata(user, identity.expires_at))


@bp.errorhandler(OAuth2Error)
def oauth_error(error: OAuth2Error):
    """A refusal inside a view (userinfo's) as the standard error body."""
    return jsonify(error=error.error, error_description=error.description), error.status_code or 400


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
    from portal import derived_key
    app.extensions["labcommons_oauth_seal"] = Seal(derived_key(app.config["SETTINGS"], GRANT_KEY_LABEL))
    server = AuthorizationServer(app, query_client=query_client, save_token=lambda token, request: None)
    server.register_token_generator("default", bearer_tokens)
    app.extensions["labcommons_oauth_server"] = server
    server.register_grant(AuthorizationCodeGrant, [RequiredCodeChallenge(required=True)])
    server.register_grant(RefreshTokenGrant)
    require_oauth.register_token_validator(Validator())
    app.register_blueprint(bp)
    from portal.csrf import csrf
    csrf.exempt(issue_token)  # the hub authenticates with its client secret, not a form token
