"""One layout for every page, in-process: the header of a Flask page and of the Dash shell come from
one definition (portal/header.py), breadcrumbs on pages under another, and 404/403 pages that say
where you are and offer the way back. The browser test (tests/e2e/test_every_page.py) visits them all."""
import base64
import hashlib
import json
import re

import pytest

from portal import errors, header

ROLES = {"ana": ("analyst",), "tom": ("technician",), "ada": ("admin",)}


def text(response) -> str:
    return response.get_data(as_text=True)


def flask_links(page: str) -> list[str]:
    return re.findall(r'id="(shell-[a-z-]+)"', page.split("</header>")[0])


def dash_links(layout: dict) -> list[str]:
    return re.findall(r'"id": "(shell-[a-z-]+)"', json.dumps(layout))


@pytest.mark.parametrize("user", sorted(ROLES))
def test_flask_and_dash_pages_show_one_header_for_a_role(app, sign_in, user):
    client = app.test_client()
    sign_in(client, user)
    expected = [f"shell-{link.name}" for link in header.links_for(ROLES[user])]
    expected += ["shell-notifications", "shell-user", "shell-signout"]
    for path in ("/account", "/notifications", "/jupyter/open/view?tab=case", "/static/no-such.js"):
        assert flask_links(text(client.get(path))) == expected, path
    assert dash_links(client.get("/_dash-layout").get_json()) == expected
    assert ("shell-register" in expected) == (user != "ana") and ("shell-admin" in expected) == (user == "ada")


def test_an_unknown_address_is_a_404_in_the_layout_with_the_way_back(app, sign_in):
    client = app.test_client()
    sign_in(client, "ana")
    assert client.get("/nowhere/at-all").status_code == 404  # Dash's catch-all, then its 404 page
    assert client.get("/explore").status_code == 200 and client.get("/runs").status_code == 200
    missing = client.get("/static/no-such.js")  # a Flask route's 404
    assert missing.status_code == 404 and 'id="shell-explore"' in text(missing)
    assert "There is no page at /static/no-such.js." in text(missing) and 'href="/explore"' in text(missing)


def test_an_admin_page_is_403_for_an_analyst_with_the_way_home_only(app, sign_in):
    client = app.test_client()
    sign_in(client, "ana")
    refused = text(client.get("/admin/audit"))
    ways = re.search(r'id="problem-ways">(.*?)</p>', refused, re.S).group(1)
    assert "Administrators only" in refused and 'href="/explore"' in ways and "/admin" not in ways


def test_admin_pages_and_bulk_registration_have_breadcrumbs(app, sign_in):
    client = app.test_client()
    sign_in(client, "ada")
    crumbs = re.search(r'<nav class="breadcrumbs".*?</nav>', text(client.get("/admin/audit")), re.S).group(0)
    assert 'href="/admin/users">Admin</a>' in crumbs and 'aria-current="page">Audit log<' in crumbs
    bulk = re.search(r'<nav class="breadcrumbs".*?</nav>', text(client.get("/register/bulk")), re.S).group(0)
    assert 'href="/register">Register</a>' in bulk


@pytest.mark.parametrize("path, above", [
    ("/runs/x/y", ("Runs", "/runs")), ("/measurement/p/m", ("Experiments", "/browse")),
    ("/admin/nope", ("Admin", "/admin/users")), ("/account/x", ("Your account", "/account")),
    ("/nowhere", None), ("/explore/x", ("Explore", "/explore")),
])
def test_the_page_above_an_address_is_its_section(path, above):
    assert errors.section_of(path) == above
    assert errors.ways_back(path)[0] == errors.HOME and len(errors.ways_back(path)) == (2 if above and
                                                                                         above[1] != "/explore" else 1)



def test_every_page_carries_a_content_security_policy_that_allows_dashs_inline_scripts_only(app, sign_in):
    client = app.test_client()
    sign_in(client, "ana")
    dash_page, flask_page = client.get("/explore"), client.get("/account")
    policy = dash_page.headers["Content-Security-Policy"]
    assert policy == flask_page.headers["Content-Security-Policy"]
    script_src = next(d for d in policy.split("; ") if d.startswith("script-src ")).split()[1:]
    hashes = ["'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
              for s in inline_scripts(text(dash_page))]
    assert len(hashes) == 2 and script_src == ["'self'", *hashes]  # Dash's renderer start and title callback
    assert "default-src 'self'" in policy and "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert inline_scripts(text(flask_page)) == []


def inline_scripts(page: str) -> list[str]:
    """The scripts a browser runs from the page itself (not comments' nor JSON data blocks)."""
    page = re.sub(r"<!--.*?-->", "", page, flags=re.S)
    return re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>(.*?)</script>", page, re.S)
