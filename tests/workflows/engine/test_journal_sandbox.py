"""The journal's replay, and the sandbox's detection and fallback."""
import logging
import textwrap
import uuid
from pathlib import Path

from ground import bwrap
from tests.workflows.engine.conftest import nodes_named
from workflow_templates.engines import journal, sandbox
from workflow_templates.engines.local import LocalEngine, _interrupt


def test_journal_replays_changes_after_the_snapshot_and_ignores_a_torn_line(tmp_path):
    writer = journal.Journal(tmp_path)
    state = {"phase": "Running", "nodes": {"r": {"id": "r", "children": [], "phase": "Running"}}}
    writer.snapshot(state)
    writer.record({"node": {"id": "r.a", "children": [], "phase": "Succeeded"}})
    writer.record({"child": "r.a", "parent": "r"})
    writer.record({"run": {"phase": "Failed"}})
    writer.close()
    with open(tmp_path / journal.EVENTS, "a") as events:
        events.write('{"seq": 4, "node": {"id": "r.b"')  # the crash tore this line
    loaded = journal.load(tmp_path)
    assert loaded["phase"] == "Failed" and loaded["seq"] == 3
    assert loaded["nodes"]["r"]["children"] == ["r.a"]
    assert loaded["nodes"]["r.a"]["phase"] == "Succeeded" and "r.b" not in loaded["nodes"]


def test_missing_bwrap_is_detected_once_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(bwrap.shutil, "which", lambda name: None)
    sandbox.bwrap_path.cache_clear()
    try:
        with caplog.at_level(logging.WARNING):
            assert sandbox.bwrap_path() is None
            assert sandbox.bwrap_path() is None
        assert len([r for r in caplog.records if "bubblewrap" in r.message]) == 1
        assert sandbox.sandboxed(["true"], Path("/nowhere")) == (["true"], False)
    finally:
        sandbox.bwrap_path.cache_clear()


def test_without_isolation_steps_run_on_the_host_tmp(tmp_path):
    name = f"/tmp/labcommons-engine-{uuid.uuid4().hex}"
    engine = LocalEngine(tmp_path / "s", tmp_path / "r", isolate=False)
    handle = engine.start(textwrap.dedent(f"""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {{name: plain}}
        spec:
          entrypoint: main
          templates:
          - name: main
            container: {{image: alpine, command: [sh, -c, "echo host > {name}"]}}
            outputs: {{parameters: [{{name: v, valueFrom: {{path: {name}}}}}]}}
        """))
    try:
        assert handle.wait(30) == "Succeeded", handle.status()["message"]
        assert nodes_named(handle)[handle.status()["root"]]["outputs"]["parameters"] == {"v": "host"}
    finally:
        Path(name).unlink(missing_ok=True)


def test_interrupted_steps_count_only_attempts_that_ran():
    nodes = _interrupt({
        "ran": {"id": "ran", "type": "Pod", "phase": "Running", "attempts": 1, "pid": None},
        "queued": {"id": "queued", "type": "Pod", "phase": "Pending", "attempts": 1},
        "done": {"id": "done", "type": "Pod", "phase": "Succeeded", "attempts": 1},
    })
    assert (nodes["ran"]["attempts"], nodes["queued"]["attempts"]) == (1, 0)
    assert nodes["ran"]["interrupted"] and nodes["queued"]["interrupted"]
    assert nodes["done"]["phase"] == "Succeeded" and "interrupted" not in nodes["done"]


def test_recover_ends_in_error_a_run_it_cannot_resume(tmp_path):
    run_dir = tmp_path / "r" / "old"
    run_dir.mkdir(parents=True)
    journal.save(run_dir, {"run_id": "old", "phase": "Running", "entrypoint": "main",
                           "document": {"spec": {"templates": [{"name": "main", "suspend": {}}]}},
                           "nodes": {"n": {"id": "n", "phase": "Running", "children": []}}})
    assert LocalEngine(tmp_path / "s", tmp_path / "r").recover() == []
    state = journal.load(run_dir)
    assert state["phase"] == "Error" and "suspend" in state["message"]
    assert state["nodes"]["n"]["phase"] == "Error"
