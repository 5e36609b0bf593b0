"""Sign-in, sessions and request-forgery defences, against a real metadata service."""
import dataclasses

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
