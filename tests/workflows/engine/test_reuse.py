"""Step reuse on the local engine (engines/reuse.py): hits and misses of the content key, what a
step wrote and how it is copied into the next run, and Argo's memoize (key, maxAge) on the same
cache. The cache here is a list; the worker's is the metadata service (tests/workflows/runs/
test_reuse_runs.py, where grants and failed runs are tested)."""
from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from ground.storage import project_dir, run_dir
from workflow_templates.engines.local import LocalEngine
from workflow_templates.engines.spec import TemplateRefused, load

# make: copies the input (and its tag) into OUT/make/data.txt, its output parameter the path;
# use: reads it, writes OUT/use/result.txt with the threshold.
PIPELINE = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: pipeline}
spec:
  entrypoint: main
  arguments:
    parameters: [{name: input}, {name: out}, {name: tag, value: a}, {name: threshold, value: "1"}]
  templates:
  - name: main
    dag:
      tasks:
      - name: make
        template: make
        arguments: {parameters: [{name: out-dir, value: "{{workflow.parameters.out}}/make"}]}
      - name: use
        template: use
        dependencies: [make]
        arguments: {parameters: [{name: data, value: "{{tasks.make.outputs.parameters.data}}"}]}
  - name: make
    inputs: {parameters: [{name: out-dir}]}
    container:
      image: alpine
      command: [sh, -c, 'mkdir -p "$0" && { cat "$1"; echo "$2"; } > "$0/data.txt.part" && mv "$0/data.txt.part" "$0/data.txt" && printf %s "$0/data.txt" > "$0/path"']
      args: ["{{inputs.parameters.out-dir}}", "{{workflow.parameters.input}}", "{{workflow.parameters.tag}}"]
    outputs:
      parameters: [{name: data, valueFrom: {path: "{{inputs.parameters.out-dir}}/path"}}]
  - name: use
    inputs: {parameters: [{name: data}]}
    container:
      image: alpine
      command: [sh, -c, 'mkdir -p "$0/use" && { cat "$1"; echo "threshold $2"; } > "$0/use/result.txt"']
      args: ["{{workflow.parameters.out}}", "{{inputs.parameters.data}}", "{{workflow.parameters.threshold}}"]
"""


class Records:
    """The step cache as a list, newest last."""

    def __init__(self):
        self.kept: list[dict] = []

    def find(self, run_id, key, max_age):
        return [r for r in reversed(self.kept) if r["key"] == key and r["run_id"] != run_id
                and (max_age is None or time.time() - r["at"] <= max_age)]

    def record(self, run_id, record):
        self.kept.append(dict(record, run_id=run_id, at=time.time()))


@pytest.fixture
def records():
    return Records()


@pytest.fixture
def engine(tmp_path, records) -> LocalEngine:
    return LocalEngine(tmp_path / "storage", tmp_path / "runs", max_parallel=2, cache=records)


@pytest.fixture
def source(engine) -> Path:
    path = project_dir(engine.storage_root, "p") / "data" / "in.txt"
    path.parent.mkdir(parents=True)
    path.write_text("spectra\n")
    return path


def launch(engine, run_id: str, template: str = PIPELINE, reuse: bool = True, **parameters):
    """A run of project p as the worker starts one: its output folder in the run's folder."""
    out = run_dir(engine.storage_root, "p", run_id) / "outputs"
    out.mkdir(parents=True)
    handle = engine.start(textwrap.dedent(template), {"out": str(out), **parameters}, run_id=run_id, project="p",
                          sees={"read": [project_dir(engine.storage_root, "p")], "write": [out]}, reuse=reuse)
    assert handle.wait(60) == "Succeeded", handle.status()["message"]
    return {n["name"]: n for n in handle.status()["nodes"].values()}, out


def test_a_step_with_the_same_key_reuses_the_earlier_outputs_and_the_next_step_runs(engine, source):
    first, _ = launch(engine, "r1", input=str(source), threshold="1")
    second, out = launch(engine, "r2", input=str(source), threshold="2")
    assert first["make"]["attempts"] == 1 and "reused_from" not in first["make"]
    assert second["make"]["reused_from"] == {"run": "r1", "step": "make", "node": first["make"]["id"]}
    assert second["make"]["attempts"] == 0
    # the files it wrote are in this run's folder, its output parameter points there
    assert second["make"]["outputs"]["parameters"]["data"] == str(out / "make" / "data.txt")
    assert (out / "make" / "path").read_text() == str(out / "make" / "data.txt")   # a path rewritten inside
    assert (out / "use" / "result.txt").read_text() == "spectra\na\nthreshold 2\n"
    assert second["use"]["attempts"] == 1


@pytest.mark.parametrize("change", ["parameter", "input file", "output deleted", "reuse off"])
def test_a_step_runs_again_when_its_key_or_its_files_changed(engine, records, source, change):
    launch(engine, "r1", input=str(source))
    parameters = {"input": str(source)}
    if change == "parameter":
        parameters["tag"] = "b"
    elif change == "input file":
        source.write_text("other spectra\n")
    elif change == "output deleted":   # as the lifecycle janitor deletes intermediates
        (run_dir(engine.storage_root, "p", "r1") / "outputs" / "make" / "data.txt").unlink()
    second, out = launch(engine, "r2", reuse=change != "reuse off", **parameters)
    assert "reused_from" not in second["make"] and second["make"]["attempts"] == 1
    assert (out / "make" / "data.txt").exists()
    if change in ("parameter", "input file"):   # `use` is the same command, but what it reads is not
        assert "reused_from" not in second["use"]
    if change == "reuse off":   # still recorded, for runs that reuse
        assert [r["run_id"] for r in records.kept if r["step"] == "make"] == ["r1", "r2"]


def test_a_fan_out_into_one_directory_records_each_step_with_its_own_file_and_reuses_them_all(
        engine, records, source):
    fan = textwrap.dedent("""
    apiVersion: argoproj.io/v1alpha1
    kind: WorkflowTemplate
    metadata: {name: fan}
    spec:
      entrypoint: main
      arguments: {parameters: [{name: out}, {name: input}]}
      templates:
      - name: main
        steps:
        - - name: each
            template: one
            withItems: [a, b, c, d, e]
            arguments: {parameters: [{name: i, value: "{{item}}"}]}
      - name: one
        inputs: {parameters: [{name: i}]}
        container:
          image: alpine
          command: [sh, -c, 'mkdir -p "$0" && sleep 0.$(od -An -N1 -tu1 /dev/urandom | tr -d " ") && echo "$1" > "$0/$1.part" && mv "$0/$1.part" "$0/$1.json"']
          args: ["{{workflow.parameters.out}}/shards", "{{inputs.parameters.i}}"]
    """)
    launch(engine, "r1", template=fan, input=str(source))
    for record in records.kept:   # its own file, maybe a sibling's written at the same time too
        item = record["step"][len("each("):-1]
        assert f"outputs/shards/{'abcde'[int(item)]}.json" in [f["path"] for f in record["files"]]
    second, out = launch(engine, "r2", template=fan, input=str(source))
    assert all(n.get("reused_from") for name, n in second.items() if name.startswith("each("))
    assert sorted(p.name for p in (out / "shards").iterdir()) == [f"{i}.json" for i in "abcde"]


MEMOIZED = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: memo}
spec:
  entrypoint: main
  arguments: {parameters: [{name: out}, {name: message, value: hello}, {name: say, value: "1"}]}
  templates:
  - name: main
    steps:
    - - name: print
        template: print
        arguments: {parameters: [{name: message, value: "{{workflow.parameters.message}}"}]}
  - name: print
    inputs: {parameters: [{name: message}]}
    memoize:
      key: "{{inputs.parameters.message}}"
      maxAge: "%s"
      cache: {configMap: {name: print-cache}}
    container:
      image: alpine
      command: [sh, -c, 'echo "$0 $1"']
      args: ["{{inputs.parameters.message}}", "{{workflow.parameters.say}}"]
"""


def test_memoize_hits_on_its_key_alone_as_in_argo(engine):
    """Argo keys a memoized template by its resolved key and cache name only: another command
    line with the same key hits, and the outputs are the first run's."""
    template = MEMOIZED % "1h"
    launch(engine, "m1", template=template)
    second, _ = launch(engine, "m2", template=template, say="2")
    assert second["print"]["reused_from"]["run"] == "m1"
    assert second["print"]["outputs"]["result"] == "hello 1"
    other, _ = launch(engine, "m3", template=template, message="bye")
    assert "reused_from" not in other["print"]


def test_memoize_ignores_an_entry_older_than_max_age(engine):
    launch(engine, "m1", template=MEMOIZED % "1s")
    time.sleep(1.2)
    second, _ = launch(engine, "m2", template=MEMOIZED % "1s")
    assert "reused_from" not in second["print"] and second["print"]["attempts"] == 1


def test_memoize_refuses_what_argo_refuses(engine):
    with pytest.raises(TemplateRefused, match=r"memoize.maxAge: time: missing unit in duration '10'"):
        load(textwrap.dedent(MEMOIZED % "10"))
    bad_key = (MEMOIZED % "1h").replace("value: hello", "value: hello world")
    out = run_dir(engine.storage_root, "p", "m1") / "outputs"
    out.mkdir(parents=True)
    handle = engine.start(textwrap.dedent(bad_key), {"out": str(out)}, run_id="m1", project="p")
    assert handle.wait(60) == "Failed"
    node = {n["name"]: n for n in handle.status()["nodes"].values()}["print"]
    assert (node["phase"], node["message"]) == ("Error", "invalid cache key: hello world")
