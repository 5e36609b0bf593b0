"""Step reuse through the metadata service (metadata/step_records.py) and the worker: an identical
step of a later run reuses a succeeded run's outputs and they are registered as its own; the
service offers records only of succeeded runs, in projects the launcher could read, and none to a
run launched without reuse."""
import hashlib
import threading
import time

import pytest

from ground.storage import run_dir
from metadata.idl import metadata_thrift as T
from tests.workflows.runs.conftest import submit_measurement
from tests.workflows.runs.test_worker import describe, run_until, worker  # noqa: F401 - a fixture
from workflow_templates.worker import ServiceCache

KEY = "a" * 64


@pytest.fixture
def twin(admin, project, settings) -> str:
    """A measurement in a second project whose files hold the same bytes as `measurement`'s."""
    admin.submit("other", [{"type": "project", "submitter_id": "other", "programs": {"submitter_id": "TEST"}}])
    root = settings.storage_root / "other"
    root.mkdir(parents=True)
    files = []
    for fmt, content in (("imzML", b"<imzML/>"), ("ibd", b"\x00" * 100)):
        (root / f"m.{fmt}").write_bytes(content)
        files.append({"type": "data_file", "submitter_id": f"m.{fmt}", "file_name": f"m.{fmt}", "data_format": fmt,
                      "file_size": len(content), "md5sum": hashlib.md5(content).hexdigest(),
                      "storage_url": (root / f"m.{fmt}").as_uri(), "measurements": {"submitter_id": "m"}})
    submit_measurement(admin, "other", "m", files)
    return admin.find("other", "m")["id"]


def test_an_identical_step_of_a_later_run_reuses_the_outputs_which_are_registered_as_its_own(
        worker, admin, measurement, settings, workflow_cli):
    first = run_until(worker, admin, admin.launch("size-report", [measurement]).run.id)
    assert first.status == "succeeded", describe(first)
    again = run_until(worker, admin, admin.launch("size-report", [measurement], force=True).run.id)
    assert again.status == "succeeded", describe(again)
    [measure] = [s for s in again.steps if s.name == "measure"]
    assert (measure.reused_from_run, measure.reused_from_step, measure.attempts) == (first.id, "measure", 0)
    [output] = [admin.get(i) for i in again.output_ids]
    copied = run_dir(settings.storage_root, again.project_id, again.id) / "outputs" / "report.json"
    assert output["properties"]["storage_url"] == copied.as_uri()
    assert output["properties"]["md5sum"] == admin.get(first.output_ids[0])["properties"]["md5sum"]
    assert "reused from run" in " ".join(workflow_cli("run", "show", again.id).output.split())
    assert workflow_cli("launch", "size-report", measurement, "--force", "--no-reuse").exit_code == 0
    off = run_until(worker, admin, admin.runs().runs[0].id)
    assert not off.reuse and all(not s.reused_from_run for s in off.steps) and off.status == "succeeded"


def test_reuse_crosses_projects_only_for_a_launcher_who_may_read_the_earlier_one(
        worker, admin, client_for, measurement, twin):
    first = run_until(worker, admin, admin.launch("size-report", [measurement]).run.id)
    tom = client_for("tom", roles=["technician"], grants={"other": "write"})   # cannot read test-proj
    his = run_until(worker, admin, tom.launch("size-report", [twin]).run.id)
    assert his.status == "succeeded" and all(not s.reused_from_run for s in his.steps), describe(his)
    admins = run_until(worker, admin, admin.launch("size-report", [twin], force=True).run.id)
    assert {s.reused_from_run for s in admins.steps if s.name == "measure"} in ({first.id}, {his.id})


def record(client, run_id: str, settings, project: str) -> None:
    folder = run_dir(settings.storage_root.resolve(), project, run_id)
    client.record_step(run_id, T.StepRecord(key=KEY, step="s", node_id="n", folder=str(folder),
                                            files_json='[{"path": "outputs/x", "sha256": "%s", "size": 1}]' % KEY))


def test_the_service_offers_only_succeeded_runs_records_and_none_without_reuse(client_for, admin, measurement,
                                                                               settings, project):
    worker = client_for("worker", roles=["worker"])
    failed, done = (admin.launch("size-report", [measurement], {"mode": m}).run for m in ("fail", "ok"))
    worker.claim_runs("w", 2)
    for run, status in ((failed, "failed"), (done, "succeeded")):
        record(worker, run.id, settings, project)
        worker.update_run(T.RunUpdate(run_id=run.id, status=status))
    asking = admin.launch("size-report", [measurement], {"mode": "slow"}).run
    assert [r.run_id for r in worker.find_step_records(asking.id, KEY, -1)] == [done.id]
    assert worker.find_step_records(asking.id, KEY, 0) == []   # max age: recorded earlier than 0 s ago
    other = "b" * 64
    batch = worker.find_step_records_batch(asking.id, [KEY, other], -1)
    assert {k: [r.run_id for r in v] for k, v in batch.items()} == {KEY: [done.id], other: []}
    without = admin.launch("size-report", [measurement], {"mode": "qc-pass"}, reuse=False).run
    assert worker.find_step_records(without.id, KEY, -1) == []
    assert worker.find_step_records_batch(without.id, [KEY], -1) == {KEY: []}
    with pytest.raises(T.ValidationError, match="keys: give 1 to 1000 step keys"):
        worker.find_step_records_batch(asking.id, [], -1)
    with pytest.raises(T.ValidationError, match="folder: give the run's own folder"):
        worker.record_step(done.id, T.StepRecord(key=KEY, folder=str(settings.storage_root / "elsewhere")))


class Counted(ServiceCache):
    """The worker's cache, counting its calls to the service."""

    def __init__(self, client):
        super().__init__(client)
        self.calls = []

    def _send(self, asked, batch):
        self.calls.append(sorted(b.key for b in batch))
        super()._send(asked, batch)


def test_lookups_made_while_one_is_in_flight_go_to_the_service_in_one_call(client_for, admin, measurement,
                                                                          settings, project):
    worker = client_for("worker", roles=["worker"])
    done = admin.launch("size-report", [measurement]).run
    worker.claim_runs("w", 1)
    record(worker, done.id, settings, project)
    worker.update_run(T.RunUpdate(run_id=done.id, status="succeeded"))
    asking = admin.launch("size-report", [measurement], {"mode": "slow"}).run
    cache, found = Counted(worker), {}
    keys = [KEY, "b" * 64, "c" * 64]
    with cache._sending:   # a call in flight: the three steps' lookups wait beside it
        threads = [threading.Thread(target=lambda k=k: found.update({k: cache.find(asking.id, k, None)}))
                   for k in keys]
        for thread in threads:
            thread.start()
        while len(cache._pending.get((asking.id, -1), [])) < len(keys):
            time.sleep(0.01)
    for thread in threads:
        thread.join(10)
    assert cache.calls == [sorted(keys)]
    assert [r["run_id"] for r in found[KEY]] == [done.id] and found["b" * 64] == found["c" * 64] == []
