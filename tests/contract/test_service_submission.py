"""Submission over Thrift behaves like Gen3's sheepdog: upserts, links, dry runs, all or nothing."""
import json

import pytest

from metadata.idl import metadata_thrift as T

CASE = {"type": "case", "submitter_id": "c-1", "species": "human"}
SAMPLE = {"type": "sample", "submitter_id": "s-1", "organ": "liver", "preparation": "fresh frozen",
          "cases": {"submitter_id": "c-1"}}


def issues_of(caught) -> dict:
    return {(i.index, i.field): i.message for i in caught.value.issues}


def test_a_batch_creates_nodes_and_resolves_links_within_it(admin, project):
    result = admin.submit(project, [SAMPLE, CASE])
    assert (result.created, result.updated, result.unchanged) == (2, 0, 0)
    sample = admin.find(project, "s-1")
    case = admin.find(project, "c-1")
    assert sample["links"] == [{"name": "cases", "target_id": case["id"], "target_type": "case",
                                "target_submitter_id": "c-1"}]
    assert sample["created_by"] == "local-admin" and sample["version"] == 1


def test_resubmitting_upserts_by_submitter_id_and_bumps_only_changed_nodes(admin, project):
    admin.submit(project, [CASE, SAMPLE])
    result = admin.submit(project, [CASE, dict(SAMPLE, organ="kidney")])
    assert (result.created, result.updated, result.unchanged) == (0, 1, 1)
    sample = admin.find(project, "s-1")
    assert sample["properties"]["organ"] == "kidney" and sample["version"] == 2


def test_links_resolve_to_nodes_stored_earlier(admin, project):
    admin.submit(project, [CASE])
    admin.submit(project, [SAMPLE])
    edges = admin.edges(admin.find(project, "c-1")["id"])
    assert [(e.child_type, e.link_name, e.parent_type) for e in edges] == [("sample", "cases", "case")]


def test_a_dry_run_reports_the_outcome_and_writes_nothing(admin, project):
    result = admin.submit(project, [CASE, SAMPLE], dry_run=True)
    assert result.dry_run and result.created == 2
    assert admin.health().counts.get("case") is None


def test_tsv_submissions_report_problems_by_row(admin, project):
    body = "type\tsubmitter_id\tspecies\tage_years\ncase\tc-1\thuman\t40\ncase\tc-2\thuman\told\n"
    with pytest.raises(T.ValidationError) as caught:
        admin.submit(project, body=body, fmt="tsv")
    assert [(i.row, i.field) for i in caught.value.issues] == [(3, "age_years")]
    admin.submit(project, body=body.replace("old", "41"), fmt="tsv")
    assert admin.find(project, "c-2")["properties"]["age_years"] == 41


@pytest.mark.parametrize("entity, field, words", [
    ({"type": "spaceship", "submitter_id": "x"}, "type", "not a node type"),
    ({"type": "case", "species": "human"}, "submitter_id", "needs a submitter_id"),
    (dict(CASE, colour="red"), "colour", "not a property of case"),
    ({"type": "case", "submitter_id": "c-9"}, "species", "required"),
    (dict(CASE, age_years="forty"), "age_years", "not a number"),
    (dict(CASE, species="unicorn"), "species", "choose one of"),
    (dict(CASE, age_years=-1), "age_years", "at least 0"),
    (dict(SAMPLE, cases={"submitter_id": "nobody"}), "cases", "no case 'nobody'"),
    (dict(SAMPLE, cases=[{"submitter_id": "c-1"}, {"submitter_id": "c-2"}]), "cases", "links to one case only"),
    (dict(SAMPLE, cases="c-1"), "cases", "each link is an object"),
    ({k: v for k, v in SAMPLE.items() if k != "cases"}, "cases", "must link to a case"),
    (dict(CASE, project_id="elsewhere"), "project_id", "differs from the batch's project"),
    (dict(CASE, id="not-a-uuid"), "id", "not a UUID"),
    (dict(CASE, created_by="me"), "created_by", "set by the service"),
])
def test_bad_entities_are_refused_with_the_field_named_and_nothing_written(admin, project, entity, field, words):
    good = [dict(CASE, submitter_id=f"ok-{i}") for i in range(5)]
    if entity.get("submitter_id") == "c-1":
        entity = dict(entity, submitter_id="c-bad")
    with pytest.raises(T.ValidationError) as caught:
        admin.submit(project, good + [CASE, entity])
    found = issues_of(caught)
    assert words in found[(6, field)], found
    assert "nothing was written" in caught.value.message
    assert admin.health().counts.get("case") is None


def test_a_link_to_a_node_of_the_wrong_type_is_refused(admin, project):
    admin.submit(project, [CASE, SAMPLE])
    bad = dict(SAMPLE, submitter_id="s-2", cases={"submitter_id": "s-1"})
    with pytest.raises(T.ValidationError) as caught:
        admin.submit(project, [bad])
    assert "is a sample, but cases must name a case" in issues_of(caught)[(0, "cases")]


def test_links_never_cross_projects(admin, project):
    admin.submit("other", [{"type": "project", "submitter_id": "other", "programs": {"submitter_id": "TEST"}}])
    admin.submit("other", [CASE])
    other_case = admin.find("other", "c-1")["id"]
    with pytest.raises(T.ValidationError) as caught:
        admin.submit(project, [dict(SAMPLE, cases={"id": other_case})])
    assert "belongs to project 'other'" in issues_of(caught)[(0, "cases")]


def test_the_same_submitter_id_twice_in_a_batch_is_refused(admin, project):
    with pytest.raises(T.ValidationError) as caught:
        admin.submit(project, [CASE, dict(CASE, species="mouse")])
    assert "appears twice in the batch (also entity 0)" in issues_of(caught)[(1, "submitter_id")]


def test_a_submitter_id_cannot_change_type(admin, project):
    admin.submit(project, [CASE])
    with pytest.raises(T.ValidationError) as caught:
        admin.submit(project, [dict(SAMPLE, submitter_id="c-1")])
    assert "already names a case" in issues_of(caught)[(0, "submitter_id")]


def test_every_problem_of_a_batch_is_reported_at_once(admin, project):
    with pytest.raises(T.ValidationError) as caught:
        admin.submit(project, [dict(CASE, species="x"), dict(CASE, submitter_id="c-2", age_years="y")])
    assert set(issues_of(caught)) == {(0, "species"), (1, "age_years")}


def test_an_unknown_project_is_refused(admin, project):
    with pytest.raises(T.ValidationError) as caught:
        admin.submit("nowhere", [CASE])
    assert "there is no project 'nowhere'" in issues_of(caught)[(0, "project_id")]


def test_empty_and_oversized_batches_are_refused(admin, project, server):
    with pytest.raises(T.ValidationError) as caught:
        admin.submit(project, [])
    assert caught.value.code == "empty_batch"
    server.guard._service.max_batch_entities = 3
    with pytest.raises(T.ValidationError) as caught:
        admin.submit(project, [dict(CASE, submitter_id=f"c-{i}") for i in range(4)])
    assert caught.value.code == "too_large" and "split it" in caught.value.message


def test_malformed_json_is_refused_with_its_position(admin, project):
    with pytest.raises(T.ValidationError) as caught:
        admin.submit(project, body='[{"type": "case",', fmt="json")
    assert caught.value.code == "malformed" and "line 1" in caught.value.message


def test_a_stale_version_is_refused(admin, project):
    admin.submit(project, [CASE])
    admin.submit(project, [dict(CASE, species="mouse")])
    with pytest.raises(T.ValidationError) as caught:
        admin.submit(project, [dict(CASE, version=1, species="rat")])
    assert "stored one is 2" in issues_of(caught)[(0, "version")]
    admin.submit(project, [dict(CASE, version=2, species="rat")])
    assert admin.find(project, "c-1")["properties"]["species"] == "rat"


def test_deleting_a_node_with_children_is_refused_with_the_children_named(admin, project):
    admin.submit(project, [CASE, SAMPLE])
    case, sample = admin.find(project, "c-1")["id"], admin.find(project, "s-1")["id"]
    with pytest.raises(T.Conflict) as caught:
        admin.delete(project, [case])
    assert caught.value.code == "has_children" and f"sample {sample}" in caught.value.message
    assert admin.delete(project, [case, sample]) == [case, sample]
    with pytest.raises(T.NotFound):
        admin.get(case)


def test_listing_pages_through_every_node_in_order(admin, project):
    admin.submit(project, [dict(CASE, submitter_id=f"c-{i:02}") for i in range(7)])
    first = admin.page("case", project, limit=3)
    assert first.total == 7 and [n.submitter_id for n in first.nodes] == ["c-00", "c-01", "c-02"]
    assert [n["submitter_id"] for n in admin.nodes("case", project, page_size=3)] == [f"c-{i:02}" for i in range(7)]


@pytest.mark.parametrize("request_args, words", [
    ({"type": "nope"}, "not a node type"),
    ({"type": "case", "limit": 0}, "limit: 0 is out of range"),
    ({"type": "case", "cursor": "garbage!"}, "not a cursor this service returned"),
])
def test_bad_list_requests_are_refused(admin, project, request_args, words):
    with pytest.raises(T.ValidationError, match=words):
        admin._call("list_nodes", T.ListRequest(**request_args))


def test_the_dictionary_is_served_as_json(admin):
    dictionary = admin.dictionary()
    assert dictionary["sample"]["links"][0]["target_type"] == "case"
    assert json.dumps(dictionary)


def test_a_new_entity_cannot_take_an_id_already_in_use(admin, project):
    admin.submit(project, [CASE])
    taken = admin.find(project, "c-1")["id"]
    with pytest.raises(T.ValidationError) as caught:
        admin.submit(project, [dict(CASE, submitter_id="c-2", id=taken)])
    assert f"{taken} already names the case 'c-1'" in issues_of(caught)[(0, "id")]


@pytest.mark.parametrize("name", ["a b", "../up", "-dash", "x" * 65])
def test_program_and_project_names_are_plain(admin, name):
    with pytest.raises(T.ValidationError) as caught:
        admin.submit(name, [{"type": "program", "submitter_id": name}])
    assert "cannot name a program" in issues_of(caught)[(0, "submitter_id")]
