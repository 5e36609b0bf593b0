"""The account page: personal tokens (shown once, working, revocable) and sign out everywhere."""
import re

import pytest

from metadata.client import MetadataClient
from metadata.idl import metadata_thrift as T
from tests.portal.conftest import csrf_token


@pytest.fixture
def ana(portal, sign_in):
    sign_in(portal, "ana")
    return portal


def create(portal, name: str):
    return portal.post("/account/tokens", data={"csrf_token": csrf_token(portal, "/account"), "name": name,
                                                "ttl": "30 days"})


def shown_token(response) -> str:
    return re.search(r'<pre><code id="account-token-value">([^<]+)</code></pre>', response.get_data(as_text=True)).group(1)


def test_a_new_token_is_shown_once_and_works_as_the_user(ana, server):
    response = create(ana, "my notebook")
    assert response.status_code == 200
    with MetadataClient("127.0.0.1", server.bound_port(), shown_token(response)) as client:
        who = client.whoami()
    assert (who.user, who.kind) == ("ana", "personal")
    listing = ana.get("/account").get_data(as_text=True)
    assert "my notebook" in listing and "active" in listing and "account-token-value" not in listing


def test_forms_without_the_csrf_token_are_refused(ana):
    assert ana.post("/account/tokens", data={"name": "x"}).status_code == 400
    assert ana.post("/account/sign-out-everywhere").status_code == 400


def test_a_nameless_token_is_refused_with_the_services_message(ana):
    response = create(ana, " ")
    assert response.status_code == 400 and "give the token a name" in response.get_data(as_text=True)


def test_a_revoked_token_stops_working(ana, server):
    token = shown_token(create(ana, "old script"))
    with MetadataClient("127.0.0.1", server.bound_port(), token) as client:
        token_id = client.whoami().token_id
    response = ana.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf_token(ana, "/account")})
    page = ana.get("/account").get_data(as_text=True)
    assert response.status_code == 302
    working, ended = page.split('id="account-ended"')   # listed with the ended tokens, not the working ones
    assert "old script" not in working and "old script" in ended and "revoked" in ended
    with MetadataClient("127.0.0.1", server.bound_port(), token) as client:
        with pytest.raises(T.Unauthenticated, match="revoked"):
            client.whoami()


def test_signing_out_everywhere_ends_every_session_and_token(ana, server, portal, sign_in):
    token = shown_token(create(ana, "laptop"))
    response = ana.post("/account/sign-out-everywhere", data={"csrf_token": csrf_token(ana, "/account")})
    assert response.status_code == 302 and "/signin" in response.headers["Location"]
    assert ana.get("/explore").status_code == 302  # this session is over
    with MetadataClient("127.0.0.1", server.bound_port(), token) as client:
        with pytest.raises(T.Unauthenticated, match="signed out"):
            client.whoami()
    assert sign_in(portal, "ana").status_code == 302  # and signing in again works
