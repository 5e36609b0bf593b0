"""The administrators' pages in-process: users, roles, grants, tiered access and the audit log,
against a real metadata service (see tests/portal/conftest.py)."""
import json
import re

import pytest

from portal.admin.audit import detail_fields
from tests.portal.conftest import csrf_token

ADMIN_PAGES = ["/admin/", "/admin/users", "/admin/audit", "/admin/audit.tsv", "/admin/audit.json",
               "/admin/tier-access", "/admin/triggers", "/admin/alerts"]
ADMIN_FORMS = ["/admin/users", "/admin/users/ana/password", "/admin/users/ana/roles", "/admin/users/ana/disabled",
               "/admin/users/ana/sign-out", "/admin/users/ana/grants", "/admin/users/ana/grants/x/revoke",
               "/admin/tier-access", "/admin/triggers/ims-qc-on-new-measurement/off", "/admin/alerts"]


@pytest.fixture
def ada(portal, sign_in):
    sign_in(portal, "ada")
    return portal


def post(client, path: str, **data):
    return client.post(path, data={"csrf_token": csrf_token(client, "/admin/users"), **data}, follow_redirects=True)


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.mark.parametrize("user", ["ana", "tom"])
def test_non_admins_get_403_on_every_admin_page_and_form(app, sign_in, user):
    client = app.test_client()
    sign_in(client, user)
    token = csrf_token(client, "/account")
    for path in ADMIN_PAGES:
        response = client.get(path)
        assert response.status_code == 403 and "Administrators only" in text(response), path
    for path in ADMIN_FORMS:
        assert client.post(path, data={"csrf_token": token, "limit": "5", "password": "x" * 12}).status_code == 403
    assert "Admin" not in json.dumps(client.get("/_dash-layout").get_json())


def test_signed_out_visitors_are_sent_to_sign_in(portal):
    response = portal.get("/admin/users")
    assert response.status_code == 302 and response.headers["Location"].startswith("/signin?next=/admin/users")


def test_the_users_page_lists_accounts_with_roles_and_grants(ada, demo):
    page = text(ada.get("/admin/users"))
    for name in ("ana", "tom", "ada"):
        assert f'id="admin-user-{name}"' in page
    assert "analyst" in page and ": read" in page
    add_role = re.search(r'<select name="role" id="admin-add-role".*?</select>', page, re.S).group(0)
    assert " selected" not in add_role  # least privilege: the admin must choose a role
    assert "Admin" in json.dumps(ada.get("/_dash-layout").get_json())  # the header links here


def test_an_admin_adds_a_user_who_can_then_sign_in(app, ada, sign_in):
    response = post(ada, "/admin/users", username="nina", password="a long password 1", role="analyst")
    assert response.status_code == 200 and "Added nina (analyst)." in text(response)
    nina = app.test_client()
    assert sign_in(nina, "nina", password="a long password 1").status_code == 302
    taken = post(ada, "/admin/users", username="nina", password="a long password 1", role="analyst")
    assert taken.status_code == 400 and "User name: &#39;nina&#39; is taken" in text(taken)


@pytest.mark.parametrize("data, words", [
    ({"username": "", "password": "a long password", "role": "analyst"}, "User name: give a user name"),
    ({"username": "bad name!", "password": "a long password", "role": "analyst"}, "User name: use 1 to 128"),
    ({"username": "nina", "password": "short", "role": "analyst"}, "Password: use 10 to 1024 characters"),
    ({"username": "nina", "password": "a long password", "role": "pope"}, "Role: Not a valid choice"),
    ({"username": "nina", "password": "a long password", "role": ""}, "Role: choose a role"),
])
def test_bad_new_users_are_refused_naming_the_field(ada, data, words):
    response = post(ada, "/admin/users", **data)
    assert response.status_code == 400 and words in text(response)
    assert 'id="admin-user-nina"' not in text(response)


def test_every_admin_form_needs_its_csrf_token(ada):
    for path in ADMIN_FORMS:
        response = ada.post(path, data={"limit": "5"})
        assert response.status_code == 400 and "did not come from this site" in text(response), path


def test_grants_are_added_and_revoked_on_the_page(ada, admin, demo):
    project = sorted(n["submitter_id"] for n in admin.nodes("project"))[0]
    admin.set_grant("ana", project, "")
    granted = post(ada, "/admin/users/ana/grants", project=project, access="write")
    assert f"ana may now write {project}." in text(granted)
    assert next(a for a in admin.accounts() if a.user == "ana").grants[project] == "write"
    post(ada, f"/admin/users/ana/grants/{project}/revoke")
    assert project not in next(a for a in admin.accounts() if a.user == "ana").grants
    bad = post(ada, "/admin/users/ana/grants", project="no-such-project", access="read")
    assert bad.status_code == 400 and "Project: Not a valid choice" in text(bad)
    bad = post(ada, "/admin/users/ana/grants", project=project, access="own")
    assert bad.status_code == 400 and "Access: Not a valid choice" in text(bad)


def test_roles_passwords_disabling_and_signing_out(app, ada, admin, sign_in):
    post(ada, "/admin/users/tom/roles", roles=["technician", "analyst"])
    assert next(a for a in admin.accounts() if a.user == "tom").roles == ["analyst", "technician"]
    short = post(ada, "/admin/users/tom/password", password="short")
    assert short.status_code == 400 and "tom: New password: use 10" in text(short)
    assert "New password set for tom" in text(post(ada, "/admin/users/tom/password", password="another long one"))
    tom = app.test_client()
    assert sign_in(tom, "tom", password="another long one").status_code == 302
    assert "tom is signed out everywhere." in text(post(ada, "/admin/users/tom/sign-out"))
    assert tom.get("/account").status_code == 302  # that session is over
    assert "tom is disabled." in text(post(ada, "/admin/users/tom/disabled", disabled="yes"))
    assert sign_in(tom, "tom", password="another long one").status_code == 401
    assert "tom is enabled." in text(post(ada, "/admin/users/tom/disabled", disabled="no"))
    missing = post(ada, "/admin/users/nobody/roles", roles=["analyst"])
    assert missing.status_code == 404 and "no account" in text(missing)


def test_the_tier_access_limit_is_set_on_its_page(ada, admin):
    page = text(ada.get("/admin/tier-access"))
    assert 'id="admin-tier-current">off' in page and 'value="species"' in page
    assert "Tier-access limit set to 20, counts rounded down to multiples of 10." in text(
        post(ada, "/admin/tier-access", limit="20", granularity="10", fields="default"))
    assert admin.tier_access_limit() == 20
    for bad in ("-1", "lots"):
        response = post(ada, "/admin/tier-access", limit=bad, granularity="10", fields="default")
        assert response.status_code == 400 and "Tier-access limit:" in text(response)
    assert admin.tier_access_limit() == 20
    assert "Tiered access is off." in text(post(ada, "/admin/tier-access", limit="0", granularity="10",
                                                fields="default"))


def test_the_alert_thresholds_are_set_on_their_page(ada, admin):
    page = text(ada.get("/admin/alerts"))
    assert 'id="admin-alerts-form"' in page and 'id="admin-alerts-runs"' in page
    saved = post(ada, "/admin/alerts", min_success_percent="80", over_last_runs="10", max_queued_seconds="3600",
                 worker_silent_seconds="0")
    assert "The alert thresholds are saved." in text(saved)
    current = admin.alert_settings()
    assert (current.min_success_rate, current.over_last_runs, current.max_queued_seconds) == (0.8, 10, 3600)
    bad = post(ada, "/admin/alerts", min_success_percent="120", over_last_runs="10", max_queued_seconds="0",
               worker_silent_seconds="0")
    assert bad.status_code == 400 and "give a whole number from 0 (off) to 100" in text(bad)
    assert admin.alert_settings().min_success_rate == 0.8


def test_tier_visible_fields_and_granularity_are_set_on_the_same_page(ada, admin):
    done = post(ada, "/admin/tier-access", limit="50", granularity="25", fields="chosen", visible=["species", "sex"])
    assert done.status_code == 200 and 'id="admin-tier-granularity">25' in text(done)
    access = admin.tier_access()
    assert (access.limit, access.granularity, access.visible_fields, access.default_fields) == (
        50, 25, ["species", "sex"], False)
    refused = post(ada, "/admin/tier-access", limit="50", granularity="25", fields="chosen", visible=["submitter_id"])
    assert refused.status_code == 400 and "submitter_id names single records" in text(refused)
    bad = post(ada, "/admin/tier-access", limit="50", granularity="0", fields="default")
    assert bad.status_code == 400 and "Granularity: give a whole number from 1" in text(bad)
    assert admin.tier_access().visible_fields == ["species", "sex"]
    post(ada, "/admin/tier-access", limit="50", granularity="10", fields="default")
    assert admin.tier_access().default_fields


def test_the_audit_log_filters_pages_and_exports(ada, admin, demo):
    project = sorted(n["submitter_id"] for n in admin.nodes("project"))[0]
    for access in ("write", "read") * 26:  # more than a page of entries
        admin.set_grant("tom", project, access)
    page = text(ada.get(f"/admin/audit?action=set_grant&project={project}&user=local-admin&outcome=ok"))
    assert page.count("<td>set_grant</td>") == 50 and "<td>submit</td>" not in page
    assert f"<dt>arguments</dt> <dd>{project}, " in page and "{&#34;arguments" not in page  # fields, not JSON
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</td>", page)  # a time as people write it, no ISO "T"
    assert "No matching entries." in text(ada.get("/admin/audit?before=2000-01-01"))
    first = text(ada.get("/admin/audit"))
    older = re.search(r'href="([^"]+)" id="admin-audit-next"', first).group(1).replace("&amp;", "&")
    assert "cursor=" in older and text(ada.get(older)) != first
    tsv = ada.get(f"/admin/audit.tsv?action=set_grant&project={project}")
    lines = tsv.get_data(as_text=True).splitlines()
    assert lines[0].split("\t") == ["at", "user", "action", "target", "outcome", "client", "detail_json"]
    assert len(lines) > 53 and all("\tset_grant\t" in line for line in lines[1:])
    assert "attachment" in tsv.headers["Content-Disposition"]
    assert tsv.headers["Content-Type"] == "text/tab-separated-values; charset=utf-8"
    entries = json.loads(ada.get("/admin/audit.json?action=set_grant").get_data(as_text=True))
    assert entries and all(e["action"] == "set_grant" and "arguments" in e["detail"] for e in entries)


@pytest.mark.parametrize("query, words", [
    ("since=yesterday", "since: &#39;yesterday&#39; is not a time"),
    ("before=2026-13-45", "before: &#39;2026-13-45&#39; is not a time"),
    ("user=" + "x" * 300, "user: at most 200 characters"),
])
def test_bad_audit_filters_are_refused_naming_the_field(ada, query, words):
    response = ada.get("/admin/audit?" + query)
    assert response.status_code == 400 and words in text(response)
    export = ada.get("/admin/audit.tsv?" + query)
    assert export.status_code == 400 and "attachment" not in export.headers.get("Content-Disposition", "")
    assert ada.get("/admin/audit.xml").status_code == 404


def test_the_triggers_page_says_when_no_rules_are_installed(ada):
    page = text(ada.get("/admin/triggers"))
    assert "No trigger rules are installed." in page          # the tests' service runs without rules


def test_an_admin_switches_a_trigger_off_and_on(app, sign_in, server):
    from metadata.triggers import load_rules
    service = server.guard._service
    service.triggers.rules = {r.name: r for r in load_rules(None)}   # the shipped rule
    client = app.test_client()
    sign_in(client, "ada")
    page = text(post(client, "/admin/triggers/ims-qc-on-new-measurement/off"))
    assert "The trigger ims-qc-on-new-measurement is disabled." in page and ">disabled<" in page
    page = text(post(client, "/admin/triggers/ims-qc-on-new-measurement/on"))
    assert ">enabled<" in page and "Disable" in page
    page = text(post(client, "/admin/triggers/nope/on"))
    assert "no trigger &#39;nope&#39;" in page


def test_audit_details_read_as_fields():
    assert detail_fields('{"format": "json", "dry_run": false, "bytes": 12345, "arguments": ["p", ["a", "b"]]}') == [
        ("format", "json"), ("dry run", "no"), ("bytes", "12,345"), ("arguments", "p, a, b")]
    assert detail_fields("") == [] and detail_fields("not json") == [("detail", "not json")]
