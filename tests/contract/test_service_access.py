"""The service authenticates every call and authorizes it by role and project grant itself."""
import threading
import time

import jwt
import pytest

from metadata.client import MetadataClient
from metadata.idl import metadata_thrift as T

CASE = {"type": "case", "submitter_id": "c-1", "species": "human"}


@pytest.fixture
def stored_case(admin, project):
    admin.submit(project, [CASE])
    return admin.find(project, "c-1")["id"]


@pytest.mark.parametrize("method, args", [
    ("health", ()), ("whoami", ()), ("get_dictionary", ()), ("get_node", ("x",)),
    ("list_nodes", (T.ListRequest(type="case"),)),
    ("submit", (T.SubmitRequest(project_id="test-proj", format="json", body="[]"),)),
    ("delete_nodes", ("test-proj", ["x"])), ("create_token", ("u", [], {}, 60)),
])
def test_every_method_refuses_a_call_without_a_valid_token(server, method, args):
    for token in ("", "forged.token.value"):
        with MetadataClient("127.0.0.1", server.bound_port(), token) as client:
            with pytest.raises(T.Unauthenticated):
                client._call(method, *args)


def test_an_expired_token_is_refused(server):
    claims = {"sub": "ana", "iss": "labcommons", "exp": int(time.time()) - 1}
    with MetadataClient("127.0.0.1", server.bound_port(),
                        jwt.encode(claims, server.settings.signing_key(), algorithm="HS256")) as client:
        with pytest.raises(T.Unauthenticated) as caught:
            client.whoami()
    assert caught.value.code == "token_expired"


def test_reading_needs_a_grant_on_the_project(client_for, stored_case, project):
    outsider = client_for("olga", grants={"another": "read"})
    with pytest.raises(T.NotFound) as caught:  # as if it did not exist
        outsider.get(stored_case)
    assert caught.value.message == f"no node with id '{stored_case}'"
    with pytest.raises(T.NotFound) as caught:
        outsider.find(project, "c-1")
    assert caught.value.message == "no node 'c-1' in project 'test-proj'"
    with pytest.raises(T.Forbidden, match="no read access to project 'test-proj'"):  # the project it named
        outsider.page("case", project)
    with pytest.raises(T.NotFound):
        outsider.edges(stored_case)
    assert outsider.page("case").total == 0  # "all I can read" holds nothing of test-proj
    reader = client_for("rita", grants={project: "read"})
    assert reader.get(stored_case)["submitter_id"] == "c-1"
    assert reader.page("case").total == 1


def test_writing_needs_a_write_grant(client_for, stored_case, project):
    reader = client_for("rita", roles=["technician"], grants={project: "read"})
    with pytest.raises(T.Forbidden, match="no write access"):
        reader.submit(project, [dict(CASE, submitter_id="c-2")])
    with pytest.raises(T.Forbidden):
        reader.delete(project, [stored_case])
    writer = client_for("tom", roles=["technician"], grants={project: "write"})
    assert writer.submit(project, [dict(CASE, submitter_id="c-2")]).created == 1
    assert writer.find(project, "c-2")["created_by"] == "tom"


def test_a_refused_writer_learns_nothing_about_the_project(client_for, project):
    outsider = client_for("olga")
    sample = {"type": "sample", "submitter_id": "s", "organ": "liver", "preparation": "FFPE",
              "cases": {"submitter_id": "secret-case"}}
    with pytest.raises(T.Forbidden):
        outsider.submit(project, [sample])


def test_programs_projects_and_tokens_are_for_admins(client_for, project):
    writer = client_for("tom", roles=["technician"], grants={project: "write"})
    with pytest.raises(T.Forbidden, match="no write access to project 'NEWPROG'"):
        writer.submit("NEWPROG", [{"type": "program", "submitter_id": "NEWPROG"}])
    with pytest.raises(T.Forbidden, match="writing programs and projects needs the admin role"):
        writer.submit(project, [{"type": "project", "submitter_id": project, "programs": {"submitter_id": "TEST"}}])
    with pytest.raises(T.Forbidden, match="admin role"):
        writer.create_token("tom", ["admin"])
    assert writer.page("project").total == 1  # the project catalogue is readable by everyone


def test_an_admin_mints_tokens_that_carry_their_grants(admin, server, project):
    issued = admin.create_token("nina", ["analyst"], {project: "read"}, 120)
    with MetadataClient("127.0.0.1", server.bound_port(), issued.token) as nina:
        identity = nina.whoami()
    assert (identity.user, identity.roles, identity.grants) == ("nina", ["analyst"], {project: "read"})
    with pytest.raises(T.ValidationError, match="roles: 'wizard' is not a role"):
        admin.create_token("nina", ["wizard"])


def test_concurrent_identical_submissions_both_succeed_and_create_once(admin, server, project):
    batch = [dict(CASE, submitter_id=f"c-{i}") for i in range(200)]
    results, errors = [], []

    def submit():
        with MetadataClient("127.0.0.1", server.bound_port(), admin.token) as client:
            try:
                results.append(client.submit(project, batch))
            except Exception as error:  # collected, asserted below
                errors.append(error)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r.created for r in results) == 200
    assert admin.health().counts["case"] == 200
