"""Issue 14's divergences from Argo, each checked against Argo's documented behaviour or its
controller source (argoproj/argo-workflows: workflow/controller/, workflow/executor/)."""
import time

import pytest

from tests.workflows.engine.conftest import dag, nodes_named


def test_script_is_executable_and_appended_after_args(run):
    # executor.go StageFiles writes the source 0755; operator.go executeScript appends its path
    # to the container's args, so argv is `command args... FILE`.
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: script-argv}
        spec:
          entrypoint: main
          templates:
          - name: main
            steps:
            - - {name: shell, template: shell}
              - {name: order, template: order}
          - name: shell
            script:
              image: alpine
              command: [sh, -c]
              source: |
                #!/bin/sh
                echo ran as an executable
          - name: order
            script:
              image: alpine
              command: [sh, -c]
              args: ['echo "file=$0"']
              source: |
                echo the file is an argument here, not run
        """)
    assert handle.phase == "Succeeded", handle.status()["message"]
    nodes = nodes_named(handle)
    assert nodes["shell"]["outputs"]["result"] == "ran as an executable"
    assert nodes["order"]["outputs"]["result"].startswith("file=/")


def test_an_empty_fan_out_is_skipped_and_the_run_carries_on(run):
    # steps.go expandStepGroup / dag.go: an expansion to no items makes one Skipped node,
    # "Skipped, empty params"; expandSequence gives no items for count 0.
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: empty-loops}
        spec:
          entrypoint: main
          templates:
          - name: main
            steps:
            - - {name: none, template: say, withParam: "[]"}
              - {name: zero, template: say, withSequence: {count: "0"}}
            - - {name: after, template: say}
          - name: say
            container: {image: alpine, command: [sh, -c, "echo {{workflow.name}}"]}
        """)
    assert handle.phase == "Succeeded", handle.status()["message"]
    nodes = nodes_named(handle)
    for name in ("none", "zero"):
        assert (nodes[name]["phase"], nodes[name]["message"]) == ("Skipped", "Skipped, empty params")
    assert not [n for n in nodes if n.startswith(("none(", "zero("))]
    assert nodes["after"]["phase"] == "Succeeded"



def test_a_leaf_omitted_after_a_failure_fails_the_dag(run):
    # dag.go assessDAGPhase: an omitted target task inherits its branch's phase, Failed before
    # Succeeded, so C (omitted because A failed) fails the DAG although B handled A's failure.
    handle = run(dag("{name: A, template: fail}",
                     "{name: B, template: ok, depends: A.Failed}",
                     "{name: C, template: ok, depends: A}"))
    nodes = nodes_named(handle)
    assert (nodes["B"]["phase"], nodes["C"]["phase"]) == ("Succeeded", "Omitted")
    assert handle.phase == "Failed"


def test_a_failure_handled_by_the_only_leaf_lets_the_dag_succeed(run):
    handle = run(dag("{name: A, template: fail}",
                     "{name: B, template: ok, depends: A.Failed}"))
    assert handle.phase == "Succeeded", handle.status()["message"]


def test_depends_names_a_task_whole_never_by_substring(run):
    # BC.Failed is BC's result, not C's: C failing leaves D Omitted (BC succeeded); the DAG fails
    # on its leaf C, and E, whose dependency S holds, still runs (dag.go executeDAGTask).
    handle = run(dag("{name: C, template: fail}",
                     "{name: BC, template: ok}",
                     "{name: D, template: ok, depends: BC.Failed}",
                     "{name: S, template: slow}",
                     "{name: E, template: ok, depends: S}", fail_fast=True))
    nodes = nodes_named(handle)
    assert handle.phase == "Failed"
    assert (nodes["D"]["phase"], nodes["E"]["phase"]) == ("Omitted", "Succeeded")


def test_backoff_max_duration_bounds_all_attempts_not_each_delay(run):
    # operator.go processNodeRetries: the deadline is the first attempt's start + maxDuration;
    # a retry whose backoff would end after it is not made. Delays 1 s then 2 s: the second
    # retry would start about 3 s after the first attempt, beyond 2 s, so there are 2 attempts.
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: max-duration}
        spec:
          entrypoint: flaky
          templates:
          - name: flaky
            retryStrategy:
              limit: 10
              backoff: {duration: "1", factor: 2, maxDuration: "2s"}
            container: {image: alpine, command: [sh, -c, "exit 1"]}
        """)
    (node,) = handle.status()["nodes"].values()
    assert handle.phase == "Failed"
    assert node["attempts"] == 2
    assert node["message"] == "Backoff would exceed max duration limit"


def test_a_loop_s_json_object_parameters_aggregate_as_json(run):
    # operator.go (argo-workflows PR 13513, v3.6): a parameter aggregated over a loop is a list
    # of JSON values when every child's value is a JSON object or list, else of strings.
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: aggregate}
        spec:
          entrypoint: main
          templates:
          - name: main
            steps:
            - - {name: gen, template: gen, withItems: [1, 2], arguments: {parameters: [{name: i, value: "{{item}}"}]}}
            - - name: show
                template: show
                arguments: {parameters: [{name: objects, value: "{{steps.gen.outputs.parameters.object}}"},
                                         {name: numbers, value: "{{steps.gen.outputs.parameters.number}}"}]}
          - name: gen
            inputs: {parameters: [{name: i}]}
            container:
              image: alpine
              command: [sh, -c, 'printf "{\\"b\\": {{inputs.parameters.i}}}" > /tmp/o; printf {{inputs.parameters.i}} > /tmp/n']
            outputs: {parameters: [{name: object, valueFrom: {path: /tmp/o}}, {name: number, valueFrom: {path: /tmp/n}}]}
          - name: show
            inputs: {parameters: [{name: objects}, {name: numbers}]}
            container: {image: alpine, command: [sh, -c, "echo '{{inputs.parameters.objects}} {{inputs.parameters.numbers}}'"]}
        """)
    assert handle.phase == "Succeeded", handle.status()["message"]
    assert nodes_named(handle)["show"]["outputs"]["result"] == '[{"b":1},{"b":2}] ["1","2"]'


def test_a_skipped_producer_passes_on_its_output_default(run):
    # argo-workflows PR 16223 (TestDAGSkippedOutputDefault and its steps twin): a task skipped by
    # `when` gives a reader of its output parameter the producer's valueFrom.default.
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: skipped-default}
        spec:
          entrypoint: main
          templates:
          - name: main
            dag:
              tasks:
              - {name: producer, template: produce, when: "1 == 2"}
              - {name: consumer, template: show, depends: producer,
                 arguments: {parameters: [{name: in, value: "{{tasks.producer.outputs.parameters.out}}"}]}}
          - name: produce
            container: {image: alpine, command: [sh, -c, "echo made > /tmp/out"]}
            outputs: {parameters: [{name: out, valueFrom: {path: /tmp/out, default: fallback}}]}
          - name: show
            inputs: {parameters: [{name: in}]}
            container: {image: alpine, command: [echo, "{{inputs.parameters.in}}"]}
        """)
    assert handle.phase == "Succeeded", handle.status()["message"]
    nodes = nodes_named(handle)
    assert nodes["producer"]["phase"] == "Skipped"
    assert nodes["consumer"]["outputs"]["result"] == "fallback"


def test_each_step_records_the_image_the_host_s_tools_stood_in_for(run):
    # the local engine runs no images: the node says which one it replaced, for the run page
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: images}
        spec:
          entrypoint: main
          templates:
          - name: main
            container: {image: "python:3.12-slim", command: [sh, -c, "true"]}
        """)
    (node,) = handle.status()["nodes"].values()
    assert node["replaced_image"] == "python:3.12-slim"


@pytest.mark.parametrize("fail_fast", [True, False])
def test_which_failure_fails_the_dag_does_not_depend_on_timing(run, fail_fast):
    # dag.go findLeafTaskNames / assessDAGPhase sort the target tasks ("for deterministic phase
    # assignment"): of two failed leaves the first by name is reported, not the first to end.
    handle = run(dag("{name: Z, template: fail}", "{name: A, template: late-fail}",
                     fail_fast=fail_fast))
    assert handle.phase == "Failed"
    assert handle.status()["message"].endswith(".A' failed"), handle.status()["message"]


def test_a_retry_is_cut_at_the_max_duration_deadline(run, shared):
    # operator.go processNodeRetries: opts.executionDeadline = maxDurationDeadline for the retry,
    # so a retry that hangs is stopped there (attempt 1 fails at once, attempt 2 would hang 20 s).
    started = time.monotonic()
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: cut}
        spec:
          entrypoint: flaky
          arguments: {parameters: [{name: dir}]}
          templates:
          - name: flaky
            retryStrategy:
              limit: 3
              backoff: {duration: "1", maxDuration: "2"}
            container:
              image: alpine
              command: [sh, -c, 'if [ -e {{workflow.parameters.dir}}/once ]; then sleep 20; fi; touch {{workflow.parameters.dir}}/once; exit 1']
        """, dir=str(shared))
    (node,) = handle.status()["nodes"].values()
    assert handle.phase == "Failed" and node["attempts"] == 2
    assert time.monotonic() - started < 10
    assert node["message"] == "Max duration limit exceeded"


def test_a_retry_strategy_without_a_limit_retries_until_the_step_succeeds(run, shared):
    # operator.go processNodeRetries counts attempts only when Limit is set (`retryStrategy: {}`
    # is Argo's "retry to completion"); here the step fails twice, then succeeds.
    handle = run(f"""
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata: {{generateName: to-completion-}}
        spec:
          entrypoint: flaky
          templates:
          - name: flaky
            retryStrategy: {{}}
            container:
              image: alpine
              command: [sh, -c, "echo x >> {shared}/tries; [ $(wc -l < {shared}/tries) -ge 3 ]"]
        """)
    assert handle.phase == "Succeeded", handle.status()["message"]
    (node,) = handle.status()["nodes"].values()
    assert node["attempts"] == 3


def test_exit_code_and_workflow_name_read_as_argo_sets_them(run):
    # Outputs.exitCode is the step's exit code (steps.X.outputs.exitCode, as steps.X.exitCode);
    # a Workflow named by generateName is called generateName + a suffix.
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata: {generateName: exit-codes-}
        spec:
          entrypoint: main
          templates:
          - name: main
            steps:
            - - {name: fails, template: fails, continueOn: {failed: true}}
            - - name: report
                template: report
                arguments: {parameters: [{name: code, value: "{{steps.fails.outputs.exitCode}}"}]}
          - name: fails
            container: {image: alpine, command: [sh, -c, "exit 3"]}
          - name: report
            inputs: {parameters: [{name: code}]}
            container: {image: alpine, command: [sh, -c, "echo {{inputs.parameters.code}} {{workflow.name}}"]}
        """)
    assert handle.phase == "Succeeded", handle.status()["message"]
    code, name = nodes_named(handle)["report"]["outputs"]["result"].split()
    assert code == "3" and name.startswith("exit-codes-")


def test_parallelism_counts_a_templates_children_not_what_they_run(run, shared):
    # operator.go checkParallelism: an outer steps template with parallelism 1 runs one inner
    # template at a time, while each inner one runs its two steps together.
    handle = run(f"""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {{name: nested-parallelism}}
        spec:
          entrypoint: outer
          templates:
          - name: outer
            parallelism: 1
            steps:
            - - {{name: inner, template: inner, withItems: [a, b],
                 arguments: {{parameters: [{{name: group, value: "{{{{item}}}}"}}]}}}}
          - name: inner
            inputs: {{parameters: [{{name: group}}]}}
            steps:
            - - {{name: one, template: stamp, arguments: {{parameters: [{{name: label, value: "{{{{inputs.parameters.group}}}}1"}}]}}}}
              - {{name: two, template: stamp, arguments: {{parameters: [{{name: label, value: "{{{{inputs.parameters.group}}}}2"}}]}}}}
          - name: stamp
            inputs: {{parameters: [{{name: label}}]}}
            container:
              image: alpine
              command: [sh, -c, 'from=$(date +%s.%N); sleep 0.5; echo "$from $(date +%s.%N)" > {shared}/{{{{inputs.parameters.label}}}}']
        """)
    assert handle.phase == "Succeeded", handle.status()["message"]
    spans = {p.name: tuple(map(float, p.read_text().split())) for p in shared.iterdir()}
    overlap = lambda x, y: x[0] < y[1] and y[0] < x[1]  # noqa: E731
    assert overlap(spans["a1"], spans["a2"]) and overlap(spans["b1"], spans["b2"])
    assert not any(overlap(spans[f"a{i}"], spans[f"b{j}"]) for i in (1, 2) for j in (1, 2))


def test_a_steps_output_can_be_an_expression_over_the_steps_that_ran(run):
    # valueFrom.expression (Argo v3.1+, examples/conditional-parameters.yaml): evaluated after the
    # children, so a ternary picks the output of whichever conditional step ran.
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: conditional-output}
        spec:
          entrypoint: main
          templates:
          - name: main
            steps:
            - - {name: flip, template: say, arguments: {parameters: [{name: word, value: tails}]}}
            - - {name: heads, template: say, when: "{{steps.flip.outputs.result}} == heads",
                 arguments: {parameters: [{name: word, value: H}]}}
              - {name: tails, template: say, when: "{{steps.flip.outputs.result}} == tails",
                 arguments: {parameters: [{name: word, value: T}]}}
            outputs:
              parameters:
              - name: picked
                valueFrom:
                  expression: "steps.flip.outputs.result == 'heads' ? steps.heads.outputs.result : steps.tails.outputs.result"
          - name: say
            inputs: {parameters: [{name: word}]}
            container: {image: alpine, command: [echo, "{{inputs.parameters.word}}"]}
        """)
    assert handle.phase == "Succeeded", handle.status()["message"]
    (root,) = [n for n in handle.status()["nodes"].values() if n["type"] == "Steps"]
    assert root["outputs"]["parameters"] == {"picked": "T"}
