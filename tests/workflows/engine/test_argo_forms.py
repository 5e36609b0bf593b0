"""Go's text forms in templates, as Argo's controller reads them: withSequence.format
(expandSequence: fmt.Sprintf(format, i)) and retryStrategy.backoff durations and cap
(processNodeRetries: ParseStringToDuration; the wait is min(duration * factor^n, cap))."""
import json
import time

import pytest

from tests.workflows.engine.conftest import nodes_named
from workflow_templates.engines import golang
from workflow_templates.engines.retries import backoff
from workflow_templates.engines.spec import TemplateRefused, load

SEQUENCE = """
    apiVersion: argoproj.io/v1alpha1
    kind: WorkflowTemplate
    metadata: {name: sequence-format}
    spec:
      entrypoint: main
      templates:
      - name: main
        steps:
        - - {name: days, template: say, arguments: {parameters: [{name: m, value: "{{item}}"}]},
             withSequence: %s}
      - name: say
        inputs: {parameters: [{name: m}]}
        container: {image: alpine, command: [sh, -c, "echo {{inputs.parameters.m}}"]}
    """


def results(handle) -> list[str]:
    return sorted(n["outputs"]["result"] for name, n in nodes_named(handle).items() if name.startswith("days("))


def test_sequence_items_are_formatted_as_go_s_sprintf_formats_them(run):
    # Argo's own loops-sequence example: format "2020-05-%02X", here from 9 to 11.
    handle = run(SEQUENCE % '{start: "9", end: "11", format: "2020-05-%02X"}')
    assert handle.phase == "Succeeded", handle.status()["message"]
    assert results(handle) == ["2020-05-09", "2020-05-0A", "2020-05-0B"]


def test_an_end_below_the_start_counts_down(run):
    handle = run(SEQUENCE % '{start: "3", end: "1", format: "n%d"}')
    assert results(handle) == ["n1", "n2", "n3"]
    # children start in parallel, so their nodes may be listed in any order
    assert sorted(n for n in nodes_named(handle) if n.startswith("days(")) == ["days(0:n3)", "days(1:n2)", "days(2:n1)"]


@pytest.mark.parametrize("sequence, problem", [
    ('{count: "2", format: "%s"}', "withSequence.format: '%s' verb %s is not one of Go's integer verbs"),
    ('{count: "2", format: "day"}', "withSequence.format: 'day' holds 0 verbs"),
    ('{count: "2", format: "%d-%d"}', "withSequence.format: '%d-%d' holds 2 verbs"),
    ('{count: "2", end: "3"}', "withSequence: give exactly one of count or end"),
    ('{start: "2"}', "withSequence: give exactly one of count or end"),
])
def test_a_sequence_argo_would_refuse_or_misprint_is_refused_at_load(sequence, problem):
    with pytest.raises(TemplateRefused) as refused:
        load(SEQUENCE % sequence)
    assert any(problem in p for p in refused.value.problems), refused.value.problems


@pytest.mark.parametrize("form, number, printed", [
    ("%d", 7, "7"), ("%05d", -3, "-0003"), ("%x", 255, "ff"), ("%#x", 255, "0xff"), ("%#08x", 255, "0x000000ff"),
    ("%-4d|", 7, "7   |"), ("%+d", 3, "+3"), ("% d", 3, " 3"), ("%.3d", 5, "005"), ("%8.3d", -5, "    -005"),
    ("%o", 8, "10"), ("%#o", 8, "010"), ("%O", 8, "0o10"), ("%b", 5, "101"), ("%v%%", 9, "9%"), ("%5.0d", 0, "     "),
])
def test_integers_print_as_go_s_fmt_prints_them(form, number, printed):
    assert golang.sprintf(form, number) == printed


@pytest.mark.parametrize("text, seconds", [("3", 3), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), ("1.5s", 1.5)])
def test_durations_read_as_argo_reads_them(text, seconds):
    assert golang.seconds(text) == seconds


def test_backoff_waits_grow_by_the_factor_up_to_the_cap():
    waits = {"duration": "1s", "factor": 3, "cap": "5s"}
    assert [backoff(waits, attempt) for attempt in (1, 2, 3, 4)] == [1, 3, 5, 5]


def test_a_duration_go_cannot_read_is_refused_at_load():
    template = """
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: bad-backoff}
        spec:
          entrypoint: flaky
          templates:
          - name: flaky
            retryStrategy: {limit: 2, backoff: {duration: "1.5", cap: "soon"}}
            container: {image: alpine, command: [sh, -c, "exit 1"]}
        """
    with pytest.raises(TemplateRefused) as refused:
        load(template)
    assert [p.split(":")[0] for p in refused.value.problems] == [
        "spec.templates[0](flaky).retryStrategy.backoff.duration", "spec.templates[0](flaky).retryStrategy.backoff.cap"]


def test_the_cap_shortens_a_run_s_retries(run):
    # Without the cap the two waits would be 30 s and 60 s; capped, 0.2 s each.
    started = time.monotonic()
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: capped}
        spec:
          entrypoint: flaky
          templates:
          - name: flaky
            retryStrategy: {limit: 2, backoff: {duration: "30s", factor: 2, cap: "200ms"}}
            container: {image: alpine, command: [sh, -c, "exit 1"]}
        """)
    (node,) = handle.status()["nodes"].values()
    assert (handle.phase, node["attempts"]) == ("Failed", 3)
    assert time.monotonic() - started < 30


DAG_TARGETS = """
    apiVersion: argoproj.io/v1alpha1
    kind: WorkflowTemplate
    metadata: {name: dag-targets}
    spec:
      entrypoint: main
      arguments: {parameters: [{name: target, value: E}]}
      templates:
      - name: main
        dag:
          target: "%s"
          tasks:
          - {name: A, template: echo}
          - {name: B, template: echo, depends: A}
          - {name: C, template: %s, depends: A}
          - {name: D, template: echo, depends: B && C}
          - {name: E, template: echo, depends: C}
      - name: echo
        container: {image: alpine, command: [sh, -c, "echo ok"]}
      - name: fail
        container: {image: alpine, command: [sh, -c, "exit 1"]}
    """


@pytest.mark.parametrize("target, ran", [
    ("{{workflow.parameters.target}}", {"A", "C", "E"}),  # Argo's dag-targets example
    ("D", {"A", "B", "C", "D"}),
    ("B E", {"A", "B", "C", "E"}),
])
def test_a_dag_target_runs_only_the_targets_and_what_they_depend_on(run, target, ran):
    # dag.go executeDAG: targetTasks = strings.Split(tmpl.DAG.Target, " "), each executed with its
    # dependencies; the rest of the DAG makes no node at all.
    handle = run(DAG_TARGETS % (target, "echo"))
    assert handle.phase == "Succeeded", handle.status()["message"]
    assert {n for n in nodes_named(handle) if not n.startswith("dag-targets")} == ran


def test_a_dag_s_phase_is_its_targets_phase(run):
    # assessDAGPhase(targetTasks): the target E cannot run after C failed, so the DAG fails,
    # though B (no target needs it) would have succeeded; B never runs.
    handle = run(DAG_TARGETS % ("E", "fail"))
    nodes = nodes_named(handle)
    assert handle.phase == "Failed"
    assert nodes["C"]["phase"] == "Failed" and "B" not in nodes
    assert nodes.get("E", {"phase": "Omitted"})["phase"] == "Omitted"


def test_an_undefined_target_is_refused_at_load_and_at_run_time(run):
    with pytest.raises(TemplateRefused) as refused:
        load(DAG_TARGETS % ("E Z", "echo"))
    assert refused.value.problems == ["spec.templates[0](main).dag.target: target 'Z' is not defined"]
    handle = run(DAG_TARGETS % ("{{workflow.parameters.target}}", "echo"), target="Z")
    assert handle.phase in ("Error", "Failed") and "target 'Z' is not defined" in str(handle.status())


def test_a_failing_task_no_target_needs_never_runs(run):
    handle = run(DAG_TARGETS % ("B", "fail"))
    assert handle.phase == "Succeeded" and "C" not in nodes_named(handle)


EXIT_HANDLERS = """
    apiVersion: argoproj.io/v1alpha1
    kind: WorkflowTemplate
    metadata: {name: exit-handlers}
    spec:
      entrypoint: main
      onExit: exit-handler
      templates:
      - name: main
        container: {image: alpine, command: [sh, -c, "echo working; exit %s"]}
      - name: exit-handler
        steps:
        - - name: notify
            template: send-email
          - {name: celebrate, template: say, when: "{{workflow.status}} == Succeeded"}
          - {name: cry, template: %s, when: "{{workflow.status}} != Succeeded"}
      - name: send-email
        container:
          image: alpine
          command: [sh, -c, 'echo "$STATUS $DURATION $FAILURES"']
          env:
          - {name: STATUS, value: "{{workflow.status}}"}
          - {name: DURATION, value: "{{workflow.duration}}"}
          - {name: FAILURES, value: "{{workflow.failures}}"}
      - name: say
        container: {image: alpine, command: [sh, -c, "echo hooray"]}
      - name: fail
        container: {image: alpine, command: [sh, -c, "echo boohoo; exit 3"]}
    """


def test_the_exit_handler_runs_after_a_failure_and_sees_it(run):
    # Argo's exit-handlers example: workflow.status, workflow.failures (failedNodeStatus as JSON)
    # and workflow.duration (seconds, "%f") in the handler, which runs as <name>.onExit.
    handle = run(EXIT_HANDLERS % ("1", "say"))
    nodes = nodes_named(handle)
    assert (handle.phase, handle.status()["message"]) == ("Failed", nodes[handle.status()["name"]]["message"])
    status, duration, failures = nodes["notify"]["outputs"]["result"].split(" ", 2)
    assert status == "Failed" and float(duration) >= 0 and "." in duration
    (failure,) = json.loads(failures)
    assert (failure["displayName"], failure["phase"], failure["templateName"]) == (handle.status()["name"], "Failed", "main")
    assert (nodes["celebrate"]["phase"], nodes["cry"]["phase"]) == ("Skipped", "Succeeded")
    assert f"{handle.status()['name']}.onExit" in nodes


def test_a_failing_exit_handler_fails_a_run_that_had_succeeded(run):
    # operator.go: a succeeded workflow whose onExit node failed is marked Failed with its message.
    handle = run(EXIT_HANDLERS % ("0", "fail"))
    assert handle.phase == "Succeeded"  # status Succeeded: cry (the failing one) is skipped
    handle = run(EXIT_HANDLERS.replace('template: say, when: "{{workflow.status}} == Succeeded"',
                                       'template: fail, when: "{{workflow.status}} == Succeeded"') % ("0", "say"))
    assert handle.phase == "Failed" and "celebrate" in handle.status()["message"]


def test_exit_handler_variables_are_refused_outside_it_and_the_handler_must_exist():
    with pytest.raises(TemplateRefused) as refused:
        load(EXIT_HANDLERS.replace("onExit: exit-handler", "onExit: nowhere")
             .replace("echo working; exit %s", "echo {{workflow.status}}") % "say")
    assert refused.value.problems[:2] == ["spec.onExit: no template named 'nowhere'",
                                          "spec.templates[0](main): unknown variable {{workflow.status}}"]
    with pytest.raises(TemplateRefused) as refused:  # the entrypoint's side, with a real handler
        load(EXIT_HANDLERS.replace("echo working; exit %s", "echo {{workflow.failures}}") % "say")
    assert refused.value.problems == ["spec.templates[0](main): unknown variable {{workflow.failures}}"]


INLINE = """
    apiVersion: argoproj.io/v1alpha1
    kind: WorkflowTemplate
    metadata: {name: inline}
    spec:
      entrypoint: main
      templates:
      - name: main
        dag:
          tasks:
          - name: a
            inline:
              inputs: {parameters: [{name: word, value: hello}]}
              container: {image: alpine, command: [sh, -c, "echo {{inputs.parameters.word}}"]}
          - name: b
            depends: a
            arguments: {parameters: [{name: heard, value: "{{tasks.a.outputs.result}}"}]}
            inline:
              inputs: {parameters: [{name: heard}]}
              steps:
              - - name: c
                  arguments: {parameters: [{name: said, value: "{{inputs.parameters.heard}}"}]}
                  inline:
                    inputs: {parameters: [{name: said}]}
                    container: {image: alpine, command: [sh, -c, "echo got {{inputs.parameters.said}}"]}
    """


def test_inline_templates_run_in_dags_and_steps(run):
    # Argo's dag-inline and steps-inline examples: a task or step may carry its template inline.
    handle = run(INLINE)
    assert handle.phase == "Succeeded", handle.status()["message"]
    nodes = nodes_named(handle)
    assert nodes["a"]["outputs"]["result"] == "hello" and nodes["c"]["outputs"]["result"] == "got hello"


def test_an_inline_template_is_checked_like_any_other():
    with pytest.raises(TemplateRefused) as refused:
        load(INLINE.replace("echo got {{inputs.parameters.said}}", "echo {{inputs.parameters.nope}}")
             .replace("- name: a\n", "- name: a\n            template: main\n"))
    assert refused.value.problems == [
        "spec.templates[0](main).dag.tasks[0](a): needs exactly one of template, templateRef, inline "
        "(has ['template', 'inline'])",
        "spec.templates[0](main).dag.tasks[1](b).inline.steps[0][0](c).inline: unknown variable {{inputs.parameters.nope}}"]
