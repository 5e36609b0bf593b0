"""Sign-in, sessions and request-forgery defences, against a real metadata service."""
import dataclasses

import pytest

from metadata.client import MetadataClient
from portal import create_app, session_key
from tests.portal.conftest import ORIGIN


def test_pages_and_exports_need_a_signed_in_session(portal):
    response = portal.get("/explore?tab=file")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/signin?next=/explore")
    assert portal.get("/export/manifest.tsv").status_code == 302
    assert portal.post("/_dash-update-component", json={}, headers={"Origin": ORIGIN}).status_code == 401
    assert portal.get("/signin").status_code == 200
    assert portal.get("/assets/portal.css").status_code == 200


def test_a_wrong_password_is_refused(portal, sign_in):
    response = sign_in(portal, "ana", password="not-the-password")
    assert response.status_code == 401 and "Wrong user name or password" in response.get_data(as_text=True)
    assert sign_in(portal, "mallory", password="x").status_code == 401
    assert portal.get("/explore").status_code == 302


def test_the_sign_in_form_needs_its_csrf_token(portal, server):
    from tests.portal.conftest import demo_passwords

    password = demo_passwords(server.settings.data_dir)["ana"]
    response = portal.post("/signin", data={"username": "ana", "password": password})
    assert response.status_code == 400 and "did not come from this site" in response.get_data(as_text=True)
    assert portal.get("/explore").status_code == 302


def test_signing_in_gives_a_token_with_the_accounts_rights(app, portal, sign_in, server, project, admin):
    admin.set_grant("tom", project, "write")  # grants live in the account, managed by admins
    response = sign_in(portal, "tom", next_path="/explore?tab=file")
    assert response.status_code == 302 and response.headers["Location"] == "/explore?tab=file"
    with portal.session_transaction() as session:
        token = session["token"]
    with MetadataClient("127.0.0.1", server.bound_port(), token) as client:
        identity = client.whoami()
    assert identity.user == "tom" and identity.roles == ["technician"] and identity.grants == {project: "write"}
    assert portal.get("/explore").status_code == 200
    assert portal.get("/").headers["Location"] == "/explore"


def test_the_session_cookie_is_http_only_and_same_site(portal, sign_in):
    cookie = sign_in(portal).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_after_sign_in_the_portal_never_sends_you_to_another_site(portal, sign_in):
    assert sign_in(portal, next_path="//evil.example/x").headers["Location"] == "/explore"


def _layout_csrf_token(node) -> str | None:
    """The hidden csrf_token value in a Dash layout (the header's sign-out form)."""
    if isinstance(node, dict):
        props = node.get("props", {})
        if props.get("name") == "csrf_token":
            return props["value"]
        return next(filter(None, map(_layout_csrf_token, [props.get("children"), *node.values()])), None)
    if isinstance(node, list):
        return next(filter(None, map(_layout_csrf_token, node)), None)
    return None


def test_sign_out_ends_the_session(portal, sign_in):
    sign_in(portal)
    token = _layout_csrf_token(portal.get("/_dash-layout").get_json())
    assert portal.post("/signout", data={}).status_code == 400  # no token: refused
    assert portal.get("/explore").status_code == 200
    assert portal.post("/signout", data={"csrf_token": token}).status_code == 302
    assert portal.get("/explore").status_code == 302


def test_dash_callbacks_must_come_from_the_portals_own_pages(portal, sign_in, dash_call):
    sign_in(portal)
    assert portal.post("/_dash-update-component", json={}).status_code == 403  # no Origin
    foreign = portal.post("/_dash-update-component", json={}, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    answer = dash_call(portal, "explore-chips.children", [{"id": "explore-state", "property": "data",
                                                          "value": {"kind": "case"}}])
    assert "No filters" in str(answer)


def test_the_session_key_survives_a_restart_and_is_not_the_token_key(server):
    settings = dataclasses.replace(server.settings, port=server.bound_port())
    first, second = create_app({"SETTINGS": settings}), create_app({"SETTINGS": settings})
    assert first.secret_key == second.secret_key == session_key(settings)
    assert first.secret_key != settings.signing_key()


def test_an_expired_service_token_ends_the_session_with_a_message(portal, sign_in):
    sign_in(portal)
    with portal.session_transaction() as session:
        session["expires_at"] = 1  # the service token's expiry has passed
    assert portal.post("/_dash-update-component", json={}, headers={"Origin": ORIGIN}).get_json() == {
        "error": "your session has expired; please sign in again"}
    sign_in(portal)
    with portal.session_transaction() as session:
        session["expires_at"] = 1
    response = portal.get("/explore", follow_redirects=True)
    assert "/signin" in response.request.path and "Your session has expired" in response.get_data(as_text=True)
    assert portal.get("/explore").status_code == 302  # the session is gone, not just refused once


def test_a_token_the_service_refuses_ends_the_session_with_its_reason(portal, sign_in, admin):
    sign_in(portal)
    admin.sign_out_everywhere("ana")
    response = portal.get("/account", follow_redirects=True)
    assert "/signin" in response.request.path and "sign in again" in response.get_data(as_text=True)
    assert portal.get("/account").status_code == 302


def test_a_callback_refused_mid_flight_reports_it_and_leaves_the_cookie(portal, sign_in, admin):
    """A callback still running when its page signed out answers 401 with the reason, and writes no
    cookie: it could arrive after the sign-in form's, whose CSRF token it would wipe."""
    sign_in(portal)
    admin.sign_out_everywhere("ana")
    deps = portal.get("/_dash-dependencies").get_json()
    header = next(d for d in deps if "site-header.children" in d["output"])
    body = {"output": header["output"], "outputs": [{"id": "site-header", "property": "children"},
                                                    {"id": "header-path", "property": "data"}],
            "inputs": [{"id": "_pages_location", "property": "pathname", "value": "/runs"}],
            "state": [{"id": "header-path", "property": "data", "value": "/explore"}],
            "changedPropIds": ["_pages_location.pathname"]}
    response = portal.post("/_dash-update-component", json=body, headers={"Origin": ORIGIN})
    assert response.status_code == 401 and "sign in again" in response.get_json()["error"]
    assert "Set-Cookie" not in response.headers
    ended = portal.get("/account", follow_redirects=True)  # the next page load ends it
    assert "/signin" in ended.request.path and "sign in again" in ended.get_data(as_text=True)


def test_the_session_holds_a_flask_login_user(app, portal, sign_in):
    from flask_login import current_user

    sign_in(portal, "ada")
    with app.test_request_context():
        with portal.session_transaction() as session:
            assert session["_user_id"] == "ada" and session["roles"] == ["admin"]
    with portal:
        portal.get("/account")
        assert current_user.name == "ada" and current_user.is_admin and current_user.role == "admin"


def test_session_cookies_are_secure_behind_https(server):
    from ground.settings import SettingsError, load

    assert load({}).secure_cookies is False
    assert load({"LABCOMMONS_PORTAL_URL": "https://commons.example.org/"}).secure_cookies is True
    assert load({"LABCOMMONS_PORTAL_URL": "https://x", "LABCOMMONS_PORTAL_SECURE_COOKIES": "false"}).secure_cookies is False
    assert load({"LABCOMMONS_PORTAL_SECURE_COOKIES": "true"}).secure_cookies is True
    with pytest.raises(SettingsError, match="LABCOMMONS_PORTAL_SECURE_COOKIES: 'maybe' is not true or false"):
        load({"LABCOMMONS_PORTAL_SECURE_COOKIES": "maybe"})
    settings = dataclasses.replace(server.settings, port=server.bound_port(), portal_url="https://commons.example.org")
    assert create_app({"SETTINGS": settings}).config["SESSION_COOKIE_SECURE"] is True


def test_only_sign_in_and_sign_out_write_the_session_cookie(portal, sign_in):
    """A request still in flight when the user signs out must not write the old session back."""
    assert "Set-Cookie" in sign_in(portal).headers
    assert "Set-Cookie" not in portal.get("/explore").headers
    assert "Set-Cookie" not in portal.get("/account").headers
