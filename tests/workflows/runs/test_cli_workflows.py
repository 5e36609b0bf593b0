"""The workflow commands of the CLI, against a real service (and an in-process worker)."""
import threading

import pytest

from metadata import templates
from workflow_templates.worker import Worker
from tests.workflows.runs.test_worker import run_until


@pytest.fixture
def workflow_cli(cli, settings, monkeypatch):
    monkeypatch.setenv("LABCOMMONS_TEMPLATES_DIR", str(settings.templates_dir))
    return cli


def test_templates_lists_the_catalog(workflow_cli):
    result = workflow_cli("templates")
    assert result.exit_code == 0 and "size-report" in result.output and "mode=ok" in result.output


def test_launch_then_launch_again_shows_the_existing_run(workflow_cli, measurement, admin):
    first = workflow_cli("launch", "size-report", measurement)
    assert first.exit_code == 0 and "launched size-report as run" in first.output
    run_id = admin.runs().runs[0].id
    again = workflow_cli("launch", "size-report", measurement, "-p", "mode=ok")
    assert again.exit_code == 0 and f"already queued: run {run_id}" in again.output
    listed = workflow_cli("runs", "--status", "queued")
    assert run_id[:24] in listed.output and "1 of 1 run(s)" in listed.output  # 80 columns here
    shown = workflow_cli("run", "show", run_id)
    assert "size-report" in shown.output and "queued" in shown.output
    cancelled = workflow_cli("run", "cancel", run_id)
    assert f"run {run_id}: cancelled" in cancelled.output


def test_bad_launches_exit_non_zero_with_the_message(workflow_cli, measurement):
    result = workflow_cli("launch", "size-report", measurement, "-p", "mode=fast")
    assert result.exit_code == 1 and "parameters.mode" in result.output and "must be one of ok, fail, slow, qc-pass, qc-fail" in result.output
    result = workflow_cli("launch", "size-report", measurement, "-p", "mode")
    assert result.exit_code == 2 and "is not NAME=VALUE" in result.output


def test_launch_wait_follows_the_run_to_its_end_and_logs_show_it(workflow_cli, measurement, admin, settings):
    worker = Worker(admin, templates.load(settings.templates_dir), settings.storage_root, name="w-cli")
    stop = threading.Event()
    thread = threading.Thread(target=worker.serve, args=(stop, 0.1), daemon=True)
    thread.start()
    try:
        ok = workflow_cli("launch", "size-report", measurement, "--wait")
        failed = workflow_cli("launch", "size-report", measurement, "-p", "mode=fail", "--wait")
    finally:
        stop.set()
        thread.join(timeout=10)
    assert ok.exit_code == 0 and "succeeded" in ok.output
    assert failed.exit_code == 1 and "failed" in failed.output
    failed_run = admin.runs(status="failed").runs[0].id
    logs = workflow_cli("run", "logs", failed_run, "--step", "measure")
    assert "the step could not go on" in logs.output


def test_triggers_are_listed_and_switched(workflow_cli, settings, tmp_path):
    result = workflow_cli("triggers")
    assert result.exit_code == 0
    result = workflow_cli("trigger", "nope", "on")
    assert result.exit_code == 1 and "no trigger 'nope'" in result.output


def test_runs_and_run_show_print_the_qc_outcome_and_failing_checks(workflow_cli, measurement, admin, settings):
    worker = Worker(admin, templates.load(settings.templates_dir), settings.storage_root, name="w-cli")
    run_id = admin.launch("size-report", [measurement], {"mode": "qc-fail"}).run.id
    assert run_until(worker, admin, run_id).outcome == "failed"
    listed = workflow_cli("runs", "--template", "size-report")
    assert listed.exit_code == 0 and "QC" in listed.output and "failed" in listed.output
    shown = workflow_cli("run", "show", run_id)
    assert "succeeded" in shown.output and "QC failed" in shown.output
    assert "failed: bytes 8 (minimum 1000)" in shown.output
