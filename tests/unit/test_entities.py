"""Submission bodies parse into located entities; TSV exports read back the same."""
import json

import pytest

from metadata.dictionary import Dictionary
from metadata.entities import ValueLimits, parse, submission_doc, tsv_header, tsv_row, value_problem
from metadata.errors import Invalid


@pytest.fixture(scope="module")
def dictionary():
    return Dictionary.load()


def tsv(*rows):
    return "\n".join("\t".join(r) for r in rows) + "\n"


def test_json_list_and_single_object_both_parse(dictionary):
    assert [e.index for e in parse('[{"a": 1}, {"b": 2}]', "json", dictionary)] == [0, 1]
    assert parse('{"a": 1}', "json", dictionary)[0].doc == {"a": 1}


@pytest.mark.parametrize("body, code, words", [
    ("", "empty_batch", "empty"),
    ("[]", "empty_batch", "empty"),
    ('[{"a": 1},', "malformed", "line 1, column"),
    ("[1, 2]", "invalid", "not a list of entities"),
])
def test_bad_json_is_refused_with_a_reason(dictionary, body, code, words):
    with pytest.raises(Invalid) as caught:
        parse(body, "json", dictionary)
    assert caught.value.code == code and words in caught.value.message


def test_unknown_format_is_refused(dictionary):
    with pytest.raises(Invalid, match="use json or tsv"):
        parse("x", "xml", dictionary)


def test_tsv_cells_take_the_dictionary_types_and_links(dictionary):
    body = tsv(["type", "submitter_id", "organ", "weight_mg", "cases.submitter_id", "notes"],
               ["sample", "s-1", "liver", "12.5", "c-1", ""])
    (entity,) = parse(body, "tsv", dictionary)
    assert entity.row == 2
    assert entity.doc == {"type": "sample", "submitter_id": "s-1", "organ": "liver", "weight_mg": 12.5,
                          "cases": {"submitter_id": "c-1"}}


def test_tsv_rows_of_the_wrong_width_are_located_by_row(dictionary):
    body = tsv(["type", "submitter_id", "weight_mg"], ["sample", "s-1", "1"], ["sample", "s-2"])
    with pytest.raises(Invalid) as caught:
        parse(body, "tsv", dictionary)
    (problem,) = caught.value.problems
    assert (problem.row, problem.message) == (3, "has 2 cells but the header has 3")


def test_tsv_cells_that_do_not_convert_stay_text_for_the_dictionary_to_report(dictionary):
    body = tsv(["type", "submitter_id", "weight_mg"], ["sample", "s-1", "heavy"])
    (entity,) = parse(body, "tsv", dictionary)
    assert entity.doc["weight_mg"] == "heavy"


def test_tsv_needs_type_and_submitter_id_columns(dictionary):
    with pytest.raises(Invalid, match="type and submitter_id"):
        parse(tsv(["kind", "name"], ["a", "b"]), "tsv", dictionary)


def test_tsv_with_only_a_header_is_an_empty_batch(dictionary):
    with pytest.raises(Invalid) as caught:
        parse(tsv(["type", "submitter_id"]), "tsv", dictionary)
    assert caught.value.code == "empty_batch"


NODE = {"id": "u-1", "type": "sample", "submitter_id": "s-1", "project_id": "p",
        "properties": {"organ": "liver", "weight_mg": 3.0},
        "links": [{"name": "cases", "target_id": "u-0", "target_type": "case", "target_submitter_id": "c-1"}]}


def test_tsv_export_row_reads_back_as_the_same_entity(dictionary):
    props, links = list(dictionary.get("sample").properties), list(dictionary.get("sample").links)
    body = tsv(tsv_header(props, links), tsv_row(props, links, NODE))
    (entity,) = parse(body, "tsv", dictionary)
    assert entity.doc == {"type": "sample", "id": "u-1", "submitter_id": "s-1", "project_id": "p",
                          "organ": "liver", "weight_mg": 3.0, "cases": {"submitter_id": "c-1"}}


def test_json_export_doc_reads_back_as_the_same_entity(dictionary):
    doc = submission_doc(NODE)
    (entity,) = parse(json.dumps([doc]), "json", dictionary)
    assert entity.doc["cases"] == {"submitter_id": "c-1"} and entity.doc["organ"] == "liver"


def test_json_export_doc_lists_several_targets_of_one_link():
    node = dict(NODE, links=[dict(NODE["links"][0], target_submitter_id=s) for s in ("c-1", "c-2")])
    assert submission_doc(node)["cases"] == [{"submitter_id": "c-1"}, {"submitter_id": "c-2"}]


def test_value_caps_count_json_bytes_and_submitter_id_characters(dictionary):
    limits = ValueLimits(property_bytes=12, submitter_id=3)
    assert value_problem("genotype", "é" * 5, limits) is None  # "ééééé": 12 bytes of JSON
    assert "13 bytes as JSON; the limit for one value is 12 bytes" in value_problem("genotype", "é" * 5 + "a", limits)
    assert "is 14 bytes" in value_problem("tags", ["abcd", "efg"], limits)  # ["abcd","efg"]
    assert value_problem("cases", [{"submitter_id": "a-long-parent"}] * 3, limits, link=True) is None
    assert "4 characters long; the limit is 3" in value_problem("submitter_id", "abcd", limits)


@pytest.mark.parametrize("value, word", [(float("nan"), "NaN"), (float("inf"), "Infinity"),
                                         ([1.0, float("-inf")], "-Infinity"), ({"x": [float("nan")]}, "NaN")])
def test_non_finite_values_are_refused_wherever_they_sit(value, word):
    assert f"x is {word}, which is not a number" in value_problem("x", value, ValueLimits())


def test_every_refused_value_of_a_batch_is_located(dictionary):
    body = tsv(["type", "submitter_id", "age_years", "weight_mg"], ["case", "c1", "nan", ""],
               ["sample", "s1", "", "-inf"])
    with pytest.raises(Invalid) as caught:
        parse(body, "tsv", dictionary)
    assert [(p.row, p.field) for p in caught.value.problems] == [(2, "age_years"), (3, "weight_mg")]
    assert caught.value.message.startswith("the batch was refused: row 2: age_years is NaN")
