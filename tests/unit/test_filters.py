"""The filter language: parse errors, own-facet exclusion, to_es against expected dicts, and to_sql
executed against a real in-memory DuckDB table; a seeded random differential test checks both compilers
against a reference evaluator written straight from docs/filters.md."""
from __future__ import annotations

import json
import operator
import random
import re
from datetime import date

import duckdb
import pytest

from metadata.errors import Invalid
from metadata.filters import (MISSING, OPERATORS, And, Compare, Field, In, Nested, Or, Search, fields_in, parse,
                              to_es, to_sql, without_field)

SAMPLE = {"organ": Field("organ", "keyword"), "preparation": Field("preparation", "keyword")}
FIELDS = {
    "organ": Field("organ", "keyword"),  # an ENUM column
    "age_years": Field("age_years", "integer"),
    "weight": Field("weight", "number"),
    "alive": Field("alive", "boolean"),
    "visit": Field("visit", "date"),
    "tissue": Field("tissue", "text"),
    "code": Field("code", "keyword"),
    "tags": Field("tags", "keyword", multi=True),
    "scores": Field("scores", "integer", multi=True),
    "sites": Field("sites", "keyword", multi=True),  # an ENUM[] column
    "samples": Field("samples", "nested", nested=SAMPLE),
}


def s(organ, preparation):
    return {"organ": organ, "preparation": preparation}


D = date.fromisoformat
COLUMNS = ("id", "organ", "age_years", "weight", "alive", "visit", "tissue", "code", "tags", "scores", "sites",
           "samples")
ROWS = [
    (1, "liver", 34, 70.5, True, D("2024-01-31"), "Hippocampus slice", "a_b", ["a", "b"], [1, 5], ["liver"],
     [s("liver", "FFPE")]),
    (2, None, None, None, None, None, None, None, None, None, None, None),
    (3, "kidney", 29, 80.0, False, D("2023-06-01"), "renal cortex", "axb", [], [], [], []),
    (4, "brain", 50, 60.25, True, D("2024-03-15"), "frontal cortex", "100%", ["a", None], [7, None], ["brain", "heart"],
     [s("liver", "frozen"), s("kidney", "FFPE")]),
    (5, "heart", 30, None, False, D("2022-12-31"), "left ventricle", "100 percent", ["c"], [3], ["heart"],
     [s(None, "FFPE")]),
    (6, "liver", None, 55.0, None, D("2024-01-01"), "HIPPO region", "a\\b", ["B"], [10, 2], None,
     [s("liver", "FFPE"), s("brain", "frozen")]),
    (7, "kidney", 45, 90.0, True, None, None, "ab", ["x%y"], [4], ["kidney"], [s("kidney", "frozen")]),
    (8, "brain", 30, 72.0, False, D("2024-02-29"), "hippocampus", None, [None], None, [None], [None]),
    (9, "liver", 61, 65.0, True, D("2021-07-04"), "liver biopsy", "A_B", ["b", "c"], [5], ["liver", "kidney"],
     [s("brain", "FFPE"), s("liver", "fresh")]),
    (10, "heart", 18, 50.0, False, D("2024-01-31"), "atrium", "x", ["under_score"], [0], ["heart"], None),
]
DOCS = [dict(zip(COLUMNS, row)) for row in ROWS]
ALL = set(range(1, 11))


@pytest.fixture(scope="module")
def db():
    con = duckdb.connect()
    con.execute("CREATE TYPE organ_t AS ENUM ('liver', 'kidney', 'brain', 'heart')")
    con.execute("""CREATE TABLE docs (id INTEGER, organ organ_t, age_years INTEGER, weight DOUBLE, alive BOOLEAN,
        visit DATE, tissue VARCHAR, code VARCHAR, tags VARCHAR[], scores INTEGER[], sites organ_t[],
        samples STRUCT(organ VARCHAR, preparation VARCHAR)[])""")
    con.executemany(f"INSERT INTO docs VALUES ({', '.join('?' * len(COLUMNS))})", ROWS)
    yield con
    con.close()


def sql_ids(db, node) -> set[int]:
    where, params = to_sql(node)
    return {row[0] for row in db.execute(f"SELECT id FROM docs WHERE {where}", params).fetchall()}


def matching(db, filter_json, **kw) -> set[int]:
    return sql_ids(db, parse(filter_json, FIELDS, **kw))


def problems(filter_json, **kw) -> list:
    with pytest.raises(Invalid) as caught:
        parse(filter_json, FIELDS, **kw)
    return caught.value.problems


def one_problem(filter_json, **kw):
    found = problems(filter_json, **kw)
    assert len(found) == 1, found
    return found[0]


# -- to_sql, executed -------------------------------------------------------------------------

SQL_CASES = [
    # scalar keyword (an ENUM column), including values the ENUM does not hold
    ({"=": {"organ": "liver"}}, {1, 6, 9}),
    ({"=": {"organ": "lung"}}, set()),
    ({"!=": {"organ": "liver"}}, {2, 3, 4, 5, 7, 8, 10}),  # keeps the NULL row
    ({"!=": {"organ": "lung"}}, ALL),
    ({"IN": {"organ": ["kidney", "heart", "lung"]}}, {3, 5, 7, 10}),
    ({"IN": {"organ": ["kidney", MISSING]}}, {2, 3, 7}),
    ({"=": {"organ": MISSING}}, {2}),
    ({"!=": {"organ": MISSING}}, ALL - {2}),
    # numbers, booleans, dates
    ({">=": {"age_years": 30}}, {1, 4, 5, 7, 8, 9}),
    ({">": {"age_years": 30}}, {1, 4, 7, 9}),
    ({"<": {"age_years": 30}}, {3, 10}),
    ({"<=": {"age_years": 30}}, {3, 5, 8, 10}),
    ({"=": {"age_years": 30}}, {5, 8}),
    ({"!=": {"age_years": 30}}, {1, 2, 3, 4, 6, 7, 9, 10}),
    ({"IN": {"age_years": [29, 30, MISSING]}}, {2, 3, 5, 6, 8}),
    ({">": {"weight": 70}}, {1, 3, 7, 8}),
    ({"<=": {"weight": 60.25}}, {4, 6, 10}),
    ({"=": {"alive": True}}, {1, 4, 7, 9}),
    ({"!=": {"alive": True}}, {2, 3, 5, 6, 8, 10}),
    ({"=": {"alive": False}}, {3, 5, 8, 10}),
    ({">=": {"visit": "2024-01-01"}}, {1, 4, 6, 8, 10}),
    ({"=": {"visit": "2024-01-31"}}, {1, 10}),
    ({"<": {"visit": "2023-01-01"}}, {5, 9}),
    ({">": {"visit": "2024-01-31T12:00:00"}}, {4, 8}),
    ({"IN": {"visit": ["2024-01-31", "2021-07-04"]}}, {1, 9, 10}),
    # lists: any element; != means no element; __missing__ means NULL, [] or only NULLs
    ({"=": {"tags": "a"}}, {1, 4}),
    ({"=": {"tags": "b"}}, {1, 9}),
    ({"IN": {"tags": ["b", "c"]}}, {1, 5, 9}),
    ({"!=": {"tags": "a"}}, {2, 3, 5, 6, 7, 8, 9, 10}),
    ({"=": {"tags": MISSING}}, {2, 3, 8}),
    ({"!=": {"tags": MISSING}}, {1, 4, 5, 6, 7, 9, 10}),
    ({"IN": {"tags": ["c", MISSING]}}, {2, 3, 5, 8, 9}),
    ({">=": {"scores": 5}}, {1, 4, 6, 9}),
    ({"<": {"scores": 2}}, {1, 10}),
    ({"=": {"scores": 5}}, {1, 9}),
    ({"IN": {"scores": [3, 4]}}, {5, 7}),
    ({"!=": {"scores": 5}}, {2, 3, 4, 5, 6, 7, 8, 10}),
    ({"IN": {"sites": ["kidney", "lung"]}}, {7, 9}),  # an ENUM[] column
    ({"=": {"sites": "heart"}}, {4, 5, 10}),
    ({"!=": {"sites": "heart"}}, {1, 2, 3, 6, 7, 8, 9}),
    ({"=": {"sites": MISSING}}, {2, 3, 6, 8}),
    # nested: every condition holds for one and the same record
    ({"nested": {"path": "samples", "AND": [{"=": {"organ": "liver"}}, {"=": {"preparation": "FFPE"}}]}}, {1, 6}),
    ({"nested": {"path": "samples", "=": {"organ": "liver"}}}, {1, 4, 6, 9}),
    ({"nested": {"path": "samples", "IN": {"preparation": ["frozen"]}}}, {4, 6, 7}),
    ({"nested": {"path": "samples", "=": {"organ": MISSING}}}, {5}),  # row 8's [NULL] holds no record
    ({"nested": {"path": "samples", "!=": {"organ": "liver"}}}, {4, 5, 6, 7, 9}),
    ({"nested": {"path": "samples", "OR": [{"=": {"organ": "kidney"}}, {"=": {"preparation": "fresh"}}]}}, {4, 7, 9}),
    ({"nested": {"path": "samples", "search": {"keyword": "ffp", "fields": ["preparation"]}}}, {1, 4, 5, 6, 9}),
    ({"=": {"samples": MISSING}}, {2, 3, 8, 10}),
    ({"!=": {"samples": MISSING}}, {1, 4, 5, 6, 7, 9}),
    ({"AND": [{"nested": {"path": "samples", "=": {"organ": "liver"}}},
              {"nested": {"path": "samples", "=": {"preparation": "FFPE"}}}]}, {1, 4, 6, 9}),
    # search: case-insensitive substring; % _ \ match literally
    ({"search": {"keyword": "hippo", "fields": ["tissue"]}}, {1, 6, 8}),
    ({"search": {"keyword": "CORTEX", "fields": ["tissue"]}}, {3, 4}),
    ({"search": {"keyword": "a_b", "fields": ["code"]}}, {1, 9}),
    ({"search": {"keyword": "100%", "fields": ["code"]}}, {4}),
    ({"search": {"keyword": "%", "fields": ["code"]}}, {4}),
    ({"search": {"keyword": "_", "fields": ["code", "tags"]}}, {1, 9, 10}),
    ({"search": {"keyword": "a\\b", "fields": ["code"]}}, {6}),
    ({"search": {"keyword": "b", "fields": ["code", "tags"]}}, {1, 3, 6, 7, 9}),
    ({"search": {"keyword": "x%y", "fields": ["tags"]}}, {7}),
    ({"search": {"keyword": "LIV", "fields": ["organ", "sites"]}}, {1, 6, 9}),  # ENUM and ENUM[]
    # combinations
    ({"AND": [{"IN": {"organ": ["liver", "kidney"]}}, {">=": {"age_years": 30}},
              {"search": {"keyword": "hippo", "fields": ["tissue"]}}]}, {1}),
    ({"AND": [{">=": {"age_years": 30}}, {"<": {"age_years": 50}}]}, {1, 5, 7, 8}),
    ({"OR": [{"=": {"organ": "heart"}}, {"<": {"age_years": 20}}]}, {5, 10}),
    ({"OR": [{"!=": {"organ": "liver"}}, {"=": {"alive": True}}]}, ALL - {6}),
    (None, ALL),
    ({}, ALL),
]


@pytest.mark.parametrize("filter_json, expected", SQL_CASES, ids=[json.dumps(c[0])[:70] for c in SQL_CASES])
def test_to_sql_selects_exactly_the_matching_rows(db, filter_json, expected):
    assert matching(db, filter_json) == expected


def test_search_uses_the_default_fields_when_none_are_named(db):
    assert matching(db, {"search": {"keyword": "hippo"}}, default_search_fields=("tissue", "code")) == {1, 6, 8}


# Guppy's documented operator names (uc-cdis/guppy doc/queries.md), each with the operator it stands for
GUPPY_ALIASES = [("eq", "=", "organ", "liver"), ("EQ", "=", "organ", "liver"), ("in", "IN", "organ", ["liver"]),
                 ("gt", ">", "age_years", 30), ("GT", ">", "age_years", 30), ("gte", ">=", "age_years", 30),
                 ("GTE", ">=", "age_years", 30), ("lt", "<", "weight", 70), ("LT", "<", "weight", 70),
                 ("lte", "<=", "age_years", 45), ("LTE", "<=", "weight", 65)]


@pytest.mark.parametrize("alias, operator_, field, value", GUPPY_ALIASES, ids=[a[0] for a in GUPPY_ALIASES])
def test_guppys_operator_names_mean_their_operators(db, alias, operator_, field, value):
    node = parse({"AND": [{alias: {field: value}}, {"!=": {"code": "x"}}]}, FIELDS)
    assert node == parse({"AND": [{operator_: {field: value}}, {"!=": {"code": "x"}}]}, FIELDS)
    assert sql_ids(db, node) == matching(db, {operator_: {field: value}}) - {10}


def test_a_misspelt_guppy_name_is_located_as_written_and_suggests_the_name():
    problem = one_problem({"AND": [{"Gte": {"age_years": 30}}]})
    assert problem.field == "filter.AND[0].Gte" and "did you mean gte" in problem.message
    assert one_problem({"gte": {"age_years": "30"}}).field == "filter.gte.age_years"


def test_search_takes_one_field_given_as_a_string(db):
    one = {"search": {"keyword": "hippo", "fields": "tissue"}}
    assert parse(one, FIELDS) == parse({"search": {"keyword": "hippo", "fields": ["tissue"]}}, FIELDS)
    assert matching(db, one) == {1, 6, 8}
    assert one_problem({"search": {"keyword": "3", "fields": "age_years"}}).field == "filter.search.fields[0]"


def test_values_travel_only_as_parameters():
    hostile = "x' OR 1=1 --"
    node = parse({"AND": [{"=": {"code": hostile}}, {"search": {"keyword": hostile, "fields": ["tissue"]}},
                          {"IN": {"tags": [hostile]}}]}, FIELDS)
    where, params = to_sql(node)
    assert hostile not in where and "1=1" not in where
    assert params[0] == hostile and params[2] == [hostile]
    assert where.count("?") == len(params)


def test_to_sql_places_parameters_in_text_order():
    where, params = to_sql(parse({"AND": [{"IN": {"organ": ["liver", "kidney", MISSING]}}, {">=": {"age_years": 30}},
                                          {"search": {"keyword": "hip%po", "fields": ["tissue"]}}]}, FIELDS))
    assert where == ("((\"organ\" IN (?, ?) OR \"organ\" IS NULL) AND \"age_years\" >= ? "
                     "AND \"tissue\" ILIKE ? ESCAPE '\\')")
    assert params == ["liver", "kidney", 30, "%hip\\%po%"]


def test_to_sql_quotes_columns_with_the_given_function(db):
    where, params = to_sql(parse({"AND": [{"=": {"organ": "liver"}}, {"nested": {"path": "samples", "=": {
        "preparation": "FFPE"}}}]}, FIELDS), quote=lambda name: f'd."{name}"')
    assert 'd."organ"' in where and 'd."samples"' in where and '."preparation"' in where
    assert {r[0] for r in db.execute(f"SELECT id FROM docs d WHERE {where}", params).fetchall()} == {1, 6, 9}


def test_to_sql_of_nothing_is_true():
    assert to_sql(None) == ("TRUE", [])


def test_doubly_nested_records_use_distinct_lambda_variables():
    inner = Field("aliquots", "nested", nested={"barcode": Field("barcode", "keyword")})
    fields = {"samples": Field("samples", "nested", nested={**SAMPLE, "aliquots": inner})}
    node = parse({"nested": {"path": "samples", "AND": [{"=": {"organ": "liver"}}, {"nested": {
        "path": "aliquots", "=": {"barcode": "B1"}}}]}}, fields)
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id INT, samples STRUCT(organ VARCHAR, preparation VARCHAR, "
                "aliquots STRUCT(barcode VARCHAR)[])[])")
    con.execute("""INSERT INTO t VALUES
        (1, [{'organ': 'liver', 'preparation': NULL, 'aliquots': [{'barcode': 'B1'}]}]),
        (2, [{'organ': 'liver', 'preparation': NULL, 'aliquots': []},
             {'organ': 'brain', 'preparation': NULL, 'aliquots': [{'barcode': 'B1'}]}])""")
    where, params = to_sql(node)
    assert "_e1" in where and "_e2" in where
    assert con.execute(f"SELECT id FROM t WHERE {where}", params).fetchall() == [(1,)]
    assert to_es(node) == {"nested": {"path": "samples", "query": {"bool": {"filter": [
        {"term": {"samples.organ": "liver"}},
        {"nested": {"path": "samples.aliquots", "query": {"term": {"samples.aliquots.barcode": "B1"}}}}]}}}}


# -- to_es ------------------------------------------------------------------------------------

ES_CASES = [
    ({"=": {"organ": "liver"}}, {"term": {"organ": "liver"}}),
    ({"!=": {"organ": "liver"}}, {"bool": {"must_not": [{"term": {"organ": "liver"}}]}}),
    ({"=": {"organ": MISSING}}, {"bool": {"must_not": [{"exists": {"field": "organ"}}]}}),
    ({"!=": {"tags": MISSING}}, {"exists": {"field": "tags"}}),
    ({"IN": {"tags": ["a", "b"]}}, {"terms": {"tags": ["a", "b"]}}),
    ({"IN": {"organ": ["liver", MISSING]}}, {"bool": {"should": [
        {"terms": {"organ": ["liver"]}}, {"bool": {"must_not": [{"exists": {"field": "organ"}}]}}],
        "minimum_should_match": 1}}),
    ({">=": {"age_years": 30}}, {"range": {"age_years": {"gte": 30}}}),
    ({"<": {"visit": "2024-01-01"}}, {"range": {"visit": {"lt": "2024-01-01"}}}),
    ({"AND": [{">": {"weight": 1.5}}, {"<=": {"scores": 3}}]},
     {"bool": {"filter": [{"range": {"weight": {"gt": 1.5}}}, {"range": {"scores": {"lte": 3}}}]}}),
    ({"OR": [{"=": {"alive": True}}, {"=": {"organ": "heart"}}]},
     {"bool": {"should": [{"term": {"alive": True}}, {"term": {"organ": "heart"}}], "minimum_should_match": 1}}),
    ({"search": {"keyword": "Hip*po?\\", "fields": ["code"]}},
     {"wildcard": {"code": {"value": "*Hip\\*po\\?\\\\*", "case_insensitive": True}}}),
    ({"search": {"keyword": "hippo", "fields": ["tissue", "tags"]}}, {"bool": {"should": [
        {"match_phrase_prefix": {"tissue": "hippo"}},
        {"wildcard": {"tags": {"value": "*hippo*", "case_insensitive": True}}}], "minimum_should_match": 1}}),
    ({"nested": {"path": "samples", "AND": [{"=": {"organ": "liver"}}, {"=": {"preparation": "FFPE"}}]}},
     {"nested": {"path": "samples", "query": {"bool": {"filter": [
         {"term": {"samples.organ": "liver"}}, {"term": {"samples.preparation": "FFPE"}}]}}}}),
    ({"=": {"samples": MISSING}},
     {"bool": {"must_not": [{"nested": {"path": "samples", "query": {"match_all": {}}}}]}}),
    (None, {"match_all": {}}),
]


@pytest.mark.parametrize("filter_json, expected", ES_CASES, ids=[json.dumps(c[0])[:70] for c in ES_CASES])
def test_to_es_builds_the_expected_query(filter_json, expected):
    assert to_es(parse(filter_json, FIELDS)) == expected


# -- parse errors -----------------------------------------------------------------------------

def test_unknown_operator_lists_the_operators():
    problem = one_problem({"and": [{"in": {"organ": ["liver"]}}]})  # Guppy's AND and OR are upper case only
    assert problem.field == "filter.and"
    assert "did you mean AND" in problem.message
    assert all(op in problem.message for op in OPERATORS)


def test_unknown_field_suggests_close_matches():
    problem = one_problem({"AND": [{"=": {"alive": True}}, {"IN": {"orgn": ["liver"]}}]})
    assert problem.field == "filter.AND[1].IN.orgn"
    assert "did you mean organ" in problem.message


def test_unknown_field_without_close_matches_lists_the_fields():
    problem = one_problem({"=": {"zzzz": "x"}})
    assert problem.field == "filter.=.zzzz"
    assert "known fields: age_years, alive, code" in problem.message


def test_a_record_field_outside_nested_points_to_nested():
    problem = one_problem({"=": {"samples.organ": "liver"}})
    assert problem.field == "filter.=.samples.organ" and '"nested": {"path": "samples"' in problem.message


@pytest.mark.parametrize("clause, path, allowed", [
    ({">=": {"age_years": "30"}}, "filter.>=.age_years", "a whole number"),
    ({"=": {"age_years": 30.5}}, "filter.=.age_years", "a whole number"),
    ({"=": {"weight": "heavy"}}, "filter.=.weight", "a number"),
    ({"=": {"alive": "true"}}, "filter.=.alive", "true or false"),
    ({"=": {"alive": 1}}, "filter.=.alive", "true or false"),
    ({"=": {"organ": 3}}, "filter.=.organ", "a string"),
    ({">": {"visit": "31/01/2024"}}, "filter.>.visit", "ISO 8601 date"),
    ({"IN": {"age_years": [30, "forty"]}}, "filter.IN.age_years[1]", "a whole number"),
    ({"IN": {"organ": "liver"}}, "filter.IN.organ", "non-empty list of values"),
    ({"=": {"organ": ["liver"]}}, "filter.=.organ", "use IN"),
    ({"=": {"tissue": "x"}}, "filter.=.tissue", "search"),
    ({"=": {"samples": "x"}}, "filter.=.samples", "nested"),
])
def test_a_value_of_the_wrong_type_names_what_is_allowed(clause, path, allowed):
    problem = one_problem(clause)
    assert problem.field == path
    assert allowed in problem.message


@pytest.mark.parametrize("clause, path", [({">": {"organ": "a"}}, "filter.>.organ"),
                                          ({"<=": {"alive": True}}, "filter.<=.alive"),
                                          ({">=": {"tags": "a"}}, "filter.>=.tags")])
def test_range_operators_refuse_keyword_and_boolean_fields(clause, path):
    problem = one_problem(clause)
    assert problem.field == path and "integer, number and date fields" in problem.message


@pytest.mark.parametrize("clause, path", [({"AND": []}, "filter.AND"), ({"OR": []}, "filter.OR"),
                                          ({"OR": {"=": {"organ": "x"}}}, "filter.OR"),
                                          ({"IN": {"organ": []}}, "filter.IN.organ")])
def test_empty_and_or_in_are_refused(clause, path):
    problem = one_problem(clause)
    assert problem.field == path and "non-empty list" in problem.message


def test_a_clause_with_two_keys_is_refused():
    problem = one_problem({"AND": [{"=": {"organ": "liver"}, ">=": {"age_years": 3}}]})
    assert problem.field == "filter.AND[0]"
    assert "one operator key" in problem.message and '{"AND": [...]}' in problem.message


def test_a_leaf_naming_two_fields_is_refused():
    problem = one_problem({"=": {"organ": "liver", "code": "x"}})
    assert problem.field == "filter.=" and "one field" in problem.message


def test_search_refuses_fields_that_are_not_text_or_keyword():
    problem = one_problem({"search": {"keyword": "3", "fields": ["tissue", "age_years"]}})
    assert problem.field == "filter.search.fields[1]"
    assert "searchable: code, organ, sites, tags, tissue" in problem.message


def test_search_needs_a_keyword_and_fields():
    found = problems({"search": {"keyword": "", "where": 1}})
    assert [p.field for p in found] == ["filter.search.where", "filter.search.keyword", "filter.search.fields"]
    assert "searchable: code" in found[2].message


def test_nested_on_a_field_that_is_not_nested_names_the_nested_fields():
    problem = one_problem({"nested": {"path": "organ", "=": {"organ": "liver"}}})
    assert problem.field == "filter.nested.path" and "nested fields: samples" in problem.message


def test_nested_needs_a_path_and_one_clause():
    problem = one_problem({"nested": {"path": "samples"}})
    assert problem.field == "filter.nested" and '"path"' in problem.message


def test_problems_inside_nested_are_located_and_resolved_against_the_records():
    problem = one_problem({"nested": {"path": "samples", "AND": [{"=": {"orgn": "liver"}}]}})
    assert problem.field == "filter.nested.AND[0].=.orgn"
    assert "in the records of samples" in problem.message and "organ" in problem.message


def test_depth_over_sixteen_is_refused():
    clause = {"=": {"organ": "liver"}}
    for _ in range(15):
        clause = {"AND": [clause]}
    parse(clause, FIELDS)  # sixteen levels
    problem = one_problem({"OR": [clause]})
    assert problem.field == "filter.OR[0]" + ".AND[0]" * 15 and "at most 16 levels" in problem.message


def test_every_problem_is_reported_at_once():
    with pytest.raises(Invalid) as caught:
        parse({"AND": [{"IN": {"orgn": ["liver"]}}, {">=": {"age_years": "x"}}, {"nested": {"path": "organ", "=": {
            "a": 1}}}]}, FIELDS)
    assert [p.field for p in caught.value.problems] == [
        "filter.AND[0].IN.orgn", "filter.AND[1].>=.age_years", "filter.AND[2].nested.path"]
    assert caught.value.message.startswith("invalid filter: filter.AND[0].IN.orgn: unknown field")
    assert caught.value.message.endswith("(and 2 more)") and caught.value.code == "invalid"


def test_json_text_is_accepted_and_bad_json_is_a_problem():
    assert parse('{"=": {"organ": "liver"}}', FIELDS) == Compare("=", FIELDS["organ"], "liver")
    assert parse("", FIELDS) is None and parse({}, FIELDS) is None and parse(None, FIELDS) is None
    problem = one_problem('{"=": {"organ": ')
    assert problem.field == "filter" and "not valid JSON" in problem.message


def test_a_clause_that_is_not_an_object_is_refused():
    problem = one_problem({"AND": [["organ", "liver"]]})
    assert problem.field == "filter.AND[0]" and "JSON object with one operator key" in problem.message


def test_fields_check_their_kind():
    with pytest.raises(ValueError, match="string"):
        Field("x", "string")


# -- the tree, fields_in and own-facet exclusion ----------------------------------------------

def test_parse_builds_the_tree():
    node = parse({"AND": [{"IN": {"organ": ["liver", "liver", "kidney"]}}, {"OR": [{"search": {
        "keyword": "hip", "fields": ["tissue"]}}, {"nested": {"path": "samples", "=": {"organ": "brain"}}}]}]}, FIELDS)
    assert node == And((In(FIELDS["organ"], ("liver", "kidney")), Or((
        Search("hip", (FIELDS["tissue"],)), Nested(FIELDS["samples"], Compare("=", SAMPLE["organ"], "brain"))))))


def test_fields_in_names_record_fields_by_path():
    node = parse({"AND": [{"=": {"organ": "liver"}}, {"search": {"keyword": "x", "fields": ["tissue", "code"]}},
                          {"nested": {"path": "samples", "=": {"preparation": "FFPE"}}}]}, FIELDS)
    assert fields_in(node) == {"organ", "tissue", "code", "samples.preparation"}
    assert fields_in(None) == set()


def test_without_field_drops_the_top_level_clauses_on_that_field_only():
    node = parse({"AND": [{"IN": {"organ": ["liver"]}}, {">=": {"age_years": 30}},
                          {"OR": [{"=": {"organ": "heart"}}, {"=": {"organ": "brain"}}]},
                          {"OR": [{"=": {"organ": "heart"}}, {"=": {"alive": True}}]}]}, FIELDS)
    assert without_field(node, "organ") == parse({"AND": [{">=": {"age_years": 30}}, {"OR": [
        {"=": {"organ": "heart"}}, {"=": {"alive": True}}]}]}, FIELDS)
    assert without_field(node, "weight") == node


def test_without_field_unwraps_or_empties():
    only = parse({"IN": {"organ": ["liver"]}}, FIELDS)
    assert without_field(only, "organ") is None
    assert without_field(only, "alive") == only
    pair = parse({"AND": [{"IN": {"organ": ["liver"]}}, {"=": {"alive": True}}]}, FIELDS)
    assert without_field(pair, "organ") == parse({"=": {"alive": True}}, FIELDS)
    assert without_field(None, "organ") is None


def test_without_field_reaches_into_and_inside_and_and_keeps_mixed_search():
    node = parse({"AND": [{"AND": [{"=": {"organ": "liver"}}, {"=": {"alive": True}}]},
                          {"search": {"keyword": "x", "fields": ["organ", "code"]}}]}, FIELDS)
    assert without_field(node, "organ") == parse({"AND": [{"=": {"alive": True}}, {"search": {
        "keyword": "x", "fields": ["organ", "code"]}}]}, FIELDS)


def test_without_field_on_nested_paths():
    node = parse({"AND": [{"nested": {"path": "samples", "=": {"organ": "liver"}}},
                          {"nested": {"path": "samples", "AND": [{"=": {"organ": "liver"}},
                                                                 {"=": {"preparation": "FFPE"}}]}}]}, FIELDS)
    kept = parse({"nested": {"path": "samples", "AND": [{"=": {"organ": "liver"}}, {"=": {"preparation": "FFPE"}}]}},
                 FIELDS)
    assert without_field(node, "samples.organ") == kept
    assert without_field(node, "samples") is None


def test_own_facet_exclusion_keeps_a_facets_unselected_values_counted(db):
    node = parse({"AND": [{"IN": {"organ": ["liver"]}}, {"=": {"alive": True}}]}, FIELDS)
    where, params = to_sql(without_field(node, "organ"))
    counts = dict(db.execute(f"SELECT organ::VARCHAR, count(*) FROM docs WHERE {where} GROUP BY 1", params).fetchall())
    assert counts == {"liver": 2, "brain": 1, "kidney": 1}  # the organ facet still offers brain and kidney
    assert sql_ids(db, node) == {1, 9}


# -- differential: both compilers against a reference evaluator -------------------------------

RANGE_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
POOLS = {
    "organ": ["liver", "kidney", "brain", "heart", "lung"], "age_years": [18, 29, 30, 45, 61, 100],
    "weight": [50, 60.25, 70.5, 72.0], "alive": [True, False], "visit": ["2021-07-04", "2024-01-01", "2024-01-31"],
    "code": ["a_b", "ab", "100%", "x"], "tags": ["a", "b", "B", "c", "x%y"], "scores": [0, 3, 5, 10],
    "sites": ["liver", "kidney", "heart", "lung"], "preparation": ["FFPE", "frozen", "fresh"],
}
KEYWORDS = ["hippo", "CORTEX", "a_b", "%", "_", "b", "liv", "ffp", "x%y", "a\\b", "cortex fr", "hippocampus s",
            "ampus", "cortex"]


def values_of(value) -> list:
    """The values a field holds: none for NULL, the non-NULL elements of a list."""
    if value is None:
        return []
    return [v for v in value if v is not None] if isinstance(value, list) else [value]


def same(held, wanted) -> bool:
    return held == (D(wanted) if isinstance(held, date) else wanted)


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def phrase_prefix(text: str, keyword: str) -> bool:
    """Elasticsearch's match_phrase_prefix with the standard analyzer: the words in order, the last as a prefix."""
    held, wanted = words(text), words(keyword)
    if not wanted:
        return False
    *whole, last = wanted
    return any(held[i:i + len(whole)] == whole and len(held) > i + len(whole) and held[i + len(whole)].startswith(last)
               for i in range(len(held)))


def reference(clause: dict, doc: dict, fields: dict, es: bool) -> bool:
    """The language's meaning, from docs/filters.md; es=True reads text-field search as Elasticsearch does."""
    (op, body), = clause.items()
    if op in ("AND", "OR"):
        return (all if op == "AND" else any)(reference(c, doc, fields, es) for c in body)
    if op == "nested":
        inner = {k: v for k, v in body.items() if k != "path"}
        return any(reference(inner, r, fields[body["path"]].nested, es) for r in values_of(doc[body["path"]]))
    if op == "search":
        keyword = body["keyword"]
        return any(phrase_prefix(v, keyword) if es and fields[name].kind == "text" else keyword.lower() in v.lower()
                   for name in body["fields"] for v in values_of(doc[name]))
    (name, value), = body.items()
    held = values_of(doc[name])
    hit = lambda wanted: not held if wanted == MISSING else any(same(v, wanted) for v in held)
    if op in ("=", "!=", "IN"):
        return any(map(hit, value)) if op == "IN" else hit(value) == (op == "=")
    return any(RANGE_OPS[op](v, D(value) if isinstance(v, date) else value) for v in held)


def es_holds(query: dict, doc: dict) -> bool:
    """A small evaluator of the Query DSL subset to_es emits, over a document with dotted nested names."""
    (kind, body), = query.items()
    if kind == "match_all":
        return True
    if kind == "bool":
        should = body.get("should")
        return (all(es_holds(q, doc) for q in body.get("filter", []))
                and not any(es_holds(q, doc) for q in body.get("must_not", []))
                and (should is None or sum(es_holds(q, doc) for q in should) >= body["minimum_should_match"]))
    if kind == "nested":
        path = body["path"]
        return any(es_holds(body["query"], {**doc, **{f"{path}.{k}": v for k, v in record.items()}})
                   for record in values_of(doc.get(path)))
    if kind == "exists":
        return bool(values_of(doc.get(body["field"])))
    (name, spec), = body.items()
    held = values_of(doc.get(name))
    if kind == "term":
        return any(same(v, spec) for v in held)
    if kind == "terms":
        return any(same(v, w) for v in held for w in spec)
    if kind == "range":
        (bound, value), = spec.items()
        return any(RANGE_OPS[{"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[bound]](
            v, D(value) if isinstance(v, date) else value) for v in held)
    if kind == "wildcard":
        return any(wildcard(spec, v) for v in held)
    assert kind == "match_phrase_prefix", kind
    return any(phrase_prefix(v, spec) for v in held)


def wildcard(spec: dict, value: str) -> bool:
    """Elasticsearch's wildcard query: * any run, ? one character, backslash escapes."""
    pattern = re.sub(r"\\(.)|(\*)|(\?)|(.)", lambda m: re.escape(m[1]) if m[1] else ".*" if m[2] else
                     "." if m[3] else re.escape(m[4]), spec["value"])
    flags = re.IGNORECASE if spec.get("case_insensitive") else 0
    return re.fullmatch(pattern, value, flags | re.DOTALL) is not None


def random_clause(rng: random.Random, fields: dict, depth: int = 0) -> dict:
    roll = rng.random()
    if depth < 3 and roll < 0.25:
        return {rng.choice(["AND", "OR"]): [random_clause(rng, fields, depth + 1) for _ in range(rng.randint(1, 3))]}
    if "samples" in fields and roll < 0.4:
        return {"nested": {"path": "samples", **random_clause(rng, SAMPLE, depth + 1)}}
    searchable = [n for n, f in fields.items() if f.kind in ("keyword", "text") and not f.nested]
    if roll < 0.5:
        return {"search": {"keyword": rng.choice(KEYWORDS), "fields": rng.sample(searchable, rng.randint(1, 2))}}
    name = rng.choice([n for n in fields if n != "tissue"])
    field = fields[name]
    if field.nested or rng.random() < 0.1:
        return {rng.choice(["=", "!="]): {name: MISSING}}
    ops = ["=", "!=", "IN"] + (list(RANGE_OPS) if field.kind in ("integer", "number", "date") else [])
    op = rng.choice(ops)
    if op == "IN":
        return {"IN": {name: rng.sample(POOLS[name] + [MISSING], rng.randint(1, 3))}}
    return {op: {name: rng.choice(POOLS[name])}}


def test_both_compilers_agree_with_the_reference_on_random_filters(db):
    rng = random.Random(20240131)
    for _ in range(400):
        clause = random_clause(rng, FIELDS)
        node = parse(clause, FIELDS)
        assert sql_ids(db, node) == {d["id"] for d in DOCS if reference(clause, d, FIELDS, es=False)}, clause
        query = to_es(node)
        assert {d["id"] for d in DOCS if es_holds(query, d)} == {
            d["id"] for d in DOCS if reference(clause, d, FIELDS, es=True)}, clause
        for name in fields_in(node):  # own-facet exclusion only ever widens the selection
            assert sql_ids(db, node) <= sql_ids(db, without_field(node, name)), (clause, name)


def test_a_list_of_records_may_carry_any_kind(db):
    fields = {**FIELDS, "samples": Field("samples", "keyword", True, SAMPLE)}  # the shape flatten.py makes
    assert sql_ids(db, parse({"=": {"samples": MISSING}}, fields)) == {2, 3, 8, 10}
    assert sql_ids(db, parse({"nested": {"path": "samples", "=": {"organ": "liver"}}}, fields)) == {1, 4, 6, 9}
    assert one_problem({"search": {"keyword": "x", "fields": ["samples"]}}).field == "filter.search.fields[0]"
