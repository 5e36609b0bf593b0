"""A local run's nodes linked as Argo links them (graph.py), so the run page draws the same graph
for both engines: steps groups in sequence, DAG dependencies, loops fanning out."""
import threading
import time

from tests.workflows.engine.conftest import nodes_named
from workflow_templates.engines import walk

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


def test_a_wide_dag_runs_its_tasks_on_a_bounded_number_of_threads(run, monkeypatch):
    # 20 independent tasks wait for a pool of 2 processes (the engine fixture's); with a bound of
    # 3 task threads per DAG the run adds a handful of threads, not one per task.
    monkeypatch.setattr(walk, "DAG_THREADS", 3)
    tasks = "\n".join(f"          - {{name: t{i}, template: ok}}" for i in range(20))
    before, peak, stop = threading.active_count(), [0], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], threading.active_count())
            time.sleep(0.01)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        handle = run(WIDE % tasks)
    finally:
        stop.set()
        sampler.join()
    assert handle.phase == "Succeeded"
    assert len([n for n in nodes_named(handle) if n.startswith("t")]) == 20
    assert peak[0] - before <= 10, peak[0] - before


WIDE = """
    apiVersion: argoproj.io/v1alpha1
    kind: WorkflowTemplate
    metadata: {name: wide}
    spec:
      entrypoint: main
      templates:
      - name: main
        dag:
          tasks:
%s
      - name: ok
        container: {image: alpine, command: [sh, -c, "sleep 0.1"]}
    """
