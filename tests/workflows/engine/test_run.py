"""Runs with real processes: steps, dag, parameters, loops, when, exit codes, artifacts."""
import json
import textwrap
from pathlib import Path

import pytest

from tests.workflows.engine.conftest import dag, nodes_named
from workflow_templates.engines.local import LocalEngine
from workflow_templates.engines.scope import node_scope

STAMP = """
  - name: stamp
    inputs: {parameters: [{name: label}, {name: dir}, {name: sleep, default: "0.4"}]}
    script:
      image: python:3.11
      command: [python]
      source: |
        import time
        start = time.time()
        time.sleep({{inputs.parameters.sleep}})
        with open("{{inputs.parameters.dir}}/{{inputs.parameters.label}}", "w") as out:
            out.write(f"{start} {time.time()}")
"""
STAMP = textwrap.indent(textwrap.dedent(STAMP), " " * 10)  # a template of the runs below


def spans(shared: Path) -> dict:
    return {p.name: tuple(map(float, p.read_text().split())) for p in shared.iterdir()}


def test_steps_run_groups_in_order_and_steps_of_a_group_in_parallel(run, shared):
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: order}
        spec:
          entrypoint: main
          arguments: {parameters: [{name: dir}]}
          templates:
          - name: main
            steps:
            - - {name: a, template: stamp, arguments: {parameters: [{name: label, value: a}, {name: dir, value: "{{workflow.parameters.dir}}"}]}}
              - {name: b, template: stamp, arguments: {parameters: [{name: label, value: b}, {name: dir, value: "{{workflow.parameters.dir}}"}]}}
            - - {name: c, template: stamp, arguments: {parameters: [{name: label, value: c}, {name: dir, value: "{{workflow.parameters.dir}}"}, {name: sleep, value: "0"}]}}
        """ + STAMP, dir=str(shared))
    assert handle.phase == "Succeeded", handle.status()["message"]
    t = spans(shared)
    assert t["a"][0] < t["b"][1] and t["b"][0] < t["a"][1], "a and b did not overlap"
    assert t["c"][0] >= max(t["a"][1], t["b"][1])


def test_dag_runs_tasks_after_their_dependencies_and_passes_outputs(run, shared):
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: diamond}
        spec:
          entrypoint: main
          templates:
          - name: main
            dag:
              tasks:
              - {name: A, template: emit, arguments: {parameters: [{name: v, value: "1"}]}}
              - {name: B, template: emit, dependencies: [A], arguments: {parameters: [{name: v, value: "{{tasks.A.outputs.parameters.out}}2"}]}}
              - {name: C, template: emit, dependencies: [A], arguments: {parameters: [{name: v, value: "{{tasks.A.outputs.result}}3"}]}}
              - {name: D, template: emit, dependencies: [B, C], arguments: {parameters: [{name: v, value: "{{tasks.B.outputs.parameters.out}}+{{tasks.C.outputs.parameters.out}}"}]}}
            outputs:
              parameters:
              - {name: final, globalName: final, valueFrom: {parameter: "{{tasks.D.outputs.parameters.out}}"}}
          - name: emit
            inputs: {parameters: [{name: v}]}
            container:
              image: alpine
              command: [sh, -c, 'printf "%s" "{{inputs.parameters.v}}" > /tmp/out; echo "{{inputs.parameters.v}}"']
            outputs: {parameters: [{name: out, valueFrom: {path: /tmp/out}}]}
        """)
    assert handle.phase == "Succeeded", handle.status()["message"]
    nodes = nodes_named(handle)
    assert nodes["D"]["outputs"]["parameters"]["out"] == "12+13"
    assert nodes["D"]["started_at"] >= nodes["B"]["finished_at"]
    assert handle.outputs == {"final": "12+13"}


def test_parameters_defaults_value_from_path_default_and_workflow_arguments(run):
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: params}
        spec:
          entrypoint: main
          arguments: {parameters: [{name: greeting, value: hello}, {name: who, value: world}]}
          templates:
          - name: main
            inputs: {parameters: [{name: greeting}]}
            steps:
            - - {name: say, template: say, arguments: {parameters: [{name: text, value: "{{inputs.parameters.greeting}} {{workflow.parameters.who}}"}]}}
          - name: say
            inputs: {parameters: [{name: text}, {name: suffix, default: "!"}, {name: again, default: " {{workflow.parameters.who}}"}]}
            container:
              image: alpine
              command: [python, -c]
              args: ["import sys; open('/tmp/said', 'w').write(sys.argv[1] + chr(10))", "{{inputs.parameters.text}}{{inputs.parameters.suffix}}{{inputs.parameters.again}}"]
            outputs:
              parameters:
              - {name: said, valueFrom: {path: /tmp/said}}
              - {name: missing, valueFrom: {path: /tmp/none, default: fallback}}
        """, who="lab")
    assert handle.phase == "Succeeded", handle.status()["message"]
    outputs = nodes_named(handle)["say"]["outputs"]["parameters"]
    assert outputs == {"said": "hello lab! lab", "missing": "fallback"}


def test_with_items_and_with_param_fan_out_over_objects_and_aggregate(run):
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: loops}
        spec:
          entrypoint: main
          templates:
          - name: main
            steps:
            - - name: gen
                template: gen
            - - name: each
                template: show
                withParam: "{{steps.gen.outputs.result}}"
                arguments: {parameters: [{name: text, value: "{{item.name}}={{item.size}}"}]}
              - name: fixed
                template: show
                withItems: [{name: x, size: 1}, plain]
                arguments: {parameters: [{name: text, value: "{{item}}"}]}
              - name: numbered
                template: show
                withSequence: {count: "3", start: "5"}
                arguments: {parameters: [{name: text, value: "{{item}}"}]}
          - name: gen
            script:
              image: python:3.11
              command: [python]
              source: |
                import json, sys
                json.dump([{"name": "s1", "size": 10}, {"name": "s2", "size": 20}], sys.stdout)
          - name: show
            inputs: {parameters: [{name: text}]}
            container: {image: alpine, command: [echo, "{{inputs.parameters.text}}"]}
        """)
    assert handle.phase == "Succeeded", handle.status()["message"]
    nodes = nodes_named(handle)
    assert json.loads(nodes["each"]["outputs"]["result"]) == ["s1=10", "s2=20"]
    assert nodes["fixed(0:name:x,size:1)"]["outputs"]["result"] == '{"name":"x","size":1}'
    assert nodes["fixed(1:plain)"]["outputs"]["result"] == "plain"
    assert json.loads(nodes["numbered"]["outputs"]["result"]) == [5, 6, 7]
    loop = node_scope("steps", "each", nodes["each"])
    assert json.loads(loop["steps.each.outputs.result"]) == ["s1=10", "s2=20"]


def test_when_runs_or_skips_a_step(run):
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: coin}
        spec:
          entrypoint: main
          templates:
          - name: main
            steps:
            - - {name: flip, template: heads}
            - - {name: on-heads, template: echo, when: "{{steps.flip.outputs.result}} == heads"}
              - {name: on-tails, template: echo, when: "{{steps.flip.outputs.result}} == tails"}
              - {name: big, template: echo, when: "({{steps.flip.exitCode}} == 0) && 10 > 9"}
          - name: heads
            container: {image: alpine, command: [echo, heads]}
          - name: echo
            container: {image: alpine, command: [echo, ran]}
        """)
    assert handle.phase == "Succeeded", handle.status()["message"]
    nodes = nodes_named(handle)
    assert nodes["on-heads"]["phase"] == "Succeeded"
    assert nodes["big"]["phase"] == "Succeeded"
    assert nodes["on-tails"]["phase"] == "Skipped"
    assert "evaluated false" in nodes["on-tails"]["message"]


def test_non_zero_exit_fails_the_run_and_keeps_the_log(run):
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: fails}
        spec:
          entrypoint: main
          templates:
          - name: main
            steps:
            - - {name: boom, template: boom}
            - - {name: never, template: boom}
          - name: boom
            container: {image: alpine, command: [sh, -c, "echo to-stdout; echo to-stderr >&2; exit 3"]}
        """)
    assert handle.phase == "Failed"
    nodes = nodes_named(handle)
    assert nodes["boom"]["phase"] == "Failed" and nodes["boom"]["exit_code"] == 3
    assert nodes["boom"]["message"] == "Error (exit code 3)"
    log = handle.log(nodes["boom"]["id"])
    assert "to-stdout" in log and "to-stderr" in log
    assert "never" not in nodes


def test_depends_runs_the_failure_branch_and_continue_on_keeps_going(run):
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: branches}
        spec:
          entrypoint: main
          templates:
          - name: main
            steps:
            - - {name: by-depends, template: by-depends}
              - {name: by-continue-on, template: by-continue-on}
          - name: by-depends
            dag:
              tasks:
              - {name: A, template: fail}
              - {name: on-fail, template: ok, depends: "A.Failed"}
              - {name: on-ok, template: ok, depends: "A.Succeeded"}
          - name: by-continue-on
            dag:
              tasks:
              - {name: soft, template: fail, continueOn: {failed: true}}
              - {name: after-soft, template: ok, dependencies: [soft]}
          - name: fail
            container: {image: alpine, command: [sh, -c, "exit 1"]}
          - name: ok
            container: {image: alpine, command: ["true"]}
        """)
    nodes = nodes_named(handle)
    assert nodes["on-fail"]["phase"] == "Succeeded"
    assert nodes["on-ok"]["phase"] == "Omitted"
    assert nodes["after-soft"]["phase"] == "Succeeded"
    assert nodes["by-continue-on"]["phase"] == "Succeeded", handle.status()["message"]
    # dag.go assessDAGPhase: the omitted leaf on-ok inherits A's failure, so that DAG fails
    assert nodes["by-depends"]["phase"] == "Failed"


@pytest.mark.parametrize("fail_fast", [True, False])
def test_a_dag_failure_does_not_stop_tasks_whose_dependencies_hold(run, fail_fast):
    # dag.go executeDAGTask starts every task whose dependencies hold, whatever failed elsewhere;
    # dag.failFast only orders assessDAGPhase, which fails the DAG once all is done.
    handle = run(dag("{name: A, template: fail}", "{name: B, template: slow}",
                     "{name: C, template: slow, dependencies: [B]}", fail_fast=fail_fast))
    nodes = nodes_named(handle)
    assert handle.phase == "Failed"
    assert (nodes["B"]["phase"], nodes["C"]["phase"]) == ("Succeeded", "Succeeded")


def test_artifacts_pass_through_the_storage_root(run, engine):
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: artifacts}
        spec:
          entrypoint: main
          arguments: {parameters: [{name: id, value: r1}]}
          templates:
          - name: main
            steps:
            - - {name: make, template: make}
            - - name: use
                template: use
                arguments: {artifacts: [{name: data, from: "{{steps.make.outputs.artifacts.report}}"}]}
              - name: keyed
                template: use
                arguments: {artifacts: [{name: data, s3: {key: "reports/{{workflow.parameters.id}}.txt"}}]}
          - name: make
            container: {image: alpine, command: [sh, -c, "echo payload > /tmp/report.txt"]}
            outputs:
              artifacts:
              - {name: report, path: /tmp/report.txt}
              - {name: keyed, path: /tmp/report.txt, s3: {key: "reports/{{workflow.parameters.id}}.txt"}}
          - name: use
            inputs: {artifacts: [{name: data, path: /tmp/in/data.txt}]}
            container: {image: alpine, command: [cat, /tmp/in/data.txt]}
        """)
    assert handle.phase == "Succeeded", handle.status()["message"]
    nodes = nodes_named(handle)
    key = nodes["make"]["outputs"]["artifacts"]["report"]
    assert (engine.storage_root / key).read_text() == "payload\n"
    assert nodes["use"]["outputs"]["result"] == "payload"
    assert (engine.storage_root / "reports/r1.txt").read_text() == "payload\n"
    assert nodes["keyed"]["outputs"]["result"] == "payload"


def test_unknown_workflow_parameter_ends_the_run_in_error(run):
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: p}
        spec:
          entrypoint: main
          templates:
          - name: main
            container: {image: alpine, command: ["true"]}
        """, typo="1")
    assert handle.phase == "Error" and "typo" in handle.status()["message"]


def test_recursion_that_never_ends_is_stopped_with_an_error(run):
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: forever}
        spec:
          entrypoint: main
          templates:
          - name: main
            steps:
            - - {name: again, template: main}
        """)
    assert handle.phase == "Failed"
    errors = [n for n in handle.status()["nodes"].values() if n["phase"] == "Error"]
    assert errors and "nested deeper than" in errors[0]["message"]


def test_fan_in_reads_a_loop_s_outputs_as_json_lists(run):
    handle = run("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: fan-in}
        spec:
          entrypoint: main
          templates:
          - name: main
            steps:
            - - {name: write, template: write, withItems: [20, 21], arguments: {parameters: [{name: n, value: "{{item}}"}]}}
            - - name: gather
                template: show
                arguments:
                  parameters:
                  - {name: text, value: "{{steps.write.outputs.parameters.number}} {{steps.write.outputs.parameters}}"}
          - name: write
            inputs: {parameters: [{name: n}]}
            container: {image: alpine, command: [sh, -c, "printf %s {{inputs.parameters.n}} > /tmp/n"]}
            outputs: {parameters: [{name: number, valueFrom: {path: /tmp/n}}]}
          - name: show
            inputs: {parameters: [{name: text}]}
            container: {image: alpine, command: [echo, "{{inputs.parameters.text}}"]}
        """)
    assert handle.phase == "Succeeded", handle.status()["message"]
    lists, maps = nodes_named(handle)["gather"]["outputs"]["result"].split(" ", 1)
    assert json.loads(lists) == ["20", "21"]
    assert json.loads(maps) == [{"number": "20"}, {"number": "21"}]


def test_progress_is_reported_node_by_node_then_for_the_run(tmp_path):
    seen = []
    engine = LocalEngine(tmp_path / "s", tmp_path / "r",
                         on_progress=lambda run_id, node: seen.append((run_id, node["id"],
                                                                       node["phase"])))
    handle = engine.start(textwrap.dedent("""
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: progress}
        spec:
          entrypoint: main
          templates:
          - name: main
            container: {image: alpine, command: ["true"]}
        """), run_id="p1")
    assert handle.wait(30) == "Succeeded"
    root = handle.status()["root"]
    assert ("p1", root, "Running") in seen and ("p1", root, "Succeeded") in seen
    assert seen[-1] == ("p1", None, "Succeeded")
