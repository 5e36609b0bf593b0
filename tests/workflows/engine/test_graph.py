"""A local run's nodes linked as Argo links them (graph.py), so the run page draws the same graph
for both engines: steps groups in sequence, DAG dependencies, loops fanning out."""
from tests.workflows.engine.conftest import nodes_named

TEMPLATE = """
    apiVersion: argoproj.io/v1alpha1
    kind: WorkflowTemplate
    metadata: {name: shapes}
    spec:
      entrypoint: main
      templates:
      - name: main
        steps:
        - - {name: a, template: ok}
        - - {name: b, template: ok}
          - {name: fan, template: ok, withItems: [1, 2]}
        - - {name: diamond, template: diamond}
      - name: diamond
        dag:
          tasks:
          - {name: A, template: ok}
          - {name: B, template: ok, depends: A}
          - {name: C, template: ok, depends: A}
          - {name: D, template: ok, depends: B && C}
      - name: ok
        container: {image: alpine, command: [sh, -c, "exit 0"]}
    """


def test_children_are_what_runs_next_as_in_argo_s_status(run):
    handle = run(TEMPLATE)
    assert handle.phase == "Succeeded", handle.status()["message"]
    nodes = nodes_named(handle)
    ids = {name: node["id"] for name, node in nodes.items()}
    named = {node["id"]: name for name, node in nodes.items()}
    children = {name: sorted(named[c] for c in node["children"]) for name, node in nodes.items()}
    root = handle.status()["name"]
    assert children[root] == ["[0]"] and children["a"] == ["[1]"]
    assert children["b"] == ["[2]"] and children["fan"] == ["fan(0:1)", "fan(1:2)"]
    assert children["fan(0:1)"] == children["fan(1:2)"] == ["[2]"]  # a loop's items are its outbound nodes
    assert children["diamond"] == ["A"] and children["A"] == ["B", "C"]
    assert children["B"] == children["C"] == ["D"] and children["D"] == []
    assert nodes["B"]["parent"] == ids["diamond"]  # the caller is kept apart from the graph
