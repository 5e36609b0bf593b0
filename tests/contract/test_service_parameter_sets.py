"""Parameter sets over Thrift, on both stores: revisions as immutable nodes, saving the same
parameters again, parameters checked against the template, write access, concurrent savers,
and a launch recording the revision it used."""
import dataclasses
import threading

import pytest
import yaml

from metadata.idl import metadata_thrift as T
from tests.contract.test_service_runs import measurement_batch, template
from tests.stored import folder_url

TEMPLATE = "tiny-qc"


@pytest.fixture
def settings(settings, tmp_path):
    """The contract settings (both stores) with a two-template catalog."""
    templates = tmp_path / "templates"
    templates.mkdir()
    for name in (TEMPLATE, "deep-analysis"):
        (templates / f"{name}.yaml").write_text(yaml.safe_dump(template(name, standard=name == TEMPLATE)))
    return dataclasses.replace(settings, templates_dir=templates)


@pytest.fixture
def ana(client_for, project):
    return client_for("ana", roles=["analyst"], grants={project: "write"})


@pytest.fixture
def measurement(admin, server, project) -> dict:
    admin.submit(project, measurement_batch("m-1", folder_url(server.settings, project)))
    return admin.find(project, "m-1")


def test_changed_parameters_make_a_new_revision_and_the_same_ones_return_it(ana, project, measurement):
    first = ana.save_parameter_set(TEMPLATE, "smooth", {"window": 5}, dataset_id=measurement["id"],
                                   notes="first try", source="work/liver.ipynb")
    assert not first.existing
    r1 = first.revision
    assert (r1.project_id, r1.template, r1.name, r1.revision, r1.params) == (project, TEMPLATE, "smooth", 1,
                                                                            {"window": "5"})
    assert (r1.created_by, r1.source, r1.dataset_id, r1.notes) == ("ana", "work/liver.ipynb", measurement["id"],
                                                                   "first try")
    assert r1.submitter_id == "tiny-qc.smooth.r1"
    r2 = ana.save_parameter_set(TEMPLATE, "smooth", {"window": "7", "method": "savgol"}, project).revision
    assert (r2.revision, r2.params) == (2, {"method": "savgol", "window": "7"}) and r2.id != r1.id
    again = ana.save_parameter_set(TEMPLATE, "smooth", {"method": "savgol", "window": 7.0}, project)
    assert again.existing and again.revision.id == r2.id
    assert ana.parameter_set(r1.id).params == {"window": "5"}   # a revision never changes


def test_sets_are_listed_by_template_and_name_newest_revision_first(ana, admin, project):
    for window in (3, 4, 5):
        ana.save_parameter_set(TEMPLATE, "smooth", {"window": window}, project)
    ana.save_parameter_set(TEMPLATE, "coarse", {"window": 9}, project)
    ana.save_parameter_set("deep-analysis", "deep", {"method": "gaussian"}, project)
    sets = ana.parameter_sets(project)
    assert [(s.template, s.name) for s in sets] == [("deep-analysis", "deep"), (TEMPLATE, "coarse"),
                                                    (TEMPLATE, "smooth")]
    assert [r.revision for r in sets[2].revisions] == [3, 2, 1]
    assert [s.name for s in ana.parameter_sets(template=TEMPLATE)] == ["coarse", "smooth"]
    assert len(admin.parameter_sets()) == 3


def test_bad_parameters_are_refused_naming_the_parameter_and_what_is_allowed(ana, project):
    with pytest.raises(T.ValidationError) as refused:
        ana.save_parameter_set(TEMPLATE, "smooth", {"window": 99, "method": "median"}, project)
    message = refused.value.message
    assert "parameters.window" in message and "between 1 and 51" in message
    assert "parameters.method" in message and "gaussian, savgol" in message
    assert {i.field for i in refused.value.issues} == {"parameters.window", "parameters.method"}
    with pytest.raises(T.ValidationError, match="parameters.imzml: is filled in by the worker"):
        ana.save_parameter_set(TEMPLATE, "smooth", {"imzml": "/x.imzML"}, project)
    with pytest.raises(T.ValidationError, match="parameters.windw.*window"):
        ana.save_parameter_set(TEMPLATE, "smooth", {"windw": 5}, project)
    with pytest.raises(T.ValidationError, match="template: 'nope' is not a workflow template; choose from"):
        ana.save_parameter_set("nope", "smooth", {"window": 5}, project)
    with pytest.raises(T.ValidationError, match="name: 'a.b'"):
        ana.save_parameter_set(TEMPLATE, "a.b", {"window": 5}, project)
    assert ana.parameter_sets(project) == []


def test_saving_needs_write_access_to_the_project(client_for, admin, project, measurement):
    reader = client_for("rita", roles=["analyst"], grants={project: "read"})
    with pytest.raises(T.Forbidden):
        reader.save_parameter_set(TEMPLATE, "smooth", {"window": 5}, dataset_id=measurement["id"])
    stranger = client_for("sam", roles=["analyst"])
    with pytest.raises(T.NotFound, match="dataset_id: no measurement or data file"):  # unreadable: not there
        stranger.save_parameter_set(TEMPLATE, "smooth", {"window": 5}, dataset_id=measurement["id"])
    with pytest.raises(T.Forbidden):
        stranger.parameter_sets(project)
    assert admin.save_parameter_set(TEMPLATE, "smooth", {"window": 5}, project).revision.created_by
    assert stranger.parameter_sets() == [] and len(reader.parameter_sets()) == 1
    with pytest.raises(T.NotFound):
        stranger.parameter_set(reader.parameter_sets()[0].revisions[0].id)


def test_the_project_and_the_dataset_must_exist(ana, project):
    with pytest.raises(T.NotFound, match="dataset_id"):
        ana.save_parameter_set(TEMPLATE, "smooth", {"window": 5}, dataset_id="no-such-id")
    with pytest.raises(T.ValidationError, match="project_id: give the project"):
        ana.save_parameter_set(TEMPLATE, "smooth", {"window": 5})
    with pytest.raises(T.NotFound):
        ana.parameter_set("no-such-id")


def test_parameter_sets_cannot_be_submitted_as_nodes(admin, project):
    with pytest.raises(T.ValidationError, match="written by the service itself"):
        admin.submit(project, [{"type": "parameter_set", "submitter_id": "s", "template": TEMPLATE, "name": "s"}])


def test_concurrent_savers_get_distinct_consecutive_revisions(server, client_for, project):
    clients = [client_for(f"user{i}", roles=["analyst"], grants={project: "write"}) for i in range(8)]
    saved, errors, start = [], [], threading.Barrier(len(clients))

    def save(index: int, client) -> None:
        start.wait()
        try:
            saved.append(client.save_parameter_set(TEMPLATE, "race", {"window": index + 1}, project).revision)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=save, args=(i, c)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(r.revision for r in saved) == list(range(1, 9))
    by_revision = {r.revision: r.params["window"] for r in saved}
    listed = clients[0].parameter_sets(project)[0].revisions
    assert {r.revision: r.params["window"] for r in listed} == by_revision


def test_a_launch_with_a_saved_revision_records_that_revision(ana, project, measurement):
    r1 = ana.save_parameter_set(TEMPLATE, "smooth", {"window": 5}, project).revision
    r2 = ana.save_parameter_set(TEMPLATE, "smooth", {"window": 11, "method": "savgol"}, project).revision
    run = ana.launch(TEMPLATE, [measurement["id"]], parameter_set_id=r2.id).run
    assert (run.parameter_set_id, run.parameter_set_revision) == (r2.id, 2)
    assert run.parameters == {"window": "11", "method": "savgol"}
    older = ana.launch(TEMPLATE, [measurement["id"]], parameter_set_id=r1.id).run
    assert (older.parameter_set_revision, older.parameters["window"]) == (1, "5")
    links = [e for e in ana.edges(r2.id) if e.link_name == "parameter_sets"]
    assert [e.child_id for e in links] == [run.id]
