"""The workflow commands of the CLI, against a real service (and an in-process worker)."""
import json
import re
import threading

import click
import pytest

from metadata import templates
from workflow_templates.worker import Worker
from tests.workflows.runs.test_worker import run_until


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
    assert run_id in listed.output and "1 of 1 run(s)" in listed.output  # whole, at 80 columns too
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
    assert ok.exit_code == 0 and re.search(r"\nrun [0-9a-f-]{36} succeeded; 1 output\(s\): \S+\n$", ok.output)
    assert failed.exit_code == 1 and re.search(r"\nrun [0-9a-f-]{36} failed\b.*\n$", failed.output)
    failed_run = admin.runs(status="failed").runs[0].id
    logs = workflow_cli("run", "logs", failed_run, "--step", "measure")
    assert "the step could not go on" in logs.output


def test_triggers_are_listed_and_switched(workflow_cli, settings, tmp_path):
    result = workflow_cli("triggers")
    assert result.exit_code == 0
    result = workflow_cli("trigger", "nope", "on")
    assert result.exit_code == 1 and "no trigger 'nope'" in result.output


UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f-]{27,}\b")


@pytest.fixture
def two_runs(workflow_cli, measurement, admin, monkeypatch):
    """Two queued runs (no worker), listed at 80 columns."""
    monkeypatch.setenv("COLUMNS", "80")
    workflow_cli("launch", "size-report", measurement)
    workflow_cli("launch", "size-report", measurement, "-p", "mode=fail")
    return admin.runs().runs


def test_at_80_columns_every_run_id_printed_is_whole_and_usable(workflow_cli, two_runs):
    listed = workflow_cli("runs")
    assert listed.exit_code == 0 and max(map(len, listed.output.splitlines())) <= 80
    printed = UUID.findall(listed.output)
    assert sorted(printed) == sorted(r.id for r in two_runs)
    for line, run_id in zip(listed.output.splitlines()[2:], printed):
        assert "size-report" in line and "queued" in line  # template and status survive the squeeze
        shown = workflow_cli("run", "show", run_id)
        assert shown.exit_code == 0 and f"run {run_id}" in shown.output


def test_run_commands_take_the_portal_name_or_a_unique_prefix(workflow_cli, two_runs):
    first, second = two_runs
    assert f"run {first.id}" in workflow_cli("run", "show", first.submitter_id).output
    prefix = next(first.id[:n] for n in range(1, 37) if not second.id.startswith(first.id[:n]))
    assert f"run {first.id}" in workflow_cli("run", "show", prefix).output
    assert f"run {second.id}: cancelled" in workflow_cli("run", "cancel", second.submitter_id).output


def test_an_ambiguous_run_prefix_lists_the_candidates(workflow_cli, two_runs, measurement, admin):
    for _ in range(15):  # 17 runs: two share a first hex digit
        workflow_cli("launch", "size-report", measurement, "--force")
    ids = [r.id for r in admin.runs(limit=50).runs]
    shared = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) > 1)
    result = workflow_cli("run", "show", shared)
    assert result.exit_code == 1 and "names" in result.output and "give more of the id" in result.output
    assert all(i in result.output for i in ids if i.startswith(shared))
    missing = workflow_cli("run", "show", "no-such-run")
    assert missing.exit_code == 1 and "no run 'no-such-run' that you can read" in missing.output


def test_launch_takes_the_measurement_name_and_runs_lists_as_json(workflow_cli, measurement, project, admin):
    launched = workflow_cli("launch", "size-report", "m", "--project", project)
    run = admin.runs().runs[0]
    assert launched.output == f"launched size-report as run {run.id} (queued), named {run.submitter_id}\n"
    assert "already queued" in workflow_cli("launch", "size-report", measurement).output  # the same input
    assert "already queued" in workflow_cli("launch", "size-report", "m").output  # the one project that has it
    rows = json.loads(workflow_cli("runs", "-o", "json").output)
    assert [r["id"] for r in rows] == [admin.runs().runs[0].id] and rows[0]["status"] == "queued"
    tsv = workflow_cli("runs", "-o", "tsv").output.splitlines()
    assert tsv[0].split("\t")[:2] == ["id", "name"] and tsv[1].split("\t")[0] == rows[0]["id"]


def test_every_command_and_option_has_help():
    from labcommons.cli import main

    def missing(command, path):
        yield from ([path] if not (command.help or "").strip() else [])
        yield from (f"{path} --{p.name}" for p in command.params if isinstance(p, click.Option) and not p.help)
        for name, sub in getattr(command, "commands", {}).items():
            yield from missing(sub, f"{path} {name}")
    assert list(missing(main, "labcommons")) == []


def test_completion_offers_run_names_and_ids_and_templates(workflow_cli, two_runs):
    def complete(words: str) -> list[str]:
        env = {"_LABCOMMONS_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - (not words.endswith(" ")))}
        return [line.partition(",")[2] for line in workflow_cli(prog_name="labcommons", env=env).output.splitlines()]
    offered = complete("labcommons run show ")
    assert sorted(offered) == sorted([r.id for r in two_runs] + [r.submitter_id for r in two_runs])
    assert complete("labcommons launch si") == ["size-report"]


def test_a_wider_terminal_shows_the_run_names_whole_too(workflow_cli, two_runs, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    listed = workflow_cli("runs").output
    assert all(f"{r.id} │ {r.submitter_id} │ size-report" in listed for r in two_runs)
    wide = workflow_cli("runs", "-o", "wide").output
    assert all(r.created_by in wide and r.project_id in wide for r in two_runs)


def test_runs_and_run_show_print_the_qc_outcome_and_failing_checks(workflow_cli, measurement, admin, settings):
    worker = Worker(admin, templates.load(settings.templates_dir), settings.storage_root, name="w-cli")
    run_id = admin.launch("size-report", [measurement], {"mode": "qc-fail"}).run.id
    assert run_until(worker, admin, run_id).outcome == "failed"
    listed = workflow_cli("runs", "--template", "size-report")
    assert listed.exit_code == 0 and "QC" in listed.output and "failed" in listed.output
    shown = workflow_cli("run", "show", run_id)
    assert "succeeded" in shown.output and "QC failed" in shown.output
    assert "failed: bytes 8 (minimum 1000)" in shown.output
