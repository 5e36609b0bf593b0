"""A one-step template that reads its imzML input and writes a report, a measurement with real
files in the storage root to run it on, and the CLI reading that template (workflow_cli)."""
import dataclasses
import hashlib
import json

import pytest
import yaml

STEP = """
import json, os, pathlib, sys
imzml = pathlib.Path(sys.argv[1])
out = pathlib.Path(sys.argv[2])
if sys.argv[3] == "fail":
    print("the step could not go on", file=sys.stderr); sys.exit(3)
if sys.argv[3] == "slow":
    import time; time.sleep(60)
(out / "report.json").write_text(json.dumps({"bytes": imzml.stat().st_size}))
(out / "notes.xyz").write_text("not a registrable format")
if sys.argv[3].startswith("qc-"):   # a verdict: passed, or failed on the input's size
    passed = sys.argv[3] == "qc-pass"
    checks = [{"metric": "bytes", "value": imzml.stat().st_size, "minimum": 1000, "passed": passed},
              {"metric": "files", "value": 1, "minimum": 1, "passed": True}]
    (out / "qc").mkdir()
    (out / "qc" / "verdict.json").write_text(json.dumps({"passed": passed, "checks": checks}))
"""


def template(mode_default: str = "ok") -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
        "metadata": {"name": "size-report", "annotations": {
            "labcommons.io/title": "Size report", "labcommons.io/description": "Reports the input's size.",
            "labcommons.io/inputs": "imzml", "labcommons.io/standard": "true",
            "labcommons.io/parameter-hints": json.dumps({
                "imzml": {"type": "string", "filled_by": "input"},
                "output-dir": {"type": "string", "filled_by": "run"}, "mode": {"type": "string"}}),
            "labcommons.io/outputs": json.dumps([{"path": "*.json", "data_format": "json",
                                                  "data_category": "qc_report"},
                                                 {"path": "qc/verdict.json", "data_format": "json",
                                                  "data_category": "qc_report", "verdict": True}])}},
        "spec": {"entrypoint": "main",
                 "arguments": {"parameters": [{"name": "imzml", "description": "The input imzML."},
                                              {"name": "output-dir", "description": "Where to write."},
                                              {"name": "mode", "value": mode_default, "enum": ["ok", "fail", "slow", "qc-pass", "qc-fail"],
                                               "description": "What the step does."}]},
                 "templates": [
                     {"name": "main", "steps": [[{"name": "measure", "template": "measure"}]]},
                     {"name": "measure", "container": {
                         "image": "labcommons", "command": ["python", "-c", STEP],
                         "args": ["{{workflow.parameters.imzml}}", "{{workflow.parameters.output-dir}}",
                                  "{{workflow.parameters.mode}}"]}}]},
    }


@pytest.fixture
def settings(settings, tmp_path):
    directory = tmp_path / "templates"
    directory.mkdir()
    (directory / "size-report.yaml").write_text(yaml.safe_dump(template()))
    return dataclasses.replace(settings, templates_dir=directory, triggers_dir=tmp_path / "no-triggers")


@pytest.fixture
def measurement(admin, project, settings) -> str:
    root = settings.storage_root / project
    root.mkdir(parents=True)
    files = []
    for fmt, content in (("imzML", b"<imzML/>"), ("ibd", b"\x00" * 100)):
        path = root / f"m.{fmt}"
        path.write_bytes(content)
        files.append({"type": "data_file", "submitter_id": path.name, "file_name": path.name, "data_format": fmt,
                      "file_size": len(content), "md5sum": hashlib.md5(content).hexdigest(),
                      "storage_url": path.as_uri(), "measurements": {"submitter_id": "m"}})
    submit_measurement(admin, project, "m", files)
    return admin.find(project, "m")["id"]


def submit_measurement(admin, project: str, submitter_id: str, files: list[dict]) -> None:
    """A measurement (with its case, sample and experiment) and its data files, in one submission."""
    admin.submit(project, [{"type": "case", "submitter_id": "c", "species": "mouse"},
                           {"type": "sample", "submitter_id": "s", "organ": "liver", "preparation": "fresh frozen",
                            "cases": {"submitter_id": "c"}},
                           {"type": "experiment", "submitter_id": "e", "protocol": "p"},
                           {"type": "measurement", "submitter_id": submitter_id, "instrument": "x",
                            "ionisation": "MALDI", "polarity": "positive", "samples": {"submitter_id": "s"},
                            "experiments": {"submitter_id": "e"}}] + files)


@pytest.fixture
def workflow_cli(cli, settings, monkeypatch):
    """The CLI (tests/conftest.py's `cli`) reading this directory's size-report template."""
    monkeypatch.setenv("LABCOMMONS_TEMPLATES_DIR", str(settings.templates_dir))
    return cli
