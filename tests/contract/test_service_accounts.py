"""Accounts, sign-in, revocation and the audit log, through the service (each store)."""
import json

import pytest

from metadata.client import MetadataClient
from metadata.idl import metadata_thrift as T

PASSWORD = "correct horse battery"


@pytest.fixture
def ana(admin, project):
    admin.save_account("ana", PASSWORD, ["analyst"], {project: "read"})
    return admin


def client(server, token) -> MetadataClient:
    return MetadataClient("127.0.0.1", server.bound_port(), token)


def test_signing_in_gives_a_session_token_with_the_accounts_rights(ana, server, project):
    issued = ana.sign_in("ana", PASSWORD, "203.0.113.9")
    with client(server, issued.token) as session:
        who = session.whoami()
    assert (who.user, who.roles, who.grants) == ("ana", ["analyst"], {project: "read"})


@pytest.mark.parametrize("user, password", [("ana", "wrong password!"), ("nobody", PASSWORD)])
def test_a_wrong_name_or_password_gets_one_message(ana, user, password):
    with pytest.raises(T.Forbidden, match="wrong user name or password"):
        ana.sign_in(user, password)


def test_repeated_failures_slow_the_account_down(ana):
    for _ in range(3):
        with pytest.raises(T.Forbidden):
            ana.sign_in("ana", "wrong password!")
    with pytest.raises(T.Forbidden, match="too many failed sign-ins for 'ana'; try again in"):
        ana.sign_in("ana", PASSWORD)


def test_grants_and_revocations_apply_to_tokens_already_issued(ana, server, project):
    session = client(server, ana.sign_in("ana", PASSWORD).token)
    assert session.page("case", project).total == 0
    ana.set_grant("ana", project, "")
    with pytest.raises(T.Forbidden):
        session.page("case", project)
    ana.set_grant("ana", project, "write")
    assert session.whoami().grants == {project: "write"}
    session.close()


def test_signing_out_everywhere_and_disabling_stop_old_tokens(ana, server):
    old = client(server, ana.sign_in("ana", PASSWORD).token)
    ana.sign_out_everywhere("ana")
    with pytest.raises(T.Unauthenticated) as caught:
        old.whoami()
    assert caught.value.code == "token_signed_out"
    fresh = client(server, ana.sign_in("ana", PASSWORD).token)
    assert fresh.whoami().user == "ana"
    ana.save_account("ana", "", ["analyst"], {}, disabled=True)
    with pytest.raises(T.Unauthenticated, match="disabled"):
        fresh.whoami()
    old.close()
    fresh.close()


def test_personal_tokens_are_listed_and_revoked(ana, server, client_for):
    session = client(server, ana.sign_in("ana", PASSWORD).token)
    issued = session.create_personal_token("notebook on my laptop")
    personal = client(server, issued.token)
    assert personal.whoami().user == "ana"
    assert [t.name for t in session.personal_tokens()] == ["notebook on my laptop"]
    with pytest.raises(T.NotFound):
        client_for("mallory").revoke_personal_token(issued.identity.token_id)
    session.revoke_personal_token(issued.identity.token_id)
    with pytest.raises(T.Unauthenticated) as caught:
        personal.whoami()
    assert caught.value.code == "token_revoked"
    with pytest.raises(T.Forbidden, match="no account"):
        client_for("script-user").create_personal_token("x")
    session.close()
    personal.close()


def test_a_personal_token_is_renewed_once_and_revoke_stops_it_at_once(ana, server):
    session = client(server, ana.sign_in("ana", PASSWORD).token)
    with pytest.raises(T.Forbidden, match="only a personal token can be renewed"):
        session.renew_personal_token("x")
    code = client(server, session.create_personal_token("code", 60).token)
    grant = code.renew_personal_token("grant", 0, revoke=True)
    assert (grant.identity.user, grant.identity.kind) == ("ana", "personal")
    with pytest.raises(T.Unauthenticated) as caught:
        code.whoami()  # revoke=True: the renewed token stops working at once
    assert caught.value.code == "token_revoked"
    first = client(server, grant.token)
    second = first.renew_personal_token("grant")
    assert first.whoami().user == "ana"  # without revoke, the renewed token works until it expires
    with pytest.raises(T.Unauthenticated, match="renewed or revoked already") as caught:
        first.renew_personal_token("grant")  # a replay: refused, however often it is tried
    assert caught.value.code == "token_renewed"
    listed = {t.id: t for t in session.personal_tokens()}
    assert (listed[grant.identity.token_id].renewed, listed[grant.identity.token_id].revoked) == (True, False)
    assert not listed[second.identity.token_id].renewed
    for c in (session, code, first):
        c.close()


def test_of_two_racing_renewals_exactly_one_wins(ana, server):
    from concurrent.futures import ThreadPoolExecutor
    session = client(server, ana.sign_in("ana", PASSWORD).token)
    token = session.create_personal_token("code", 60).token
    session.close()

    def renew(_):
        with client(server, token) as racer:
            try:
                return racer.renew_personal_token("grant", 0, revoke=True).token
            except T.Unauthenticated:
                return None

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(renew, range(8)))
    assert sum(o is not None for o in outcomes) == 1, outcomes


@pytest.mark.parametrize("user, password, roles, words", [
    ("ana", "short", ["analyst"], "at least 10 characters"),
    ("new", "", ["analyst"], "needs a password"),
    ("ana", PASSWORD, ["wizard"], "not a role"),
    ("bad name!", PASSWORD, ["analyst"], "not a user name"),
])
def test_bad_accounts_are_refused(admin, user, password, roles, words):
    with pytest.raises(T.ValidationError, match=words):
        admin.save_account(user, password, roles)


def test_the_audit_log_records_writes_and_refusals_without_secrets(ana, server, project, client_for):
    ana.submit(project, [{"type": "case", "submitter_id": "c-1", "species": "human"}])
    ana.submit(project, [{"type": "case", "submitter_id": "c-2", "species": "human"}], dry_run=True)
    with pytest.raises(T.Forbidden):
        ana.sign_in("ana", "a wrong secret")
    with pytest.raises(T.Forbidden):
        client_for("olga").page("case", project)
    entries = ana.audit(limit=20).entries
    actions = [(e.user, e.action, e.outcome) for e in entries]
    assert ("ana", "sign_in", "sign_in_failed") in actions and ("olga", "list_nodes", "forbidden") in actions
    submits = [e for e in entries if e.action == "submit" and e.target == project]
    assert len(submits) == 2 and all(e.client.startswith("127.0.0.1:") for e in submits)  # project + cases
    assert not any('"dry_run": true' in e.detail_json for e in submits)  # a dry run writes nothing
    assert "a wrong secret" not in json.dumps([vars(e) for e in entries]) and PASSWORD not in json.dumps(
        [vars(e) for e in entries])
    assert entries == sorted(entries, key=lambda e: e.at, reverse=True)
    only = ana.audit(action="save_account").entries
    assert only and all(e.action == "save_account" for e in only)
    with pytest.raises(T.Forbidden):
        client_for("olga").audit()


def test_a_dry_run_with_problems_is_a_check_and_only_a_real_refused_submission_is_audited(admin, project):
    bad = [{"type": "case", "submitter_id": "c-9", "species": "dragon"}]
    for dry_run in (True, False):  # the form's as-you-type check, then the real submission
        with pytest.raises(T.ValidationError):
            admin.submit(project, bad, dry_run=dry_run)
    refused = [e for e in admin.audit(action="submit", limit=20).entries if e.outcome != "ok"]
    assert len(refused) == 1 and json.loads(refused[0].detail_json)["dry_run"] is False


def test_the_audit_log_filters_by_project_and_outcome(ana, admin, project, client_for):
    admin.set_grant("ana", project, "write")
    with pytest.raises(T.Forbidden):
        client_for("olga").page("case", project)
    about_project = admin.audit(project=project, limit=50).entries
    assert {e.action for e in about_project} >= {"set_grant", "list_nodes"}
    assert all(project in (e.target, *json.loads(e.detail_json).get("arguments", [])[:1]) for e in about_project)
    refused = admin.audit(outcome="forbidden", limit=50).entries
    assert refused and all(e.outcome == "forbidden" for e in refused)
    assert admin.audit(project="no-such-project").entries == []


def test_audit_pages_by_project_through_both_ways_an_entry_names_it(ana, admin, project):
    """A grant names the project as its argument, a submission as its target: pages merge both."""
    admin.submit(project, [{"type": "case", "submitter_id": "c-1", "species": "human"}])
    admin.set_grant("ana", project, "read")
    admin.submit(project, [{"type": "case", "submitter_id": "c-2", "species": "human"}])
    admin.set_grant("ana", project, "write")
    whole = [(e.action, e.at) for e in admin.audit(project=project, limit=100).entries]
    paged, cursor = [], ""
    while True:
        page = admin.audit(project=project, limit=2, cursor=cursor)
        paged += [(e.action, e.at) for e in page.entries]
        if not (cursor := page.next_cursor):
            break
    assert paged == whole and [a for a, _ in whole[:4]] == ["set_grant", "submit", "set_grant", "submit"]
