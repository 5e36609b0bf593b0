"""The worker against a real metadata service and the local engine: claim, run, report, register
outputs; failures, cancellation and retries reach the run as a user sees it."""
import hashlib
import json
import os
import threading
import time

import pytest
import yaml

from ground.storage import run_dir
from metadata import templates
from workflow_templates.worker import Worker, is_alive, report_verdict
from tests.workflows.runs.conftest import template

MEASURE_IMAGE = "labcommons"  # what the size-report template (conftest) names for its step


@pytest.fixture
def worker(client_for, settings):
    """A worker with a worker-role token: the least it needs (claim, report, read the inputs)."""
    client = client_for("worker", roles=["worker"])
    worker = Worker(client, templates.load(settings.templates_dir), settings.storage_root, name="w-test", capacity=2)
    yield worker
    for followed in worker.followed.values():
        followed.handle.stop("test over")


def run_until(worker, admin, run_id: str, statuses=("succeeded", "failed", "cancelled"), seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        worker.tick()
        run = admin.run(run_id)
        if run.status in statuses:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} is still {admin.run(run_id).status}")


def describe(run) -> str:
    return f"{run.status}: {run.message}; steps: {[(s.name, s.phase, s.message) for s in run.steps]}"


def test_a_run_succeeds_and_its_outputs_are_registered_with_provenance(worker, admin, measurement, settings):
    run = admin.launch("size-report", [measurement]).run
    assert {p.name for p in admin.templates()[0].parameters} == {"mode"}   # the others: filled by the worker
    done = run_until(worker, admin, run.id)
    assert done.status == "succeeded", describe(done)
    assert done.worker == "w-test" and done.finished_at
    assert {s.name for s in done.steps} >= {"measure"} and all(s.phase == "Succeeded" for s in done.steps)
    # the local engine ran the step with the host's tools: the run records which image they stood in for
    [measure] = [s for s in done.steps if s.name == "measure"]
    assert measure.replaced_image == MEASURE_IMAGE
    [output] = [admin.get(i) for i in done.output_ids]          # notes.xyz has no format: not registered
    path = run_dir(settings.storage_root, run.project_id, run.id) / "outputs" / "report.json"  # under its project
    assert output["properties"]["md5sum"] == hashlib.md5(path.read_bytes()).hexdigest()
    assert output["properties"]["data_category"] == "qc_report"
    assert json.loads(path.read_text()) == {"bytes": len(b"<imzML/>")}
    assert output["links"][0]["target_id"] == run.id            # generated_by the run


def test_a_run_whose_declared_verdict_fails_succeeds_with_the_outcome_failed_and_its_checks(worker, admin, measurement):
    failed = run_until(worker, admin, admin.launch("size-report", [measurement], {"mode": "qc-fail"}).run.id)
    assert (failed.status, failed.outcome) == ("succeeded", "failed"), describe(failed)
    assert failed.failed_checks == ["bytes 8 (minimum 1000)"]   # the passing check is not named
    assert failed.message == "succeeded; QC failed: bytes 8 (minimum 1000)"
    passed = run_until(worker, admin, admin.launch("size-report", [measurement], {"mode": "qc-pass"}).run.id)
    assert (passed.status, passed.outcome, passed.failed_checks) == ("succeeded", "passed", [])
    plain = run_until(worker, admin, admin.launch("size-report", [measurement]).run.id)
    assert (plain.status, plain.outcome) == ("succeeded", "")   # no verdict written: none


def test_a_report_without_a_boolean_passed_gives_no_verdict_and_a_failure_names_a_check():
    with pytest.raises(ValueError, match="no boolean 'passed'"):
        report_verdict({"passed": "false", "checks": []})
    assert report_verdict({"passed": False, "checks": []}) == (
        "failed", ["the report says it failed without naming a check"])
    assert report_verdict({"passed": False, "checks": [{"metric": "ppm", "value": 12.5, "maximum": 5,
                                                        "passed": False}]}) == ("failed", ["ppm 12.5 (maximum 5)"])


def test_a_failing_step_fails_the_run_naming_the_step_and_keeping_its_log(worker, admin, measurement):
    run = admin.launch("size-report", [measurement], {"mode": "fail"}).run
    done = run_until(worker, admin, run.id)
    assert done.status == "failed" and "step measure failed (exit code 3)" in done.message
    [step] = [s for s in done.steps if s.name == "measure"]
    log = step.log_url.removeprefix("file://")
    assert "the step could not go on" in open(log).read()
    assert done.output_ids == []


def test_cancelling_a_running_run_stops_its_processes(worker, admin, measurement):
    run = admin.launch("size-report", [measurement], {"mode": "slow"}).run
    run_until(worker, admin, run.id, statuses=("running",))
    deadline = time.monotonic() + 30
    while not any(s.phase == "Running" and s.name == "measure" for s in admin.run(run.id).steps):
        assert time.monotonic() < deadline, "the step never started"
        worker.tick()
        time.sleep(0.1)
    admin.cancel_run(run.id)
    started = time.monotonic()
    done = run_until(worker, admin, run.id)
    assert done.status == "cancelled" and time.monotonic() - started < 30


def test_a_retry_runs_the_run_again(worker, admin, measurement, settings):
    run = admin.launch("size-report", [measurement], {"mode": "fail"}).run
    assert run_until(worker, admin, run.id).status == "failed"
    admin.retry_run(run.id)
    again = run_until(worker, admin, run.id)
    assert again.status == "failed" and again.attempt == 2


def test_a_template_changed_since_the_launch_fails_the_run_clearly(worker, admin, measurement, settings):
    run = admin.launch("size-report", [measurement]).run
    (settings.templates_dir / "size-report.yaml").write_text(yaml.safe_dump(template(mode_default="fail")))
    worker.catalog = templates.load(settings.templates_dir)
    done = run_until(worker, admin, run.id)
    assert done.status == "failed" and "changed since the launch" in done.message


def test_a_serving_worker_reports_a_run_s_end_at_once_not_after_a_claim_s_wait(worker, admin, measurement):
    """Following a run, the worker pauses until the local engine says it ended (a long poll is no
    longer how long a finished run waits to be reported)."""
    stop = threading.Event()
    serving = threading.Thread(target=worker.serve, args=(stop, 8.0), daemon=True)
    serving.start()
    try:
        run = admin.launch("size-report", [measurement]).run
        started = time.monotonic()
        while admin.run(run.id).status not in ("succeeded", "failed") and time.monotonic() - started < 30:
            time.sleep(0.02)
        assert admin.run(run.id).status == "succeeded" and time.monotonic() - started < 6
    finally:
        stop.set()
        admin.launch("size-report", [measurement], {"mode": "fail"})   # ends the idle claim's wait
        serving.join(15)


def test_the_worker_keeps_going_when_the_service_is_away_and_its_heartbeat_says_so(admin, settings, caplog,
                                                                                     tmp_path):
    stop = threading.Event()
    heartbeat = tmp_path / "worker.heartbeat"
    worker = Worker(admin, templates.load(settings.templates_dir), settings.storage_root, name="w",
                    heartbeat=heartbeat)
    assert is_alive(heartbeat, 120) == (False, f"no heartbeat at {heartbeat}: the worker has not gone round its "
                                               "loop yet")
    admin.port = 1   # nothing listens there
    admin.close()
    threading.Timer(0.5, stop.set).start()
    worker.serve(stop, 0.05)   # returns when stopped; raises if a tick's failure escaped
    assert "cannot reach the metadata service" in caplog.text
    assert is_alive(heartbeat, 120)[0]   # away from the service, but not hung: not restarted
    os.utime(heartbeat, (time.time() - 300, time.time() - 300))
    alive, message = is_alive(heartbeat, 120)
    assert not alive and "300 s ago (allowed: 120 s): it is hung" in message


def test_worker_alive_exits_by_the_heartbeat(tmp_path):
    from click.testing import CliRunner

    from labcommons.cli import main

    heartbeat = tmp_path / "worker.heartbeat"
    heartbeat.touch()
    assert CliRunner().invoke(main, ["worker-alive", str(heartbeat)]).exit_code == 0
    os.utime(heartbeat, (time.time() - 90, time.time() - 90))
    assert CliRunner().invoke(main, ["worker-alive", str(heartbeat)]).exit_code == 0   # 120 s by default
    stale = CliRunner().invoke(main, ["worker-alive", str(heartbeat), "--within", "60"])
    assert stale.exit_code == 1 and "it is hung" in stale.output
    missing = CliRunner().invoke(main, ["worker-alive", str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "no heartbeat at" in missing.output


def test_a_dead_workers_run_goes_back_to_the_queue_and_another_worker_finishes_it(server, admin, measurement,
                                                                                   client_for, settings):
    server.guard._service.runs.worker_gone_seconds = 0.5   # instead of five minutes
    dead = client_for("worker", roles=["worker"])
    run = admin.launch("size-report", [measurement]).run
    assert [r.id for r in dead.claim_runs("w-dead", 1)] == [run.id]   # claimed, then it dies silently
    time.sleep(0.6)
    alive = Worker(client_for("worker", roles=["worker"]), templates.load(settings.templates_dir),
                   settings.storage_root, name="w-alive")
    alive.tick()
    taken = admin.run(run.id)
    assert taken.worker == "w-alive" and taken.status == "running"
    done = run_until(alive, admin, run.id)
    assert done.status == "succeeded" and done.attempt == 1
