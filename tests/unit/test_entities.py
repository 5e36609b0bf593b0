"""Submission bodies parse into located entities; TSV exports read back the same."""
import json

import pytest

from metadata.dictionary import Dictionary
from metadata.entities import parse, submission_doc, tsv_header, tsv_row
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
