"""Trigger rules: the shipped one loads and names a shipped template; bad rules are refused
with the file and the field named."""
import pytest

from metadata.errors import Invalid
from metadata.templates import load as load_catalog
from metadata.triggers import load_rules


def test_the_shipped_rule_runs_ims_qc_on_measurements_with_both_files():
    [rule] = load_rules(None)
    assert rule.name == "ims-qc-on-new-measurement" and rule.enabled
    assert (rule.on_type, rule.follow, rule.files, rule.inputs) == ("data_file", "measurements", ("imzML", "ibd"),
                                                                    "context")
    template = load_catalog().get(rule.template)
    assert template is not None and template.check(rule.parameters)["snr"] == "3"


@pytest.mark.parametrize("text, message", [
    ("name: r\non:\n  type: data_file\nlaunch: {template: t}\n", "True: unknown field"),   # YAML 1.1's `on`
    ("name: r\nwhen: {}\nlaunch: {template: t}\n", "when.type: name the node type"),
    ("name: r\nwhen: {type: data_file}\n", "launch.template: name the workflow template"),
    ("name: Bad Name\nwhen: {type: data_file}\nlaunch: {template: t}\n", "name: 'Bad Name' must be"),
    ("name: r\nwhen: {type: data_file}\nlaunch: {template: t, inputs: everything}\n", "launch.inputs"),
    ("- a list\n", "must be a mapping"),
    ("name: r\nwhen: [1]\nlaunch: {template: t}\n", "when: must be a mapping"),
])
def test_bad_rules_are_refused_with_the_file_and_field_named(tmp_path, text, message):
    (tmp_path / "rule.yaml").write_text(text)
    with pytest.raises(Invalid, match="trigger rule.yaml: .*" + message.replace("(", r"\(").replace(".", r"\.")):
        load_rules(tmp_path)


def test_two_rules_with_one_name_are_refused(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text("name: same\nwhen: {type: data_file}\nlaunch: {template: t}\n")
    with pytest.raises(Invalid, match="the rule name 'same' is used twice"):
        load_rules(tmp_path)
