"""Storage lifecycle rules: the shipped ones load; a bad rule is refused at load naming the rule and
the field; patterns match as the docs say."""
import pytest

from metadata import templates
from metadata.errors import Invalid
from metadata.lifecycle import load_rules, pattern_regex

CATALOG = templates.load()
GOOD = """name: qc-shards
when: {template: ims-qc, status: [succeeded], age_days: 30}
delete: ["outputs/convert/**", "outputs/qc/shards/*.json"]
"""


def rules_from(tmp_path, text: str):
    (tmp_path / "rule.yaml").write_text(text)
    return load_rules(tmp_path, CATALOG)


def test_the_shipped_rules_load_against_the_shipped_templates():
    rules = {r.name: r for r in load_rules(None, CATALOG)}
    assert rules["ims-qc-intermediates"].matches("outputs/qc/index/index.npz")
    assert not rules["ims-qc-intermediates"].matches("outputs/qc/report.json")
    assert rules["project-quota"].is_quota and rules["project-quota"].quota_gigabytes == 500


def test_a_good_rule_loads(tmp_path):
    [rule] = rules_from(tmp_path, GOOD)
    assert rule.age_days == 30 and rule.statuses == ("succeeded",) and rule.template == "ims-qc"


@pytest.mark.parametrize("text, message", [
    (GOOD + "archive: true\n", "lifecycle rule rule.yaml: archive: unknown field"),
    (GOOD.replace("age_days: 30", "age_days: 30, older: 2"), "lifecycle rule qc-shards (rule.yaml): when.older: unknown field"),
    (GOOD.replace("30", "-1"), "when.age_days: -1 is negative"),
    (GOOD.replace("30", "'a month'"), "when.age_days: give a number"),
    (GOOD.replace("outputs/qc/shards/*.json", "outputs/qc/*"),
     "delete[1]: 'outputs/qc/*' would match outputs/qc/report.json (the registered output qc/report.json of template ims-qc)"),
    (GOOD.replace("outputs/convert/**", "**"), "delete[0]: '**' would match inputs/input.imzML (the raw data"),
    (GOOD.replace("outputs/convert/**", "inputs/*"), "delete[0]: 'inputs/*' would match inputs/input.imzML"),
    (GOOD.replace("outputs/convert/**", "../*"), "delete[0]: '../*' must be a relative path inside the run's folder"),
    (GOOD.replace("succeeded", "running"), "when.status: give one or more of succeeded, failed, cancelled"),
    (GOOD.replace("ims-qc", "no-such"), "when.template: 'no-such' is not a workflow template"),
    ("name: q\nquota: {gigabytes: -5}\n", "lifecycle rule q (rule.yaml): quota.gigabytes: -5 is negative"),
    ("name: q\nquota: {gigabytes: 5}\ndelete: [x]\n", "give either delete (with when) or quota"),
])
def test_a_bad_rule_is_refused_naming_the_rule_and_field(tmp_path, text, message):
    with pytest.raises(Invalid) as refused:
        rules_from(tmp_path, text)
    assert message in refused.value.message


def test_a_failed_runs_rule_may_delete_outputs_since_failed_runs_register_none(tmp_path):
    [rule] = rules_from(tmp_path, "name: failed\nwhen: {status: [failed], age_days: 0}\ndelete: [\"outputs/**\"]\n")
    assert rule.matches("outputs/qc/report.json")


@pytest.mark.parametrize("pattern, path, matches", [
    ("outputs/convert/**", "outputs/convert/shard-1.parquet", True),
    ("outputs/convert/**", "outputs/convert/a/b.json", True),
    ("outputs/**/*.parquet", "outputs/x.parquet", True),
    ("outputs/*.parquet", "outputs/convert/x.parquet", False),
    ("outputs/shard-?.parquet", "outputs/shard-1.parquet", True),
    ("outputs/convert/**", "outputs/convertible/x", False),
])
def test_patterns(pattern, path, matches):
    assert bool(pattern_regex(pattern).fullmatch(path)) is matches
