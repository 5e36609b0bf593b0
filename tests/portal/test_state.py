"""The explorer's view state: URL round trips, hand-edited URLs, and the filter edits widgets make."""
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from portal.explorer import state as st
from portal.explorer.state import BadQuery, State


def query_of(state: State) -> dict:
    """The state's query string parsed as Dash pages and Flask hand it to us."""
    return {k: v[0] for k, v in parse_qs(urlsplit(st.to_query(state)).query).items()}


def test_a_state_survives_the_url_round_trip():
    state = State(kind="file", filter={"AND": [{"IN": {"organ": ["liver", "__missing__"]}}, {">=": {"file_size": 10}}]},
                  search="ak-", sort=(("file_size", True), ("file_name", False)), page=2, chart="pie", by="organ",
                  hist="file_size")
    assert st.from_query(query_of(state)) == state
    assert st.from_data(json.loads(json.dumps(st.to_data(state)))) == state


def test_defaults_stay_out_of_the_url():
    assert st.to_query(State()) == "?tab=case"
    assert st.from_query({}) == State()


def test_the_filter_travels_as_compact_json():
    text = st.to_query(State(filter={"=": {"organ": "liver"}}))
    assert "filter=%7B%22%3D%22%3A%7B%22organ%22%3A%22liver%22%7D%7D" in text  # as docs/filters.md shows


@pytest.mark.parametrize("query, message", [
    ({"filter": "{broken"}, "filter: not valid JSON"),
    ({"filter": "[1, 2]"}, "must be a JSON object"),
    ({"page": "0"}, "pages start at 1"),
    ({"page": "two"}, "'two' is not a page number"),
    ({"chart": "donut"}, "use bar or pie"),
    ({"sort": "-"}, "names no field"),
    ({"tab": ["case", "file"]}, "given 2 times"),
])
def test_a_hand_edited_url_is_refused_with_what_is_wrong(query, message):
    with pytest.raises(BadQuery, match=message):
        st.from_query(query)


def test_an_empty_filter_means_everything():
    assert st.from_query({"filter": "{}"}).filter is None
    assert st.from_query({"filter": " "}).filter is None


def test_sort_and_page_read_from_the_url():
    state = st.from_query({"sort": "-age_years,submitter_id", "page": "3"})
    assert state.sort == (("age_years", True), ("submitter_id", False)) and state.page == 2


# -- term facets ----------------------------------------------------------------------------

def test_ticking_values_writes_one_in_clause_for_the_field():
    f = st.with_terms(None, "species", ["human"])
    assert f == {"IN": {"species": ["human"]}}
    f = st.with_terms(f, "sex", ["female"])
    assert f == {"AND": [{"IN": {"species": ["human"]}}, {"IN": {"sex": ["female"]}}]}
    f = st.with_terms(f, "species", ["human", "rat"])
    assert f == {"AND": [{"IN": {"species": ["human", "rat"]}}, {"IN": {"sex": ["female"]}}]}  # stays in place
    assert st.with_terms(f, "species", []) == {"IN": {"sex": ["female"]}}


def test_a_widget_reporting_the_current_selection_changes_nothing():
    f = {"AND": [{"=": {"species": "human"}}, {"OR": [{"=": {"sex": "male"}}, {"<": {"age_years": 2}}]}]}
    assert st.with_terms(f, "species", ["human"]) is f  # `=` is not rewritten to `IN`
    assert st.selected_terms(f, "species") == ["human"]
    assert st.selected_terms(f, "sex") == []  # an OR is not a facet's own selection


def test_other_clauses_on_the_field_are_left_alone():
    f = {"AND": [{"!=": {"species": "rat"}}, {"IN": {"species": ["human"]}}]}
    assert st.with_terms(f, "species", ["mouse"]) == {"AND": [{"!=": {"species": "rat"}}, {"IN": {"species": ["mouse"]}}]}


def test_a_record_field_is_selected_inside_nested():
    f = st.with_terms(None, "samples.organ", ["liver"])
    assert f == {"nested": {"path": "samples", "IN": {"organ": ["liver"]}}}
    assert st.selected_terms(f, "samples.organ") == ["liver"]
    assert st.with_terms(f, "samples.organ", []) is None


@pytest.mark.parametrize("text, kind, value", [
    ("30", "integer", 30), ("72.5", "number", 72.5), ("72", "number", 72), ("true", "boolean", True),
    ("liver", "keyword", "liver"), ("__missing__", "integer", "__missing__"),
])
def test_bucket_text_becomes_a_typed_filter_value(text, kind, value):
    assert st.typed(text, kind) == value and type(st.typed(text, kind)) is type(value)
    assert st.text(value) == text


# -- ranges ---------------------------------------------------------------------------------

def test_a_slider_writes_bounds_and_leaves_an_end_at_its_limit_open():
    f = st.with_slider(None, "age_years", [30, 90], 0, 90)
    assert f == {">=": {"age_years": 30}}
    f = st.with_slider(f, "age_years", [30, 60], 0, 90)
    assert f == {"AND": [{">=": {"age_years": 30}}, {"<=": {"age_years": 60}}]}
    assert st.with_slider(f, "age_years", [0, 90], 0, 90) is None


def test_a_slider_shows_bounds_clamped_and_an_untouched_one_changes_nothing():
    f = {"AND": [{">": {"age_years": 200}}, {"IN": {"sex": ["male"]}}]}
    shown = st.slider_value(f, "age_years", 0, 90)
    assert shown == [90, 90]
    assert st.with_slider(f, "age_years", shown, 0, 90) is f  # a re-render does not rewrite `> 200`
    assert st.selected_range(f, "age_years") == (200, None)


# -- search, tabs, chips --------------------------------------------------------------------

def test_the_search_box_adds_a_search_clause_and_cohorts_get_it_back():
    state = State(filter={"IN": {"sex": ["male"]}}, search="kidney")
    query = st.query_filter(state, ["submitter_id", "diagnosis"])
    assert query == {"AND": [{"IN": {"sex": ["male"]}},
                             {"search": {"keyword": "kidney", "fields": ["submitter_id", "diagnosis"]}}]}
    assert st.split_search(query, ["submitter_id", "diagnosis"]) == ({"IN": {"sex": ["male"]}}, "kidney")
    assert st.split_search(query, ["other"]) == (query, "")
    assert st.query_filter(State(), ["x"]) is None



def test_switching_tabs_keeps_the_clauses_the_other_kind_can_answer():
    state = State(filter={"AND": [{"IN": {"species": ["human"]}}, {"IN": {"organs": ["liver"]}},
                                  {"search": {"keyword": "x"}}]}, search="k", page=3, sort=(("species", False),))
    moved = st.switch_kind(state, "file", ["species", "organ", "file_name"])
    assert moved == State(kind="file", filter={"IN": {"species": ["human"]}}, search="k")
    assert st.switch_kind(state, "case", []) is state


def test_fields_of_a_clause():
    clause = {"OR": [{"=": {"a": 1}}, {"nested": {"path": "samples", "=": {"organ": "x"}}},
                     {"search": {"keyword": "k", "fields": ["b"]}}]}
    assert st.fields_of(clause) == {"a", "samples", "b"}


def test_removing_a_chip_drops_its_clause():
    f = {"AND": [{"=": {"a": 1}}, {"=": {"b": 2}}, {"=": {"c": 3}}]}
    assert st.without_clause(f, 1) == {"AND": [{"=": {"a": 1}}, {"=": {"c": 3}}]}
    assert st.without_clause({"=": {"a": 1}}, 0) is None


def test_an_edit_returns_to_the_first_page():
    assert st.edited(State(page=4), search="x") == State(search="x")
