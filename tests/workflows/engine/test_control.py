"""Retries, deadlines, private /tmp, cancel, crash-and-resume, retry of failed steps."""
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tests.workflows.engine.conftest import nodes_named
from tests.need import need
from workflow_templates.engines import journal
from workflow_templates.engines.local import LocalEngine
from workflow_templates.engines.sandbox import bwrap_path

COUNTER = """
  - name: counted
    inputs: {parameters: [{name: file}, {name: fail-until, default: "0"}, {name: hang-on, default: "0"}]}
    script:
      image: python:3.11
      command: [python]
      source: |
        import sys, time
        with open("{{inputs.parameters.file}}", "a") as out:
            out.write("x")
        n = len(open("{{inputs.parameters.file}}").read())
        if n == {{inputs.parameters.hang-on}}:
            time.sleep(120)
        sys.exit(1 if n <= {{inputs.parameters.fail-until}} else 0)
"""


def template(body: str, extra: str = COUNTER) -> str:
    """A WorkflowTemplate: `body` (its spec's fields) plus the counter template."""
    head = "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nmetadata: {name: t}\nspec:\n"
    return head + textwrap.indent(textwrap.dedent(body), "  ") + textwrap.indent(
        textwrap.dedent(extra), "  ")


def count(path: Path) -> int:
    return len(path.read_text()) if path.exists() else 0


def processes_with(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and token in (entry / "cmdline").read_text():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


@pytest.mark.parametrize("strategy, phase, attempts", [
    ('limit: "2"', "Succeeded", 3),                                 # OnFailure by default
    ("limit: 1", "Failed", 2),
    ("{limit: 2, retryPolicy: OnError}", "Failed", 1),              # an exit code is no error
    ("{limit: 2, retryPolicy: Always, backoff: {duration: 100ms, factor: 2}}", "Succeeded", 3),
])
def test_retry_strategy_retries_a_failing_step_up_to_its_limit(run, shared, strategy, phase,
                                                               attempts):
    if not strategy.startswith("{"):
        strategy = "{" + strategy + "}"
    text = template(f"""
        entrypoint: main
        templates:
        - name: main
          steps:
          - - {{name: flaky, template: counted, arguments: {{parameters: [{{name: file, value: "{shared}/m"}}, {{name: fail-until, value: "2"}}]}}}}
        """, COUNTER.replace("    script:", f"    retryStrategy: {strategy}\n    script:"))
    handle = run(text)
    assert handle.phase == phase
    node = nodes_named(handle)["flaky"]
    assert node["attempts"] == attempts == count(shared / "m")


def test_template_deadline_kills_the_step(run):
    started = time.monotonic()
    handle = run(template("""
        entrypoint: main
        templates:
        - name: main
          activeDeadlineSeconds: 1
          container: {image: alpine, command: [sleep, "30"]}
        """, ""))
    assert time.monotonic() - started < 15
    assert handle.phase == "Failed"
    assert "deadline" in nodes_named(handle)[handle.status()["root"]]["message"]


def test_workflow_deadline_stops_the_run(run):
    started = time.monotonic()
    handle = run(template("""
        entrypoint: main
        activeDeadlineSeconds: 1
        templates:
        - name: main
          steps:
          - - {name: slow, template: slow}
        - name: slow
          container: {image: alpine, command: [sleep, "30"]}
        """, ""))
    assert time.monotonic() - started < 15
    assert handle.phase == "Failed"
    assert handle.status()["message"] == "Max duration limit exceeded"


def test_parallel_steps_writing_the_same_tmp_path_do_not_collide(run):
    if bwrap_path() is None:
        need("bubblewrap", "it cannot create namespaces here, so steps share the host's /tmp")
    handle = run(template("""
        entrypoint: main
        templates:
        - name: main
          steps:
          - - name: w
              template: write
              withItems: [one, two, three, four]
              arguments: {parameters: [{name: text, value: "{{item}}"}]}
        - name: write
          inputs: {parameters: [{name: text}]}
          script:
            image: python:3.11
            command: [python]
            source: |
              import time
              open("/tmp/same-name", "w").write("{{inputs.parameters.text}}")
              time.sleep(0.5)
              print(open("/tmp/same-name").read())
        """, ""))
    assert handle.phase == "Succeeded", handle.status()["message"]
    results = {n["name"]: n["outputs"]["result"] for n in handle.status()["nodes"].values()
               if n["type"] == "Pod"}
    assert sorted(results.values()) == ["four", "one", "three", "two"]
    assert all(name.endswith(f":{text})") for name, text in results.items())
    assert not Path("/tmp/same-name").exists()


def test_stop_kills_running_processes_and_fails_the_run(engine):
    token = uuid.uuid4().hex
    handle = engine.start(template(f"""
        entrypoint: main
        templates:
        - name: main
          steps:
          - - {{name: a, template: sleeper}}
            - {{name: b, template: sleeper}}
        - name: sleeper
          container: {{image: alpine, command: [python, -c, "import time; time.sleep(60)", "{token}"]}}
        """, ""))
    deadline = time.monotonic() + 20
    while len(processes_with(token)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(token), "the steps never started"
    handle.stop()
    assert handle.wait(20) == "Failed"
    assert handle.status()["message"] == "Stopped"
    assert processes_with(token) == []
    assert {n["phase"] for n in nodes_named(handle).values()} == {"Failed"}


def test_retry_failed_reruns_only_the_failed_steps(run, shared):
    handle = run(template(f"""
        entrypoint: main
        templates:
        - name: main
          dag:
            tasks:
            - {{name: good, template: counted, arguments: {{parameters: [{{name: file, value: "{shared}/good"}}]}}}}
            - {{name: bad, template: counted, dependencies: [good], arguments: {{parameters: [{{name: file, value: "{shared}/bad"}}, {{name: fail-until, value: "1"}}]}}}}
        """))
    assert handle.phase == "Failed"
    handle.retry_failed()
    assert handle.wait(60) == "Succeeded", handle.status()["message"]
    assert (count(shared / "good"), count(shared / "bad")) == (1, 2)


CRASHING_RUN = """
import sys
from workflow_templates.engines import journal
from workflow_templates.engines.local import LocalEngine
engine = LocalEngine(sys.argv[1], sys.argv[2], max_parallel=2, isolate=sys.argv[4] == "1")
engine.start(open(sys.argv[3]).read(), run_id="crash", sees={"write": [sys.argv[5]]}).wait()
"""


def journaled_pid(run_dir: Path, name: str) -> int | None:
    """The pid the engine journaled for step `name`, once it has: the step's own first write can
    come before the engine records it, and a crash between the two is another test's case."""
    try:
        nodes = journal.load(run_dir)["nodes"].values()
    except (OSError, ValueError, KeyError):  # not written yet, or caught between snapshot and log
        return None
    return next((n["pid"] for n in nodes if n["name"] == name and n.get("pid")), None)


@pytest.mark.parametrize("limit, phase, isolate", [
    (1, "Succeeded", True), (0, "Failed", True), (1, "Succeeded", False)])
def test_resume_after_a_crash_reruns_only_unfinished_steps(tmp_path, shared, limit, phase, isolate):
    """The engine's process is killed (SIGKILL) while step `b` runs; resume finishes the run.

    Without bubblewrap the killed engine's step outlives it: resume must kill that process."""
    counted = COUNTER.replace("    script:", f"    retryStrategy: {{limit: {limit}}}\n    script:")
    (tmp_path / "t.yaml").write_text(template(f"""
        entrypoint: main
        templates:
        - name: main
          steps:
          - - {{name: a, template: counted, arguments: {{parameters: [{{name: file, value: "{shared}/a"}}]}}}}
          - - {{name: b, template: counted, arguments: {{parameters: [{{name: file, value: "{shared}/b"}}, {{name: hang-on, value: "1"}}]}}}}
        """, counted))
    storage, runs = tmp_path / "storage", tmp_path / "runs"
    child = subprocess.Popen([sys.executable, "-c", CRASHING_RUN, storage, runs,
                              tmp_path / "t.yaml", "1" if isolate else "0", shared],
                             cwd=Path(__file__).resolve().parents[3])
    deadline = time.monotonic() + 30
    while not (count(shared / "b") and journaled_pid(runs / "crash", "b")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count(shared / "b") == 1 and journaled_pid(runs / "crash", "b"), "step b never started"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    left = [n for n in journal.load(runs / "crash")["nodes"].values() if n["name"] == "b"][0]
    restarted = LocalEngine(storage, runs, max_parallel=2, isolate=isolate)
    if isolate:
        handle = restarted.resume("crash")
    else:  # as a worker does when it starts: resume whatever is unfinished
        [handle] = restarted.recover()
    assert handle.wait(60) == phase, handle.status()["message"]
    assert count(shared / "a") == 1  # a finished before the crash: not run again
    nodes = nodes_named(handle)
    assert nodes["a"]["phase"] == "Succeeded"
    if phase == "Succeeded":
        assert count(shared / "b") == 2 and nodes["b"]["attempts"] == 2
    else:
        assert count(shared / "b") == 1 and "interrupted" in nodes["b"]["message"]
    assert all(n["phase"] != "Running" for n in nodes.values())
    gone = journal.process_start_time(left["pid"]) != left["pid_start"]
    assert gone, "the first attempt of b outlived the resume"


def test_recover_resumes_every_unfinished_run(tmp_path):
    engine = LocalEngine(tmp_path / "s", tmp_path / "r")
    handle = engine.start(template("""
        entrypoint: main
        templates:
        - name: main
          container: {image: alpine, command: ["true"]}
        """, ""), run_id="done")
    assert handle.wait(30) == "Succeeded"
    assert LocalEngine(tmp_path / "s", tmp_path / "r").recover() == []


@pytest.mark.parametrize("where", ["workflow", "template"])
def test_parallelism_limits_how_many_steps_run_at_once(tmp_path, shared, where):
    """4 items of 0.4 s each under parallelism 1 never overlap, though the pool holds 4."""
    engine = LocalEngine(tmp_path / "s", tmp_path / "r", max_parallel=4)
    handle = engine.start(template(f"""
        {"parallelism: 1" if where == "workflow" else ""}
        entrypoint: main
        templates:
        - name: main
          steps:
          - - {{name: fan, template: fan}}
        - name: fan
          {"parallelism: 1" if where == "template" else ""}
          steps:
          - - name: each
              template: stamp
              withItems: [a, b, c, d]
              arguments: {{parameters: [{{name: label, value: "{{{{item}}}}"}}]}}
        - name: stamp
          inputs: {{parameters: [{{name: label}}]}}
          script:
            image: python:3.11
            command: [python]
            source: |
              import time
              start = time.time()
              time.sleep(0.4)
              open("{shared}/{{{{inputs.parameters.label}}}}", "w").write(f"{{start}} {{time.time()}}")
        """, ""), sees={"write": [shared]})
    assert handle.wait(60) == "Succeeded", handle.status()["message"]
    spans = sorted(tuple(map(float, p.read_text().split())) for p in shared.iterdir())
    assert len(spans) == 4
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:]))
