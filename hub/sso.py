"""Sign-in through the portal (single sign-on), for both hubs: hub/jupyterhub_config.py calls
configure() with the labcommons settings; the zero-to-jupyterhub hub (deploy/values/jupyterhub.yaml:
hub.extraFiles mounts this file, hub.extraConfig imports it) calls it with inputs_from(os.environ),
whose variables come from hub.extraEnv and the Secret labcommons-hub. Self-contained (no labcommons
import), like hub/kubespawner.py: the chart's hub image has only JupyterHub and its authenticators.

Imported, not load_subconfig'ed: the inputs are explicit arguments rather than variables put into
the hub's environment (which every child process would inherit), and a file missing from the
chart's hub fails the start (load_subconfig skips a missing file silently, leaving the chart's
default authenticator in place). See docs/jupyterhub.md and docs/deploy.md.
"""
from __future__ import annotations

from collections.abc import Mapping

CLIENT_ID = "jupyterhub"            # the hub's client id at the portal (portal/notebooks/oauth.py)
SERVICE = "labcommons-portal"       # the portal's hub service, for "Open in Jupyter"
TOKEN_KEY = "labcommons_token"      # the key of the user's metadata-service token in the userdata
DEFAULT_TOKEN_TTL_SECONDS = 8 * 3600  # ground.settings' token_ttl_seconds default
# what inputs_from() reads; the chart's hub.extraEnv gives each (the secrets from labcommons-hub)
ENVIRONMENT = {
    "LABCOMMONS_HUB_URL": "the hub's public address, where the portal sends browsers back",
    "LABCOMMONS_PORTAL_URL": "the portal's public address, where the hub sends browsers to sign in",
    "LABCOMMONS_PORTAL_INTERNAL_URL": "how the hub reaches the portal's /oauth/token and /oauth/userinfo",
    "LABCOMMONS_HUB_OAUTH_CLIENT_SECRET": "the hub's OAuth client secret (key oauth-client-secret)",
    "LABCOMMONS_HUB_PORTAL_SERVICE_TOKEN": "the portal's hub service token (key portal-service-token)",
}


def token_environment(spawner, auth_state: dict | None) -> None:
    """auth_state_hook: before every spawn, put the user's metadata-service token (minted by the
    portal at sign-in and renewed at each refresh) into the server's environment."""
    userdata = (auth_state or {}).get("oauth_user") or {}
    if token := userdata.get(TOKEN_KEY):
        spawner.environment["LABCOMMONS_TOKEN"] = token


def inputs_from(env: Mapping[str, str]) -> dict:
    """configure()'s arguments from environment variables; a clear error names a missing or
    malformed one. LABCOMMONS_TOKEN_TTL_SECONDS is optional, as in ground.settings."""
    values = {name: env.get(name, "").strip() for name in ENVIRONMENT}
    for name, value in values.items():
        if not value:
            raise ValueError(f"hub/sso.py: {name} is not set; give {ENVIRONMENT[name]} (docs/deploy.md)")
        if name.endswith("_URL") and not value.startswith(("http://", "https://")):
            raise ValueError(f"hub/sso.py: {name}: {value!r} is not allowed; give an http:// or https:// address")
    ttl = env.get("LABCOMMONS_TOKEN_TTL_SECONDS", "").strip() or str(DEFAULT_TOKEN_TTL_SECONDS)
    if not ttl.isdigit():
        raise ValueError(f"hub/sso.py: LABCOMMONS_TOKEN_TTL_SECONDS: {ttl!r} is not a whole number")
    return {"hub_url": values["LABCOMMONS_HUB_URL"], "portal_url": values["LABCOMMONS_PORTAL_URL"],
            "portal_internal_url": values["LABCOMMONS_PORTAL_INTERNAL_URL"],
            "client_secret": values["LABCOMMONS_HUB_OAUTH_CLIENT_SECRET"],
            "service_token": values["LABCOMMONS_HUB_PORTAL_SERVICE_TOKEN"], "token_ttl_seconds": int(ttl)}


def configure(c, *, hub_url: str, portal_url: str, portal_internal_url: str, client_secret: str,
              service_token: str, token_ttl_seconds: int) -> None:
    """Into the hub's config c: the portal as OAuth2 provider, auth state and its refresh, the
    token hook, and the portal's hub service with its role (added to services the config has)."""
    authenticator(c, hub_url.rstrip("/"), portal_url.rstrip("/"), portal_internal_url.rstrip("/"), client_secret)
    auth_state(c, token_ttl_seconds)
    portal_service(c, service_token)


def authenticator(c, hub_url: str, portal_url: str, portal_inside: str, client_secret: str) -> None:
    """GenericOAuthenticator against the portal (authorization code + PKCE)."""
    c.JupyterHub.authenticator_class = "generic-oauth"
    c.GenericOAuthenticator.client_id = CLIENT_ID
    c.GenericOAuthenticator.client_secret = client_secret
    c.GenericOAuthenticator.oauth_callback_url = f"{hub_url}/hub/oauth_callback"
    c.GenericOAuthenticator.authorize_url = f"{portal_url}/oauth/authorize"  # the browser goes here
    c.GenericOAuthenticator.token_url = f"{portal_inside}/oauth/token"       # the hub calls these itself
    c.GenericOAuthenticator.userdata_url = f"{portal_inside}/oauth/userinfo"
    c.GenericOAuthenticator.scope = ["profile"]
    c.GenericOAuthenticator.username_claim = "name"
    c.GenericOAuthenticator.enable_pkce = True
    c.GenericOAuthenticator.auto_login = True  # straight to the portal: one sign-in, no "sign in with" button
    c.GenericOAuthenticator.allow_all = True  # every portal user may have a server; data access stays the service's
    c.GenericOAuthenticator.admin_users = set()
    c.JupyterHub.shutdown_on_logout = False


def auth_state(c, token_ttl_seconds: int) -> None:
    """Keep the userdata (with a fresh service token) and renew it, so servers get a live token.
    The key (JUPYTERHUB_CRYPT_KEY, or the chart's CryptKeeper.keys) is the hub's own."""
    c.GenericOAuthenticator.enable_auth_state = True
    c.GenericOAuthenticator.refresh_pre_spawn = True  # every spawn gets a token minted just then
    # renew well before the token expires, so a long session keeps a working token
    c.GenericOAuthenticator.auth_refresh_age = max(10, token_ttl_seconds // 4)
    c.Spawner.auth_state_hook = token_environment
    # A running server outlives the token it started with (LABCOMMONS_TOKEN): its own hub token may
    # read the user's auth state, which the hub renews (refresh_user) when older than auth_refresh_age,
    # so the notebook helper can ask $JUPYTERHUB_API_URL/users/<name> for a fresh token.
    c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server", "read:users:name!user",
                                     "admin:auth_state!user"]


def portal_service(c, service_token: str) -> None:
    """The portal's hub service and roles, appended: the chart's config already lists its culler."""
    c.JupyterHub.services.append({"name": SERVICE, "api_token": service_token})
    c.JupyterHub.load_roles.extend([
        # users hold their own auth state (their own service token), so their servers' tokens may too
        {"name": "user", "scopes": ["self", "admin:auth_state!user"]},
        # the portal creates a user on first hand-off, gives it a token, starts and reaches its server
        {"name": SERVICE, "services": [SERVICE],
         "scopes": ["admin:users", "admin:auth_state", "servers", "access:servers", "read:users"]},
    ])
