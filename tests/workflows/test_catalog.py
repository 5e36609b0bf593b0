"""The catalog: templates validated against Argo's schema, located refusals, entries, digests."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

from ground.settings import SHIPPED_TEMPLATES
from metadata import workflow_catalog as catalog
from metadata.workflow_catalog import (ParameterError, TemplateError, UnknownTemplate, load_catalog,
                                        load_template, validate_parameters)
from workflow_templates.steps import processing

TEMPLATES = sorted(SHIPPED_TEMPLATES.glob("*.yaml"))
VENDORED_SCHEMA_SHA256 = "3f84c5722c48a5aa815fe69119a9375fc3635114f8046da20ede55a8596529f5"
SHARED_SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "schemas" / "argo" / "workflow-jsonschema.json"


@pytest.fixture(scope="module")
def entries():
    return load_catalog()


def _broken(tmp_path: Path, name: str, old: str, new: str, count: int = 1) -> Path:
    """A copy of a packaged template with the first `count` occurrences of old replaced."""
    text = (SHIPPED_TEMPLATES / name).read_text()
    assert old in text, old
    path = tmp_path / name
    path.write_text(text.replace(old, new, count))
    return path


def _line_of(path: Path, fragment: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if fragment in line)


def test_the_catalog_holds_the_three_standard_templates(entries):
    assert list(entries) == ["ims-convert", "ims-preprocess", "ims-qc"]
    assert all(entry.inputs == ("imzml",) for entry in entries.values())


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.name for p in TEMPLATES])
def test_every_template_validates_against_argos_schema(path):
    document = yaml.safe_load(path.read_text())
    assert catalog.schema_problems(document) == []
    assert load_template(path).name == path.stem


def test_the_vendored_schema_is_the_one_recorded_in_its_readme():
    """The copy is byte for byte the file its README names (sha256 below, taken from shared/'s
    copy); where shared/ sits beside the checkout, compared with it directly too. No skip."""
    vendored = catalog.SCHEMA_PATH.read_bytes()
    assert hashlib.sha256(vendored).hexdigest() == VENDORED_SCHEMA_SHA256
    assert VENDORED_SCHEMA_SHA256 in (catalog.SCHEMA_PATH.parent / "README.md").read_text()
    if SHARED_SCHEMA.is_file():
        assert vendored == SHARED_SCHEMA.read_bytes()


def test_a_schema_error_is_refused_with_file_line_and_path(tmp_path):
    path = _broken(tmp_path, "ims-qc.yaml", 'limit: "2"', "limit: 2")
    with pytest.raises(TemplateError) as refused:
        load_template(path)
    line = _line_of(path, "limit: 2")
    assert refused.value.problems == [
        f"ims-qc.yaml:{line}: spec.templates[1].retryStrategy.limit: 2 is not of type 'string'"]


def test_every_schema_error_is_listed(tmp_path):
    path = _broken(tmp_path, "ims-preprocess.yaml", "withParam: \"{{steps.convert.outputs.parameters.shards}}\"",
                   "withParam: [a, b]")
    path.write_text(path.read_text().replace("- name: imzml\n        description", "- nam: imzml\n        description"))
    with pytest.raises(TemplateError) as refused:
        load_template(path)
    text = str(refused.value)
    assert f"ims-preprocess.yaml:{_line_of(path, 'withParam: [a, b]')}: spec.templates[0].steps[1][0].withParam" in text
    assert "spec.arguments.parameters[0]: 'name' is a required property" in text


def test_the_catalog_refuses_a_directory_with_a_broken_template(tmp_path):
    for path in TEMPLATES:
        (tmp_path / path.name).write_text(path.read_text())
    _broken(tmp_path, "ims-convert.yaml", "kind: WorkflowTemplate", "kind: Workflow")
    with pytest.raises(TemplateError) as refused:
        load_catalog(tmp_path)
    assert refused.value.file.name == "ims-convert.yaml"
    assert "ims-convert.yaml:4: kind:" in str(refused.value)


def test_invalid_yaml_is_refused_with_its_line(tmp_path):
    path = _broken(tmp_path, "ims-convert.yaml", "  entrypoint: main", "  entrypoint: [main")
    with pytest.raises(TemplateError, match=r"^ims-convert.yaml:\d+: not valid YAML"):
        load_template(path)


@pytest.mark.parametrize("old, new, expected", [
    ("    labcommons.io/title: Convert imzML to Parquet shards\n", "",
     "metadata.annotations: missing annotation labcommons.io/title"),
    ("  name: ims-convert", "  name: ims-convert2", "metadata.name: must equal the file name 'ims-convert'"),
    ('"spectra-per-shard": {"type": "integer"', '"spectra-per-shard": {"type": "int"',
     "spectra-per-shard: hint type must be one of string, integer, number, boolean"),
    ('"output-dir": {"type": "string", "filled_by": "run"},',
     '"output-dir": {"type": "string", "filled_by": "run"}, "shard-size": {"type": "integer"},',
     "hint for 'shard-size', which is not a parameter"),
    ('value: "500"', 'value: "0"', "default of 'spectra-per-shard' must be an integer between 1 and 100000"),
    ("labcommons.io/inputs: imzml", "labcommons.io/inputs: imzml, mzml", "unknown input type(s) mzml"),
    ('"output-dir": {"type": "string", "filled_by": "run"},',
     '"output-dir": {"type": "string", "filled_by": "run", "pattern": "[a-z/"},',
     "output-dir: a pattern is for a string parameter and comes with pattern_text"),
    ('"output-dir": {"type": "string", "filled_by": "run"},',
     '"output-dir": {"type": "string", "filled_by": "run", "pattern": "[a-z/", "pattern_text": "a path"},',
     "output-dir: pattern is not a regular expression"),
])
def test_catalog_rules_are_refused_with_their_location(tmp_path, old, new, expected):
    path = _broken(tmp_path, "ims-convert.yaml", old, new)
    with pytest.raises(TemplateError) as refused:
        load_template(path)
    assert expected in str(refused.value)
    assert re.match(r"ims-convert.yaml:\d+: ", str(refused.value))


def test_a_default_outside_its_enum_is_refused_at_its_line(tmp_path):
    path = _broken(tmp_path, "ims-preprocess.yaml", "value: gaussian", "value: median")
    with pytest.raises(TemplateError) as refused:
        load_template(path)
    assert str(refused.value) == (
        f"ims-preprocess.yaml:{_line_of(path, 'value: median')}: spec.arguments.parameters[3].value: "
        "default of 'smoothing' must be one of none, gaussian, savitzky-golay, not 'median'")


def test_an_entry_describes_parameters_with_their_hints(entries):
    described = entries["ims-preprocess"].describe()
    window = next(p for p in described["parameters"] if p["name"] == "smoothing-window")
    assert window == {"name": "smoothing-window", "type": "string", "default": "10 ppm", "enum": None,
                      "minimum": None, "maximum": None, "unit": "ppm or m/z", "filled_by": None,
                      "pattern": processing.WIDTH_PATTERN, "pattern_text": processing.WIDTH_TEXT,
                      "required": False, "description": window["description"]}
    smoothing = next(p for p in described["parameters"] if p["name"] == "smoothing")
    assert smoothing["enum"] == ("none", "gaussian", "savitzky-golay")
    imzml = next(p for p in described["parameters"] if p["name"] == "imzml")
    assert imzml["required"] and imzml["filled_by"] == "input"
    assert described["title"] == "Imaging MS preprocessing"
    json.dumps(described)  # plain data, ready for the service


def test_the_digest_is_sha256_of_the_canonical_document(entries, tmp_path):
    entry = entries["ims-qc"]
    canonical = json.dumps(entry.document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert entry.digest == hashlib.sha256(canonical.encode()).hexdigest()
    reformatted = tmp_path / "ims-qc.yaml"
    reformatted.write_text("# another comment\n" + yaml.safe_dump(entry.document, sort_keys=True))
    assert load_template(reformatted).digest == entry.digest
    changed = _broken(tmp_path, "ims-qc.yaml", 'value: "3"', 'value: "4"')
    assert load_template(changed).digest != entry.digest


def test_parameters_are_returned_canonical_with_defaults(entries):
    values = validate_parameters(entries["ims-qc"], {"imzml": "/s/a.imzML", "output-dir": "/s/runs/1",
                                                      "snr": 3.0, "min-spectra": "10"})
    assert values == {"imzml": "/s/a.imzML", "output-dir": "/s/runs/1", "spectra-per-shard": "5000",
                      "reference-ions": "default", "mass-window-ppm": "30", "snr": "3", "min-spectra": "10",
                      "min-median-tic": "0", "min-mean-peaks": "0", "min-pixel-completeness": "0.8",
                      "max-dropped-lines": "0", "max-mass-error-ppm": "5"}
    again = validate_parameters(entries["ims-qc"], {"imzml": "/s/a.imzML", "output-dir": "/s/runs/1",
                                                     "snr": "3", "min-spectra": 10.0})
    assert again == values  # the same launch, however it is spelt
    preprocess = validate_parameters(entries["ims-preprocess"], {"peak-picking": False, "smoothing-window": "1"},
                                     require_filled=False)
    assert preprocess["peak-picking"] == "false" and preprocess["smoothing-window"] == "1"  # a bare number: m/z
    as_number = validate_parameters(entries["ims-preprocess"], {"smoothing-window": 0.4}, require_filled=False)
    assert as_number["smoothing-window"] == "0.4"  # a string parameter takes a number's text, as Argo's AnyString


@pytest.mark.parametrize("values, name, message", [
    ({"smothing": "gaussian"}, "smothing",
     "unknown parameter of ims-preprocess; did you mean 'smoothing'? Its parameters are: imzml, "),
    ({"smoothing": "median"}, "smoothing", "must be one of none, gaussian, savitzky-golay, not 'median'"),
    ({"spectra-per-shard": "0"}, "spectra-per-shard", "must be an integer between 1 and 100000 (spectra), not '0'"),
    ({"spectra-per-shard": 2.5}, "spectra-per-shard", "must be an integer between 1 and 100000 (spectra), not 2.5"),
    ({"smoothing-window": "wide"}, "smoothing-window", f"must be {processing.WIDTH_TEXT}, not 'wide'"),
    ({"smoothing-window": "0 ppm"}, "smoothing-window", f"must be {processing.WIDTH_TEXT}, not '0 ppm'"),
    ({"smoothing-window": "5 Da"}, "smoothing-window", f"must be {processing.WIDTH_TEXT}, not '5 Da'"),
    ({"snr": float("nan")}, "snr", "must be a number between 0 and 1000, not nan"),
    ({"baseline-window": 5000}, "baseline-window", "must be a number between 0.01 and 1000 (m/z), not 5000"),
    ({"peak-picking": "yes"}, "peak-picking", "must be true or false, not 'yes'"),
    ({"output-format": 1}, "output-format", "must be one of parquet, imzml, not 1"),
    ({"smoothing-window": [1]}, "smoothing-window", "must be a string (ppm or m/z), not [1]"),
])
def test_each_refused_parameter_is_named_with_what_is_allowed(entries, values, name, message):
    with pytest.raises(ParameterError) as refused:
        validate_parameters(entries["ims-preprocess"], values, require_filled=False)
    assert len(refused.value.problems) == 1
    assert refused.value.problems[0][0] == name
    assert refused.value.problems[0][1].startswith(message)


@pytest.mark.parametrize("ions, refused", [("default", False), ("760.5851 PC 34:1 [M+H]+; 782.5670", False),
                                           ("760.5851\n193.0771 9-AA", False), ("760.5; seven", True),
                                           ("PC 34:1", True), ("7a", True)])
def test_a_reference_ion_list_with_non_numbers_is_refused_at_launch_in_words(entries, ions, refused):
    values = {"reference-ions": ions}
    if not refused:
        assert validate_parameters(entries["ims-qc"], values, require_filled=False)["reference-ions"] == ions
        return
    with pytest.raises(ParameterError) as error:
        validate_parameters(entries["ims-qc"], values, require_filled=False)
    assert error.value.problems == [("reference-ions", "must be default, or m/z values each optionally followed by "
                                     "a name, separated by ';' (e.g. 760.5851 PC 34:1 [M+H]+; 782.5670), "
                                     f"not {ions!r}")]


def test_missing_parameters_are_refused_all_at_once(entries):
    with pytest.raises(ParameterError) as refused:
        validate_parameters(entries["ims-qc"], {"snr": -1})
    assert [name for name, _ in refused.value.problems] == ["imzml", "output-dir", "snr"]
    assert refused.value.problems[0][1].startswith("is required (Path of the measurement's .imzML file")
    assert "ims-qc" in str(refused.value)


def test_a_required_parameter_may_not_be_empty(entries):
    with pytest.raises(ParameterError, match="imzml: must not be empty"):
        validate_parameters(entries["ims-convert"], {"imzml": "", "output-dir": "/s/runs/1"})


def test_a_form_may_leave_out_what_the_launcher_fills(entries):
    assert "imzml" not in validate_parameters(entries["ims-convert"], {}, require_filled=False)


def test_an_unknown_template_names_the_known_ones(entries):
    with pytest.raises(UnknownTemplate, match="unknown workflow template 'ims-qa'; the catalog has: "
                                              "ims-convert, ims-preprocess, ims-qc"):
        entries["ims-qa"]


def test_a_template_the_engine_refuses_is_refused_at_load_with_the_engine_s_reason(tmp_path):
    from workflow_templates.engines.spec import refusals
    path = _broken(tmp_path, "ims-convert.yaml", "  entrypoint: main", "  entrypoint: main\n  hooks: {exit: {template: main}}")
    load_template(path)  # Argo's schema accepts it: only the engine's check refuses it
    with pytest.raises(TemplateError) as refused:
        load_catalog(tmp_path, check=refusals)
    assert "ims-convert.yaml: the engine refuses it: spec.hooks" in str(refused.value)


def test_the_service_and_worker_get_the_local_engine_s_check_and_metadata_stays_below_it(tmp_path):
    import dataclasses
    import subprocess
    import sys

    from ground import settings
    from labcommons.cli_workflows import template_check
    from metadata import templates
    from metadata.errors import Invalid

    _broken(tmp_path, "ims-convert.yaml", "  entrypoint: main", "  entrypoint: main\n  hooks: {exit: {template: main}}")
    local = settings.load({})
    check = template_check(dataclasses.replace(local, engine="local"))
    assert template_check(dataclasses.replace(local, engine="argo")) is None
    with pytest.raises(Invalid, match="the engine refuses it: spec.hooks"):
        templates.load(tmp_path, check)
    probe = ("import sys, metadata.server, metadata.templates; "
             "print([m for m in sys.modules if m.startswith('workflow_templates.engines')])")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"


def test_ims_qc_declares_its_report_as_the_verdict_output(entries):
    assert [o.path for o in entries["ims-qc"].outputs if o.verdict] == ["qc/report.json"]


@pytest.mark.parametrize("old, new", [
    ('"data_category": "qc_report", "verdict": true}', '"data_category": "qc_report", "verdict": "yes"}'),
    ('"data_category": "qc_report"}', '"data_category": "qc_report", "verdict": true}'),   # the png too
])
def test_a_verdict_on_anything_but_one_json_output_is_refused_naming_the_key(tmp_path, old, new):
    with pytest.raises(TemplateError, match="verdict: true on at most one output, a json one"):
        load_template(_broken(tmp_path, "ims-qc.yaml", old, new))
