"""The flattening config is checked against the dictionary, with the kind and field named."""
import pytest
import yaml

from metadata import flatten
from metadata.dictionary import Dictionary
from metadata.errors import Invalid


@pytest.fixture(scope="module")
def dictionary():
    return Dictionary.load()


def config(tmp_path, documents, manifest=None):
    path = tmp_path / "flattening.yaml"
    path.write_text(yaml.safe_dump({"documents": documents, "manifest": manifest or {
        "document": "file", "fields": ["id"], "from": {}}}))
    return path


FILE = {"root": "data_file", "properties": ["file_name"]}


def test_the_shipped_config_loads_with_typed_fields(dictionary):
    flattening = flatten.load(dictionary)
    case, file = flattening.specs["case"], flattening.specs["file"]
    assert case.fields["organs"].multi and case.fields["samples"].nested
    assert file.fields["age_years"].kind == "number" and "human" in file.enums["species"]
    assert flattening.manifest.joins == {"case": "case_id"}


def test_each_field_carries_its_dictionary_propertys_title_and_unit(dictionary, tmp_path):
    file = flatten.load(dictionary).specs["file"]
    assert file.labels["file_size"] == ("", "bytes") and file.labels["pixel_size_um"] == ("", "µm")
    assert file.labels["age_years"] == ("", "years") and "id" not in file.labels  # copied from the case
    assert flatten.load(dictionary).specs["case"].labels["total_file_size"] == ("", "bytes")  # a sum keeps it
    assert file.labels["qc"] == ("QC verdict", "")  # the title of the runs' outcome it aggregates
    dictionary.get("data_file").properties["data_format"]["title"] = "Data format"  # a title the dictionary gives
    try:
        assert flatten.load(dictionary).specs["file"].labels["data_format"] == ("Data format", "")
    finally:
        del dictionary.get("data_file").properties["data_format"]["title"]


@pytest.mark.parametrize("documents, words", [
    ({"file": {"root": "spaceship"}}, "root 'spaceship' is not a node type"),
    ({"file": dict(FILE, properties=["colour"])}, "data_file has no property 'colour'"),
    ({"file": dict(FILE, ancestors=[{"path": ["cases"], "properties": {"x": "id"}}])}, "has no link 'cases'"),
    ({"file": dict(FILE, ancestors=[{"path": [], "properties": {}}])}, "at least one link"),
    ({"file": dict(FILE, aggregations=[{"field": "n", "path": ["children"], "fn": "count"}])}, "no single backref"),
    ({"file": dict(FILE, aggregations=[{"field": "n", "path": ["x"], "fn": "median"}])}, "fn must be one of"),
    ({"file": dict(FILE, ancestors=[{"path": ["measurements"], "properties": {"file_name": "id"}}])},
     "field 'file_name' is defined twice"),
    ({"file": dict(FILE, facets=["organ"])}, "facets names unknown fields ['organ']"),
    ({"file": dict(FILE, aggregations=[{"field": "qc", "path": ["used_by_runs"], "property": "outcome",
                                        "fn": "latest", "by": "finished"}])}, "by: workflow_run has no property 'finished'"),
])
def test_a_bad_config_is_refused_with_the_kind_and_field_named(tmp_path, dictionary, documents, words):
    with pytest.raises(Invalid, match="flattening flattening.yaml") as caught:
        flatten.load(dictionary, config(tmp_path, documents))
    assert words in caught.value.message


@pytest.mark.parametrize("manifest, words", [
    ({"document": "nope", "fields": ["id"]}, "document must name one of"),
    ({"document": "file", "fields": ["size"]}, "unknown: ['size']"),
    ({"document": "file", "fields": ["id"], "from": {"sample": "id"}}, "unknown document kind 'sample'"),
])
def test_a_bad_manifest_is_refused(tmp_path, dictionary, manifest, words):
    with pytest.raises(Invalid, match="manifest") as caught:
        flatten.load(dictionary, config(tmp_path, {"file": FILE}, manifest))
    assert words in caught.value.message


def test_the_signature_changes_with_the_shape_of_the_documents(tmp_path, dictionary):
    one = flatten.load(dictionary, config(tmp_path, {"file": FILE}))
    two = flatten.load(dictionary, config(tmp_path, {"file": dict(FILE, properties=["file_name", "file_size"])}))
    assert one.signature() != two.signature()
    assert one.signature() == flatten.load(dictionary, config(tmp_path, {"file": FILE})).signature()
