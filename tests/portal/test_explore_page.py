"""The explorer page through Dash's own callback endpoint, as the page's script calls it,
against a real metadata service: hand-edited URLs, facet edits, charts under the whole filter."""
import json
from urllib.parse import parse_qs

import pytest

from tests.portal.layout import graphs

HUMANS = {"IN": {"species": ["human"]}}


@pytest.fixture
def analyst(portal, sign_in, demo):
    sign_in(portal, "ana")
    return portal


def state_input(**state) -> list[dict]:
    return [{"id": "explore-state", "property": "data", "value": {"kind": "case", **state}}]


def open_page(client, dash_call, search: str) -> str:
    """The page the pages router renders for a URL's query string, as text."""
    answer = dash_call(client, "_pages_content.children", [
        {"id": "_pages_location", "property": "pathname", "value": "/explore"},
        {"id": "_pages_location", "property": "search", "value": search}])
    return json.dumps(answer)


def test_a_good_link_renders_the_explorer_with_its_state(analyst, dash_call):
    page = open_page(analyst, dash_call, "?tab=file&filter=" + json.dumps(HUMANS) + "&sort=-file_size")
    assert '"explore-tabs"' in page and '"file"' in page
    assert json.dumps({"IN": {"species": ["human"]}}) in page and "file_size" in page


@pytest.mark.parametrize("search, message", [
    ("?tab=case&filter={broken", "not valid JSON"),
    ("?tab=case&page=zero", "is not a page number"),
    ("?tab=samples", "not a document kind"),
])
def test_a_link_that_cannot_be_read_shows_what_is_wrong_and_a_way_back(analyst, dash_call, search, message):
    page = open_page(analyst, dash_call, search)
    assert message in page and "reset view" in page and "Traceback" not in page


@pytest.mark.parametrize("filter_, message", [
    ({"IN": {"orgn": ["liver"]}}, "unknown field 'orgn'; did you mean organ"),
    ({">=": {"age_years": "thirty"}}, "age_years"),
    ({"Eq": {"species": "human"}}, "did you mean eq"),
])
def test_the_services_message_is_shown_for_a_filter_it_refuses(analyst, dash_call, filter_, message):
    answer = json.dumps(dash_call(analyst, "explore-results.children", state_input(filter=filter_)))
    assert message in answer and "reset view" in answer and "Traceback" not in answer


def test_a_page_past_the_end_says_so(analyst, dash_call):
    answer = json.dumps(dash_call(analyst, "explore-results.children", state_input(page=40)))
    assert "Page 41 is past the end" in answer and "first page" in answer


def test_the_table_shows_the_services_page(analyst, dash_call, admin):
    answer = dash_call(analyst, "explore-results.children", state_input(filter=HUMANS, sort=[["age_years", True]]))
    table = answer["response"]["explore-results"]["children"][0]["props"]
    total, docs = admin.hits("case", HUMANS, sort=[("age_years", True)], limit=50)
    assert [row["submitter_id"] for row in table["data"]] == [d["submitter_id"] for d in docs]
    assert answer["response"]["explore-total"]["children"].startswith(f"{total} cases")


def test_facets_count_under_the_filter_but_not_their_own_selection(analyst, dash_call, admin):
    answer = json.dumps(dash_call(analyst, "explore-facets.children", state_input(filter=HUMANS)))
    assert '"value": "mouse"' in answer  # the species facet still offers what is not ticked
    sexes = admin.facets("case", ["sex"], HUMANS).facets[0].buckets
    assert all(f'"count": "{b.count}"' in answer for b in sexes)


def test_ticking_a_value_changes_the_address_once(analyst, dash_call):
    ids = {"type": "explore-term", "kind": "case", "field": "species"}
    ticked, named = [[{"id": ids, "property": "value", "value": ["human"]}]], [{"id": ids, "property": "id", "value": ids}]

    def tick(current: dict):
        return dash_call(analyst, "explore-url.search", ticked,
                         state=[named, {"id": "explore-state", "property": "data", "value": current}])

    def address(current: dict) -> dict:
        return parse_qs(tick(current)["response"]["explore-url"]["search"].lstrip("?"))

    assert address({"kind": "case", "page": 3}) == address({"kind": "case"})  # back to the first page
    assert json.loads(address({"kind": "case"})["filter"][0]) == HUMANS
    assert tick({"kind": "case", "filter": HUMANS}) is None  # a re-rendered checklist changes nothing
    assert tick({"kind": "file"}) is None  # a checklist of the tab just left is ignored


def test_the_view_follows_the_address_back_and_forward(analyst, dash_call):
    """Back/Forward restore an address: the store, the search box and the tab follow it."""
    def follow(search: str, current: dict):
        return dash_call(analyst, "explore-state.data", [{"id": "explore-url", "property": "search", "value": search}],
                         state=[{"id": "explore-state", "property": "data", "value": current}])

    answer = follow("?tab=file&search=liver&page=2&sort=-file_size", {"kind": "case"})["response"]
    assert answer["explore-state"]["data"]["kind"] == "file" and answer["explore-state"]["data"]["page"] == 1
    assert answer["explore-search"]["value"] == "liver" and answer["explore-tabs"]["value"] == "file"
    assert follow("?tab=case", {"kind": "case"}) is None  # the view already shows it
    assert follow("?tab=case&page=x", {"kind": "case"}) is None  # the router shows what is wrong


def test_the_charts_count_under_the_whole_filter(analyst, dash_call, admin):
    answer = dash_call(analyst, "explore-charts.children", state_input(filter=HUMANS, by="species"))
    charts = graphs(answer["response"]["explore-charts"]["children"])
    counts = charts["explore-counts"]["data"][0]
    total = admin.hits("case", HUMANS, limit=1)[0]
    assert counts["x"] == ["human"] and counts["y"] == [total]  # not mouse and rat, which the facet offers
    ages = admin.histogram("case", "age_years", HUMANS, exclude_own=False)
    assert sum(charts["explore-histogram"]["data"][0]["y"]) == ages.count


def test_tiered_counts_are_marked_and_explained(portal, sign_in, demo, dash_call, admin):
    """ana without a grant on one project: with a limit set, its documents count in the facets
    (or show as "<N") with a note, and never in the table."""
    project = sorted(node["submitter_id"] for node in admin.nodes("project"))[0]
    admin.set_grant("ana", project, "")
    sign_in(portal, "ana")
    hidden = json.dumps(dash_call(portal, "explore-facets.children", state_input()))
    assert "explore-tier-note" not in hidden and f'"{project}"' not in hidden
    admin.set_tier_access_limit(10 ** 6)  # more than any value's count: every hidden share is "<N"
    tiered = json.dumps(dash_call(portal, "explore-facets.children", state_input()))
    assert "explore-tier-note" in tiered and "Some counts come from projects you cannot read" in tiered
    # project_id is not tier-visible by default, and no value of the hidden project alone is named
    assert f'"{project}"' not in tiered and '"5 + <1,000,000"' in tiered
    readable = admin.hits("case", limit=1)[0] - admin.hits("case", {"IN": {"project_id": [project]}}, limit=1)[0]
    rows = json.dumps(dash_call(portal, "explore-results.children", state_input()))
    assert f"{readable:,} cases" in rows and f'"{project}"' not in rows


def test_open_in_jupyter_links_the_view_as_it_is(analyst, dash_call):
    answer = dash_call(analyst, "explore-exports.children", state_input(kind="file", filter=HUMANS, search="liver"))
    (link,) = [c["props"] for c in answer["response"]["explore-exports"]["children"]
               if c["props"].get("id") == "explore-jupyter"]
    path, _, query = link["href"].partition("?")
    assert path == "/jupyter/open/view"
    assert parse_qs(query) == {"tab": ["file"], "filter": [json.dumps(HUMANS, separators=(",", ":"))],
                               "search": ["liver"]}


def test_open_cohort_in_jupyter_opens_the_picked_cohort_and_a_saved_one_is_picked(analyst, dash_call):
    def link(picked):
        answer = dash_call(analyst, "explore-cohort-jupyter.href",
                           [{"id": "explore-cohort-list", "property": "value", "value": picked}])
        return answer["response"]["explore-cohort-jupyter"]

    assert link("3f2a-id") == {"href": "/jupyter/open/cohort/3f2a-id", "className": "button",
                               "title": "A starter notebook on this cohort"}
    assert link(None)["href"] is None and "disabled" in link(None)["className"]
    saved = dash_call(analyst, "explore-cohort-list.options",
                      [{"id": "explore-cohort-saved", "property": "data", "value": "3f2a-id"}])
    assert saved["response"]["explore-cohort-list"]["value"] == "3f2a-id"  # ready for "Open cohort in Jupyter"
