"""A notebook server outlives its token: the helper swaps the expired token its server started
with for the one the hub has renewed through the portal, and says what to do when the hub cannot.

A commons of its own, with 45-second tokens, so the hub renews auth state older than 11 s
(a quarter of the lifetime) and a token expires within the test: real service, portal, hub,
proxy and single-user server on loopback."""
from __future__ import annotations

import time

import pytest
import requests

import labcommons
from metadata.idl import metadata_thrift as T
from tests.hub.conftest import commons_with_hub, csrf_token
from tests.hub.test_sso import server_environment, wait_ready

pytestmark = pytest.mark.e2e
TTL = 45
REFRESH_AGE = TTL // 4   # hub/jupyterhub_config.py: auth_refresh_age
USER, PASSWORD = "nia", "nia-password-123"
SERVER_ENV = ("LABCOMMONS_HOST", "LABCOMMONS_PORT", "LABCOMMONS_TOKEN", "JUPYTERHUB_API_URL",
              "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_USER")


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory):
    """(service, hub, admin client, the user's server environment) with the user's server running.
    The service's own admin token lives three lifetimes: long enough for the whole test."""
    def account(admin, _data_dir):
        admin.save_account(USER, PASSWORD, ["analyst"], {})

    data_dir = tmp_path_factory.mktemp("renewal") / "data"
    with commons_with_hub(data_dir, account, LABCOMMONS_TOKEN_TTL_SECONDS=str(TTL)) as (service, portal, hub, admin):
        with requests.Session() as session:   # sign in to the portal, then to the hub through it
            form = session.get(f"{portal.url}/signin", timeout=30).text
            session.post(f"{portal.url}/signin", timeout=30, data={
                "csrf_token": csrf_token(form), "username": USER, "password": PASSWORD}).raise_for_status()
            assert session.get(f"{hub.url}/hub/login", timeout=60).url.startswith(f"{hub.url}/hub/")
        assert hub.api("POST", f"/users/{USER}/server").status_code in (201, 202)
        wait_ready(hub, USER)
        yield service, hub, admin, server_environment(USER, data_dir)


def test_an_expired_token_is_renewed_from_the_hub_and_the_end_of_the_chain_is_explained(short_lived,
                                                                                         monkeypatch):
    service, hub, admin, env = short_lived
    for name in SERVER_ENV:
        monkeypatch.setenv(name, env[name])
    started_with = env["LABCOMMONS_TOKEN"]
    with labcommons.connect() as lc:
        expires_at = lc.whoami().expires_at
    # the server reports activity to the hub with its own token; each such request past the
    # refresh age renews the user's auth state, minting the next token from the last
    time.sleep(REFRESH_AGE + 1)
    assert hub_user(env)["auth_state"]["oauth_user"]["labcommons_token"] != started_with
    time.sleep(max(0.0, expires_at - time.time()) + 1)

    with labcommons.connect() as lc:
        assert lc.whoami().user == USER                        # expired, renewed, sent again
        assert lc.client.token not in ("", started_with)
        renewed = lc.client.token
        admin.sign_out_everywhere(USER)                        # the chain ends here
        time.sleep(REFRESH_AGE + 1)
        lc.client.token = started_with                         # expired again: the hub cannot help now
        with pytest.raises(T.Unauthenticated, match="JupyterHub could not renew it.*Sign in to the portal again"):
            lc.whoami()
    assert renewed != started_with


def hub_user(env: dict) -> dict:
    """The user's model as their server's own hub token sees it (a token-authenticated request)."""
    answer = requests.get(f"{env['JUPYTERHUB_API_URL']}/users/{env['JUPYTERHUB_USER']}", timeout=30,
                          headers={"Authorization": f"token {env['JUPYTERHUB_API_TOKEN']}"})
    answer.raise_for_status()
    return answer.json()
