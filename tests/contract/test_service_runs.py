"""The run registry over Thrift, on both stores: launches keyed so that one launch never makes
two runs, workers claiming and reporting, cancel and retry, outputs registered with provenance,
and triggers."""
import dataclasses
import json
import threading
import time
import uuid

import pytest
import yaml

from metadata.idl import metadata_thrift as T
from tests.stored import folder_url

def template(name: str, standard: bool) -> dict:
    hints = {"imzml": {"type": "string", "filled_by": "input"}, "output-dir": {"type": "string", "filled_by": "run"},
             "window": {"type": "integer", "minimum": 1, "maximum": 51, "unit": "points"},
             "method": {"type": "string"}}
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
        "metadata": {"name": name, "annotations": {
            "labcommons.io/title": "Tiny QC", "labcommons.io/description": "Counts things.",
            "labcommons.io/inputs": "imzml", "labcommons.io/standard": "true" if standard else "false",
            "labcommons.io/parameter-hints": json.dumps(hints)}},
        "spec": {"entrypoint": "main",
                 "arguments": {"parameters": [
                     {"name": "imzml", "description": "The input."},
                     {"name": "output-dir", "description": "Where outputs go."},
                     {"name": "window", "value": "5", "description": "Smoothing window."},
                     {"name": "method", "value": "gaussian", "enum": ["gaussian", "savgol"],
                      "description": "Smoothing method."}]},
                 "templates": [{"name": "main", "container": {"image": "labcommons", "command": ["true"]}}]},
    }


RULE = {"name": "qc-new-measurement", "description": "QC each measurement with both files.",
        "when": {"type": "data_file", "properties": {"data_format": ["imzML", "ibd"]}},
        "context": {"follow": "measurements", "files": ["imzML", "ibd"]},
        "launch": {"template": "tiny-qc", "parameters": {"method": "savgol"}}}


@pytest.fixture
def settings(settings, tmp_path):
    """The contract settings (both stores) with a one-template catalog and one trigger rule."""
    templates, triggers = tmp_path / "templates", tmp_path / "triggers"
    templates.mkdir()
    triggers.mkdir()
    (templates / "tiny-qc.yaml").write_text(yaml.safe_dump(template("tiny-qc", standard=True)))
    (templates / "deep-analysis.yaml").write_text(yaml.safe_dump(template("deep-analysis", standard=False)))
    (triggers / "qc.yaml").write_text(yaml.safe_dump(dict(RULE, enabled=False)))
    return dataclasses.replace(settings, templates_dir=templates, triggers_dir=triggers)


def measurement_batch(name: str, folder: str, files=("imzML", "ibd")) -> list[dict]:
    """A measurement, its case, sample and experiment, and its files in `folder` (tests.stored.folder_url)."""
    batch = [{"type": "case", "submitter_id": f"{name}-case", "species": "mouse"},
             {"type": "sample", "submitter_id": f"{name}-sample", "organ": "liver", "preparation": "fresh frozen",
              "cases": {"submitter_id": f"{name}-case"}},
             {"type": "experiment", "submitter_id": f"{name}-exp", "protocol": "p1"},
             {"type": "measurement", "submitter_id": name, "instrument": "timsTOF", "ionisation": "MALDI",
              "polarity": "positive", "samples": {"submitter_id": f"{name}-sample"},
              "experiments": {"submitter_id": f"{name}-exp"}}]
    return batch + [data_file(name, fmt, folder) for fmt in files]


def data_file(name: str, fmt: str, folder: str) -> dict:
    return {"type": "data_file", "submitter_id": f"{name}.{fmt}", "file_name": f"{name}.{fmt}",
            "data_format": fmt, "file_size": 10, "md5sum": "0" * 32, "storage_url": f"{folder}/{name}.{fmt}",
            "measurements": {"submitter_id": name}}


@pytest.fixture
def folder(server, project) -> str:
    """The project's folder URL, where its data files' storage_urls point."""
    return folder_url(server.settings, project)


@pytest.fixture
def measurement(admin, project, folder) -> dict:
    admin.submit(project, measurement_batch("m-1", folder))
    return admin.find(project, "m-1")


@pytest.fixture
def tom(client_for, project):
    return client_for("tom", roles=["technician"], grants={project: "write"})


@pytest.fixture
def worker(client_for):
    return client_for("worker-1", roles=["worker"])


def test_the_catalog_lists_templates_with_their_parameters(admin):
    templates = {t.name: t for t in admin.templates()}
    tiny = templates["tiny-qc"]
    assert (tiny.title, tiny.standard, tiny.input_formats) == ("Tiny QC", True, ["imzML", "ibd"])
    window, method = tiny.parameters
    assert (window.type, window.minimum, window.maximum, window.default_value) == ("integer", 1, 51, "5")
    assert method.enum_values == ["gaussian", "savgol"] and len(tiny.digest) == 64


def test_a_launch_records_a_queued_run_linked_to_its_input_files(tom, project, measurement):
    result = tom.launch("tiny-qc", [measurement["id"]], {"window": "7"})
    run = result.run
    assert not result.existing and run.status == "queued" and run.project_id == project
    assert run.parameters == {"window": "7", "method": "gaussian"} and run.created_by == "tom"
    files = {tom.get(i)["properties"]["data_format"] for i in run.input_ids}
    assert files == {"imzML", "ibd"}
    edges = tom.edges(run.input_ids[0])
    assert ("workflow_run", "input_files") in {(e.child_type, e.link_name) for e in edges}


def test_an_identical_launch_returns_the_existing_run(tom, measurement):
    first = tom.launch("tiny-qc", [measurement["id"]], {"window": "7"}).run
    again = tom.launch("tiny-qc", [measurement["id"]], {"window": "7", "method": "gaussian"})
    assert again.existing and again.run.id == first.id
    other = tom.launch("tiny-qc", [measurement["id"]], {"window": "9"})
    assert not other.existing and other.run.id != first.id
    forced = tom.launch("tiny-qc", [measurement["id"]], {"window": "7"}, force=True)
    assert not forced.existing and forced.run.id != first.id


def test_concurrent_identical_launches_make_one_run(server, client_for, project, measurement):
    from metadata.client import MetadataClient
    token, _ = server.tokens.mint("tom", ["technician"], {project: "write"})
    results, errors = [], []

    def launch():
        try:
            with MetadataClient("127.0.0.1", server.bound_port(), token) as client:
                results.append(client.launch("tiny-qc", [measurement["id"]]).run.id)
        except Exception as exc:  # noqa: BLE001 - every failure is reported below
            errors.append(exc)
    threads = [threading.Thread(target=launch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 8 and len(set(results)) == 1


@pytest.mark.parametrize("parameters, field", [({"window": "0"}, "parameters.window"),
                                                ({"window": "x"}, "parameters.window"),
                                                ({"method": "mean"}, "parameters.method"),
                                                ({"speed": "1"}, "parameters.speed"),
                                                ({"output-dir": "/etc"}, "parameters.output-dir")])
def test_bad_parameters_are_refused_with_the_parameter_named(tom, measurement, parameters, field):
    with pytest.raises(T.ValidationError, match=field.replace(".", r"\.")):
        tom.launch("tiny-qc", [measurement["id"]], parameters)


def test_bad_launches_are_refused_clearly(tom, admin, project, folder, measurement):
    with pytest.raises(T.ValidationError, match="template: 'nope' is not a workflow template; choose from"):
        tom.launch("nope", [measurement["id"]])
    with pytest.raises(T.ValidationError, match="input_ids: give the data files"):
        tom.launch("tiny-qc", [])
    with pytest.raises(T.NotFound, match="input_ids: no data file or measurement"):
        tom.launch("tiny-qc", [str(uuid.uuid4())])
    case = admin.find(project, "m-1-case")
    with pytest.raises(T.NotFound, match="input_ids"):
        tom.launch("tiny-qc", [case["id"]])
    admin.submit(project, measurement_batch("m-2", folder, files=("imzML",)))
    with pytest.raises(T.ValidationError, match="no ibd file among the inputs"):
        tom.launch("tiny-qc", [admin.find(project, "m-2")["id"]])


def test_roles_and_grants_decide_who_may_launch(client_for, tom, project, measurement):
    with pytest.raises(T.Forbidden, match="needs the analyst role"):
        tom.launch("deep-analysis", [measurement["id"]])
    reader = client_for("ana", roles=["analyst"], grants={project: "read"})
    with pytest.raises(T.Forbidden, match="no write access"):
        reader.launch("tiny-qc", [measurement["id"]])
    stranger = client_for("eve", roles=["analyst"], grants={})
    with pytest.raises(T.NotFound, match="input_ids: no data file or measurement with id"):
        stranger.launch("tiny-qc", [measurement["id"]])  # an unreadable input is as good as none
    writer = client_for("al", roles=["analyst"], grants={project: "write"})
    assert writer.launch("deep-analysis", [measurement["id"]]).run.status == "queued"


def test_runs_cannot_be_submitted_as_nodes(admin, project):
    with pytest.raises(T.ValidationError, match="written by the service itself"):
        admin.submit(project, [{"type": "workflow_run", "submitter_id": "fake", "template": "tiny-qc"}])


def test_a_parameter_set_fills_the_launch_and_is_recorded(tom, admin, project, measurement):
    for window in (7, 9, 11):
        pset = admin.save_parameter_set("tiny-qc", "smooth", {"window": window}, project).revision
    run = tom.launch("tiny-qc", [measurement["id"]], {"method": "savgol"}, parameter_set_id=pset.id).run
    assert run.parameters == {"window": "11", "method": "savgol"}
    assert (run.parameter_set_id, run.parameter_set_revision) == (pset.id, 3)
    assert tom.launch("tiny-qc", [measurement["id"]], {"window": "11", "method": "savgol"}).existing


def test_a_worker_claims_reports_and_registers_outputs(tom, worker, project, folder, measurement):
    run = tom.launch("tiny-qc", [measurement["id"]]).run
    claimed = worker.claim_runs("w-a", 5)
    assert [r.id for r in claimed] == [run.id] and claimed[0].status == "running"
    assert worker.claim_runs("w-b", 5) == []                      # nobody else gets it
    assert [r.id for r in worker.claim_runs("w-a", 0)] == [run.id]  # after a restart, w-a resumes it
    step = T.RunStep(id="s1", name="main", template="main", phase="Succeeded", exit_code=0)
    report = T.OutputFile(file_name="qc.json", data_format="json", file_size=12, md5sum="a" * 32,
                          storage_url=f"{folder}/runs/{run.id}/outputs/qc.json", data_category="qc_report")
    done = worker.update_run(T.RunUpdate(run_id=run.id, status="succeeded", steps=[step], outputs=[report]))
    assert done.status == "succeeded" and done.finished_at and done.steps[0].phase == "Succeeded"
    output = tom.get(done.output_ids[0])
    assert output["properties"]["data_category"] == "qc_report"
    assert output["links"][0]["name"] == "workflow_runs" and output["links"][0]["target_id"] == run.id
    with pytest.raises(T.Conflict, match="is succeeded"):
        worker.update_run(T.RunUpdate(run_id=run.id, status="running"))
    assert tom.launch("tiny-qc", [measurement["id"]]).existing  # succeeded: the same launch is that run


def test_a_waiting_claim_is_woken_by_a_launch_and_otherwise_waits_its_time(tom, worker, client_for, measurement):
    started = time.monotonic()
    assert worker.claim_runs_waiting("w-a", 1, 150) == []         # nothing queued: it waits, then returns
    assert time.monotonic() - started >= 0.14
    launched = []
    timer = threading.Timer(0.3, lambda: launched.append(tom.launch("tiny-qc", [measurement["id"]]).run))
    timer.start()
    started = time.monotonic()
    claimed = client_for("worker-2", roles=("worker",)).claim_runs_waiting("w-a", 1, 10_000)
    waited = time.monotonic() - started
    timer.join()
    assert [r.id for r in claimed] == [launched[0].id] and claimed[0].status == "running"
    assert 0.25 <= waited < 5  # woken by the launch, not at the end of its 10 s
    assert worker.claim_runs_waiting("w-b", 1, 50) == []           # claimed once: nobody else gets it
    with pytest.raises(T.ValidationError, match="wait_ms"):
        worker.claim_runs_waiting("w-a", 1, 60_000)


def test_only_workers_claim_and_report(tom, measurement):
    run = tom.launch("tiny-qc", [measurement["id"]]).run
    with pytest.raises(T.Forbidden, match="worker role"):
        tom.claim_runs("w", 1)
    with pytest.raises(T.Forbidden, match="worker role"):
        tom.update_run(T.RunUpdate(run_id=run.id, status="succeeded"))


def test_cancel_and_retry(tom, worker, client_for, project, measurement):
    queued = tom.launch("tiny-qc", [measurement["id"]], {"window": "3"}).run
    assert tom.cancel_run(queued.id).status == "cancelled"
    with pytest.raises(T.Conflict, match="already cancelled"):
        tom.cancel_run(queued.id)
    run = tom.launch("tiny-qc", [measurement["id"]]).run
    worker.claim_runs("w", 1)
    asked = tom.cancel_run(run.id)
    assert asked.status == "running" and asked.cancel_requested
    failed = worker.update_run(T.RunUpdate(run_id=run.id, status="failed", message="step main exited 1"))
    stranger = client_for("eve", roles=["analyst"], grants={project: "read"})
    with pytest.raises(T.Forbidden, match="may retry"):
        stranger.retry_run(failed.id)
    again = tom.retry_run(failed.id)
    assert (again.status, again.retry_requested, again.attempt) == ("queued", True, 2)
    assert tom.launch("tiny-qc", [measurement["id"]]).run.id == run.id   # the key is held again


def test_a_failed_run_frees_its_key(tom, worker, measurement):
    run = tom.launch("tiny-qc", [measurement["id"]]).run
    worker.claim_runs("w", 1)
    worker.update_run(T.RunUpdate(run_id=run.id, status="failed"))
    fresh = tom.launch("tiny-qc", [measurement["id"]])
    assert not fresh.existing and fresh.run.id != run.id


def test_runs_are_listed_newest_first_filtered_and_only_where_readable(tom, client_for, admin, project, measurement):
    first = tom.launch("tiny-qc", [measurement["id"]], {"window": "3"}).run
    second = tom.launch("tiny-qc", [measurement["id"]], {"window": "4"}).run
    page = tom.runs()
    assert [r.id for r in page.runs] == [second.id, first.id] and page.total == 2
    tom.cancel_run(first.id)
    assert [r.id for r in tom.runs(status="cancelled").runs] == [first.id]
    assert tom.runs(user="nobody").total == 0
    assert client_for("eve", roles=["analyst"], grants={}).runs().total == 0
    with pytest.raises(T.ValidationError, match="status: 'done' is not a run status"):
        tom.runs(status="done")


def test_runs_page_by_cursor_and_by_offset_alike(tom, measurement):
    newest = [tom.launch("tiny-qc", [measurement["id"]], {"window": str(w)}).run.id for w in range(3, 8)][::-1]
    first = tom.runs(limit=2)
    second = tom.runs(limit=2, cursor=first.next_cursor)
    third = tom.runs(limit=2, cursor=second.next_cursor)
    assert [r.id for r in first.runs + second.runs + third.runs] == newest and third.next_cursor == ""
    assert (first.total, second.total) == (5, 5)
    assert [r.id for r in tom.runs(limit=2, offset=2).runs] == newest[2:4]
    past = tom.runs(limit=2, offset=5)
    assert past.runs == [] and past.total == 5 and past.next_cursor == ""
    with pytest.raises(T.ValidationError, match="cursor: 'nonsense' is not a cursor"):
        tom.runs(cursor="nonsense")
    with pytest.raises(T.ValidationError, match="offset of 0 to 10,000"):
        tom.runs(offset=10_001)


def test_runs_are_chosen_by_when_they_were_created(tom, measurement):
    runs = [tom.launch("tiny-qc", [measurement["id"]], {"window": str(w)}).run for w in range(3, 6)]
    middle = runs[1].created_at
    assert {r.id for r in tom.runs(since=middle).runs} == {r.id for r in runs if r.created_at >= middle}
    assert {r.id for r in tom.runs(before=middle).runs} == {r.id for r in runs if r.created_at < middle}
    day = middle[:10]
    assert tom.runs(since=day).total == 3 and tom.runs(before=day).total == 0  # a date is that day's start
    later = tom.runs(since=day, limit=1)
    assert [r.id for r in tom.runs(since=day, limit=2, cursor=later.next_cursor).runs] == [r.id for r in runs[::-1][1:]]
    with pytest.raises(T.ValidationError, match="since"):
        tom.runs(since="last tuesday")


def test_a_trigger_launches_once_when_both_files_are_registered(admin, tom, project, folder):
    assert [(t.name, t.enabled) for t in admin.triggers()] == [("qc-new-measurement", False)]
    with pytest.raises(T.Forbidden, match="admin role"):
        tom.set_trigger_enabled("qc-new-measurement", True)
    assert admin.set_trigger_enabled("qc-new-measurement", True).enabled
    tom.submit(project, measurement_batch("m-3", folder, files=("imzML",)))
    assert admin.runs().total == 0                                 # the ibd file is not there yet
    tom.submit(project, [data_file("m-3", "ibd", folder)])
    runs = admin.runs().runs
    assert len(runs) == 1 and runs[0].parameters["method"] == "savgol"
    assert runs[0].created_by == "trigger:qc-new-measurement"
    tom.submit(project, [dict(data_file("m-3", "ibd", folder), file_size=11)])   # a second event: same run
    assert admin.runs().total == 1
    with pytest.raises(T.NotFound, match="no trigger 'nope'"):
        admin.set_trigger_enabled("nope", True)


def test_the_launcher_is_notified_in_the_portal_and_by_mail_when_a_run_ends(tom, worker, client_for, settings,
                                                                            measurement):
    run = tom.launch("tiny-qc", [measurement["id"]]).run
    worker.claim_runs("w", 1)
    worker.update_run(T.RunUpdate(run_id=run.id, status="running"))
    assert tom.notifications() == []                               # not before it ends
    worker.update_run(T.RunUpdate(run_id=run.id, status="failed", message="step main exited 2"))
    [note] = tom.notifications(unread_only=True)
    assert note.subject.startswith("tiny-qc run run-") and note.subject.endswith("failed")
    assert note.link == f"/runs/{run.id}" and "step main exited 2" in note.body
    [mail] = (settings.data_dir / "outbox").glob("*.eml")
    text = mail.read_text()
    assert "To: tom@localhost" in text and "Subject: tiny-qc run" in text
    other = client_for("eve", roles=["analyst"], grants={})
    assert other.notifications() == []
    with pytest.raises(T.ValidationError, match="not one of your notifications"):
        other.mark_notifications_read([note.id])
    tom.mark_notifications_read([note.id])
    assert tom.notifications(unread_only=True) == [] and tom.notifications()[0].read


def test_replaying_a_trigger_event_never_makes_a_second_run(admin, tom, project, folder):
    admin.set_trigger_enabled("qc-new-measurement", True)
    tom.submit(project, measurement_batch("m-4", folder))
    ibd = admin.find(project, "m-4.ibd")["id"]
    first, = admin.fire_triggers([ibd])
    assert first.existing and admin.runs().total == 1           # the submission launched it already
    results = admin.fire_triggers([ibd] * 20)
    assert {r.run.id for r in results} == {first.run.id} and admin.runs().total == 1
    with pytest.raises(T.NotFound, match="ids: no node"):
        admin.fire_triggers([str(uuid.uuid4())])


def test_a_run_that_fails_its_qc_succeeds_with_the_outcome_failed_and_its_checks(tom, worker, measurement):
    run = tom.launch("tiny-qc", [measurement["id"]]).run
    worker.claim_runs("w-a", 5)
    assert run.outcome == "" and run.failed_checks == []
    checks = ["peaks_mean 0.2222 (minimum 1)"]
    with pytest.raises(T.ValidationError, match="outcome: a verdict is reported only with the status succeeded"):
        worker.update_run(T.RunUpdate(run_id=run.id, status="failed", outcome="failed", failed_checks=checks))
    with pytest.raises(T.ValidationError, match="outcome: 'green' is not a verdict; choose from passed, failed"):
        worker.update_run(T.RunUpdate(run_id=run.id, status="succeeded", outcome="green"))
    with pytest.raises(T.ValidationError, match="failed_checks: name the failing checks"):
        worker.update_run(T.RunUpdate(run_id=run.id, status="succeeded", outcome="failed"))
    assert tom.run(run.id).status == "running"   # nothing of a refused report was written
    done = worker.update_run(T.RunUpdate(run_id=run.id, status="succeeded", outcome="failed", failed_checks=checks))
    assert (done.status, done.outcome, done.failed_checks) == ("succeeded", "failed", checks)
    listed = tom.runs().runs[0]
    assert (listed.outcome, listed.failed_checks) == ("failed", checks)
    [note] = tom.notifications(False)
    assert note.subject.endswith("succeeded, QC failed: peaks_mean 0.2222 (minimum 1)")


def test_the_file_documents_carry_the_latest_qc_outcome_as_a_facet(tom, worker, measurement):
    def finish(window: str, outcome: str, checks=()):
        run = tom.launch("tiny-qc", [measurement["id"]], {"window": window}).run
        worker.claim_runs("w-a", 5)
        worker.update_run(T.RunUpdate(run_id=run.id, status="succeeded", outcome=outcome, failed_checks=list(checks)))

    def buckets():
        facet = tom.facets("file", ["qc"]).facets[0]
        return {b.value: b.count for b in facet.buckets if b.count}

    assert buckets() == {"__missing__": 2}            # the measurement's imzML and ibd: no verdict yet
    finish("3", "failed", ["spectra 0 (minimum 1)"])
    assert buckets() == {"failed": 2}
    finish("5", "passed")                             # QC'd again, and passed: the newest counts
    assert buckets() == {"passed": 2}
