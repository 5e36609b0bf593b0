"""Attacks on the policy table through a real Thrift server: existence oracles, refusals that name
what the caller may not see, commons-wide counts, and flooding or forging the audit log.

mallory is an analyst and technician who writes her own project ("mine") and reads nothing of
"test-proj", where vera (reader of test-proj) keeps a private cohort and the admin a case, a
measurement, a run and a parameter set.
"""
import json
import uuid

import pytest

from metadata.audit_limit import ROWS_PER_MINUTE
from metadata.client import MetadataClient
from metadata.idl import metadata_thrift as T
from tests.contract.test_service_parameter_sets import TEMPLATE
from tests.contract.test_service_parameter_sets import settings  # noqa: F401 (the fixture: a catalog with tiny-qc)
from tests.contract.test_service_runs import measurement_batch
from tests.stored import folder_url

REFUSALS = (T.NotFound, T.Forbidden, T.ValidationError, T.Conflict)


@pytest.fixture
def secrets(admin, project, client_for, server) -> dict:
    """The ids of test-proj's objects, and vera's private and shared cohorts."""
    admin.submit("mine", [{"type": "project", "submitter_id": "mine", "programs": {"submitter_id": "TEST"}}])
    admin.submit(project, measurement_batch("m-1", folder_url(server.settings, project)))
    measurement = admin.find(project, "m-1")
    admin.save_account("vera", "vera-password-1", ["analyst"], {project: "read"})
    vera = client_for("vera")
    return {"case": admin.find(project, "m-1-case")["id"], "measurement": measurement["id"],
            "file": admin.find(project, "m-1.imzML")["id"],
            "run": admin.launch(TEMPLATE, [measurement["id"]]).run.id,
            "set": admin.save_parameter_set(TEMPLATE, "secret-set", {"window": 5}, project).revision.id,
            "private": vera.save_cohort("vera-private", "case", None).id,
            "shared": vera.save_cohort("vera-shared", "case", None, project_id=project, shared=True).id,
            "token": vera.create_personal_token("vera-script").identity.token_id}


@pytest.fixture
def mallory(client_for):
    return client_for("mallory", roles=["analyst", "technician"], grants={"mine": "write"})


# Each attack: (method, the object's kind in `secrets`, the arguments given the id).
ATTACKS = [
    ("get_node", "case", lambda i: (i,)),
    ("get_node", "file", lambda i: (i,)),
    ("get_edges", "measurement", lambda i: (i,)),
    ("get_run", "run", lambda i: (i,)),
    ("cancel_run", "run", lambda i: (i,)),
    ("retry_run", "run", lambda i: (i,)),
    ("get_cohort", "private", lambda i: (i,)),
    ("get_cohort", "shared", lambda i: (i,)),
    ("delete_cohort", "private", lambda i: (i,)),
    ("delete_cohort", "shared", lambda i: (i,)),
    ("get_parameter_set", "set", lambda i: (i,)),
    ("launch", "measurement", lambda i: (T.LaunchRequest(template=TEMPLATE, input_ids=[i]),)),
    ("launch", "file", lambda i: (T.LaunchRequest(template=TEMPLATE, input_ids=[i]),)),
    ("launch", "set", lambda i: (T.LaunchRequest(template=TEMPLATE, input_ids=[], parameter_set_id=i),)),
    ("save_parameter_set", "measurement", lambda i: (T.ParameterSetRequest(
        template=TEMPLATE, name="stolen", params={"window": "5"}, project_id="mine", dataset_id=i),)),
    ("delete_nodes", "case", lambda i: ("mine", [i])),
    ("delete_nodes", "case", lambda i: ("test-proj", [i])),
    ("update_run", "run", lambda i: (T.RunUpdate(run_id=i, status="failed"),)),
    ("fire_triggers", "file", lambda i: ([i],)),
    ("revoke_personal_token", "token", lambda i: (i,)),
    ("mark_notifications_read", "private", lambda i: ([i],)),
    ("submit", "case", lambda i: (T.SubmitRequest(project_id="mine", format="json", dry_run=True, body=json.dumps(
        [{"type": "sample", "submitter_id": "s-1", "organ": "liver", "preparation": "FFPE", "cases": {"id": i}}])),)),
]

# Arguments naming a project or a user rather than an id: the existing name and a made-up one.
NAMED = [
    ("find_node", lambda name: ("test-proj", name), "m-1-case"),
    ("find_node", lambda name: (name, "m-1-case"), "test-proj"),
    ("list_nodes", lambda name: (T.ListRequest(type="case", project_id=name),), "test-proj"),
    ("list_runs", lambda name: (T.RunQuery(project_id=name),), "test-proj"),
    ("list_parameter_sets", lambda name: (name, ""), "test-proj"),
    ("save_cohort", lambda name: (T.Cohort(name="c", kind="case", shared=True, project_id=name),), "test-proj"),
    ("submit", lambda name: (T.SubmitRequest(project_id=name, format="json", body="[]", dry_run=True),), "test-proj"),
    ("sign_out_everywhere", lambda name: (name,), "vera"),
]

# What mallory must never read in a refusal unless she wrote it herself.
NEVER_SHOWN = ("test-proj", "vera", "m-1", "secret-set", "TEST")


def refusal(client: MetadataClient, name: str, args: tuple) -> tuple:
    """(type, code, message, issues) of the call's refusal; fails if the call succeeds."""
    with pytest.raises(REFUSALS) as caught:
        client._call(name, *args)
    error = caught.value
    issues = [(i.index, i.field, i.message) for i in getattr(error, "issues", None) or []]
    return type(error), error.code, error.message, issues


def without(answer: tuple, text: str) -> tuple:
    """The refusal with one id or name replaced, so answers about different ids compare."""
    kind, code, message, issues = answer
    return kind, code, message.replace(text, "<x>"), [(i, f, m.replace(text, "<x>")) for i, f, m in issues]


def assert_nothing_named(answer: tuple, args: tuple) -> None:
    shown = answer[2] + " ".join(m for _, _, m in answer[3])
    leaked = [s for s in NEVER_SHOWN if s in shown and s not in repr(args)]
    assert leaked == [], f"the refusal {shown!r} names {leaked}"


@pytest.mark.parametrize("name, kind, make", ATTACKS, ids=[f"{a[0]}-{a[1]}" for a in ATTACKS])
def test_an_unreadable_object_answers_exactly_as_a_missing_one(mallory, secrets, name, kind, make):
    existing, made_up = secrets[kind], str(uuid.uuid4())
    real, fake = refusal(mallory, name, make(existing)), refusal(mallory, name, make(made_up))
    assert without(real, existing) == without(fake, made_up)
    assert_nothing_named(real, make(existing))


@pytest.mark.parametrize("name, make, existing", NAMED, ids=[f"{n[0]}-{n[2]}" for n in NAMED])
def test_a_named_project_or_user_answers_as_a_made_up_one(mallory, secrets, name, make, existing):
    made_up = f"no-such-{uuid.uuid4().hex[:8]}"
    real, fake = refusal(mallory, name, make(existing)), refusal(mallory, name, make(made_up))
    assert without(real, existing) == without(fake, made_up)
    assert_nothing_named(real, make(existing))


def test_a_foreign_id_in_a_dry_run_names_neither_its_project_nor_its_node(mallory, secrets):
    body = json.dumps([{"type": "case", "submitter_id": "c-9", "species": "mouse", "id": secrets["case"]}])
    answer = refusal(mallory, "submit", (T.SubmitRequest(project_id="mine", format="json", body=body, dry_run=True),))
    assert answer[0] is T.ValidationError
    assert_nothing_named(answer, ())
    assert "case" not in answer[3][0][2]  # nor what kind of node holds the id


def test_the_audit_log_keeps_the_real_reason_of_a_hidden_refusal(admin, mallory, secrets):
    with pytest.raises(T.NotFound):
        mallory.get(secrets["case"])
    entry = admin.audit(user="mallory", action="get_node").entries[0]
    assert (entry.target, entry.outcome) == (secrets["case"], "forbidden")
    assert "no read access to project 'test-proj'" in json.loads(entry.detail_json)["reason"]


def test_health_shows_no_counts_to_a_caller_without_grants(admin, client_for, secrets):
    stranger = client_for("sam", roles=["analyst"])
    health = stranger.health()
    assert (health.status, health.counts) == ("ok", {})
    assert client_for("rita", grants={"test-proj": "read"}).health().counts == {}
    assert admin.health().counts["case"] == 1  # admins read every project


def test_a_thousand_unauthenticated_calls_write_a_bounded_number_of_audit_rows(admin, server):
    with MetadataClient("127.0.0.1", server.bound_port(), "forged.token.value") as anonymous:
        for _ in range(1000):
            with pytest.raises(T.Unauthenticated):
                anonymous.whoami()
    entries = admin.audit(user="(no valid token)", limit=1000).entries
    assert len(entries) == ROWS_PER_MINUTE + 1
    assert [e.outcome for e in entries].count("rate_limited") == 1
    assert "the rest of them are not recorded" in entries[0].detail_json


def test_a_non_admins_sign_in_is_audited_under_the_caller_and_the_real_address(admin, mallory, secrets):
    with pytest.raises(T.Forbidden, match="sign_in needs the admin role"):
        mallory.sign_in("vera", "guess-guess-guess", "1.2.3.4")
    entry = admin.audit(action="sign_in").entries[0]
    assert (entry.user, entry.outcome) == ("mallory", "forbidden")
    assert entry.client.startswith("127.0.0.1:") and "1.2.3.4" not in entry.client
    with pytest.raises(T.Forbidden):  # the portal (an admin token) names the person and their address
        admin.sign_in("vera", "wrong-password-1", "5.6.7.8")
    entry = admin.audit(action="sign_in").entries[0]
    assert (entry.user, entry.client, entry.outcome) == ("vera", "5.6.7.8", "sign_in_failed")


def test_an_empty_project_id_is_checked_like_any_other_name(mallory, secrets):
    for name, args in (("submit", (T.SubmitRequest(project_id="", format="json", body="[]"),)),
                       ("delete_nodes", ("", [secrets["case"]]))):
        with pytest.raises(T.Forbidden, match="no write access to project ''"):
            mallory._call(name, *args)
