"""The dictionary loader refuses malformed dictionaries; property checks explain themselves."""
import pytest

from metadata.dictionary import Dictionary
from metadata.errors import Invalid


@pytest.fixture(scope="module")
def default():
    return Dictionary.load()


def write(tmp_path, name, text):
    (tmp_path / f"{name}.yaml").write_text(text)


def test_default_dictionary_has_the_ims_types(default):
    assert {"program", "project", "case", "sample", "experiment", "measurement", "data_file",
            "parameter_set", "workflow_run"} <= set(default.names())
    assert default.get("sample").links["cases"].target_type == "case"
    assert default.get("project").is_global and not default.get("case").is_global


def test_data_file_has_an_exclusive_required_link_group(default):
    (group,) = default.get("data_file").groups
    assert set(group.members) == {"measurements", "workflow_runs"} and group.required and group.exclusive


def test_children_links_name_the_types_that_point_at_a_type(default):
    assert ("sample", "cases") in [(t, link.name) for t, link in default.children_links("case")]


@pytest.mark.parametrize("text, expected", [
    ("id: other\ncategory: clinical\n", "whose id is 'thing'"),
    ("id: thing\ncategory: weird\n", "category must be one of"),
    ("id: thing\ncategory: clinical\nproperties:\n  id: {type: string}\n", "system field"),
    ("id: thing\ncategory: clinical\nproperties:\n  x: {type: string, colour: red}\n", "unsupported keywords"),
    ("id: thing\ncategory: clinical\nproperties:\n  x: {enum: [a]}\n", "needs a type"),
    ("id: thing\ncategory: clinical\nrequired: [y]\nproperties: {}\n", "'y' is not defined"),
    ("id: thing\ncategory: clinical\nlinks:\n  - {name: a, backref: b, label: c, target_type: nope,"
     " multiplicity: many_to_one}\n", "unknown type 'nope'"),
    ("id: thing\ncategory: clinical\nlinks:\n  - {name: a, backref: b, label: c, target_type: thing,"
     " multiplicity: lots}\n", "multiplicity must be"),
    ("id: thing\ncategory: clinical\nlinks:\n  - {name: a}\n", "lacks backref"),
    ("id: [unclosed\n", "cannot read"),
])
def test_malformed_dictionaries_are_refused_with_the_file_and_field_named(tmp_path, text, expected):
    write(tmp_path, "thing", text)
    with pytest.raises(Invalid, match="thing.yaml") as caught:
        Dictionary.load(tmp_path)
    assert expected in caught.value.message


def test_an_empty_directory_is_refused(tmp_path):
    with pytest.raises(Invalid, match="no \\*.yaml"):
        Dictionary.load(tmp_path)


def problems(default, type_name, props):
    return dict(default.get(type_name).check_properties(props))


def test_valid_properties_have_no_problems(default):
    assert problems(default, "case", {"species": "human"}) == {}


@pytest.mark.parametrize("props, field, words", [
    ({"species": "unicorn"}, "species", "choose one of: "),
    ({"species": "human", "age_years": "old"}, "age_years", "is not a number"),
    ({"species": "human", "age_years": -4}, "age_years", "must be at least 0"),
    ({"species": "human", "colour": "red"}, "colour", "is not a property of case"),
    ({"species": "human", "specie": "human"}, "specie", "did you mean 'species'"),
])
def test_property_problems_name_the_field_and_what_is_allowed(default, props, field, words):
    found = problems(default, "case", props)
    assert field in found and words in found[field]


def test_missing_required_property_is_named_with_its_choices(default):
    found = problems(default, "sample", {})
    assert "organ" in found and "required" in found["organ"] and "liver" in found["organ"]


def test_dates_must_be_real_dates(default):
    found = problems(default, "experiment", {"protocol": "MALDI imaging", "experiment_date": "2024-13-45"})
    assert "YYYY-MM-DD" in found["experiment_date"]


def test_each_missing_required_property_is_named(default):
    assert {"instrument", "ionisation", "polarity"} <= set(problems(default, "measurement", {}))


@pytest.mark.parametrize("low, high, refused", [(900, 500, True), (500, 900, False), (700, 700, False),
                                                (900, "x", False)])
def test_an_upper_mass_range_below_the_lower_is_refused_at_the_upper_field(default, low, high, refused):
    props = {"instrument": "timsTOF fleX", "ionisation": "nano-DESI", "polarity": "negative",
             "mass_range_low": low, "mass_range_high": high}
    found = problems(default, "measurement", props)
    assert ("is below mass_range_low (900)" in found.get("mass_range_high", "")) == refused


@pytest.mark.parametrize("entry, expected", [
    ("[[a, nope]]", "must name two properties defined"),
    ("[[a, name]]", "two numbers or two dates"),
    ("[a]", "must name two properties"),
])
def test_malformed_ordered_pairs_are_refused(tmp_path, entry, expected):
    write(tmp_path, "thing", "id: thing\ncategory: clinical\nproperties:\n  a: {type: number}\n"
                             f"  name: {{type: string}}\nordered: {entry}\n")
    with pytest.raises(Invalid, match="thing.yaml") as caught:
        Dictionary.load(tmp_path)
    assert expected in caught.value.message
