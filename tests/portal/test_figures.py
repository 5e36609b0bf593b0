"""Figures and widgets of the explorer, built from service answers without a browser."""
import json

import plotly.graph_objects as go
from dash import dash_table, dcc, html

from metadata.idl import metadata_thrift as T
from portal.controls import Choices
from portal.explorer import figures
from portal.explorer.state import State


def stats(count=10, missing=0, low=0.0, high=90.0, bins=((0, 30, 4), (30, 60, 5), (60, 90, 1))):
    return T.NumericStats(field="age_years", count=count, missing=missing, min=low, max=high, mean=33.0, sum=330.0,
                          bins=[T.HistogramBin(low=a, high=b, count=c) for a, b, c in bins])


def find(component, predicate):
    """Every component in a tree that predicate accepts."""
    found = [component] if predicate(component) else []
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if hasattr(child, "to_plotly_json"):
            found += find(child, predicate)
    return found


def test_term_options_show_counts_no_value_last_and_keep_selected_values():
    options = figures.term_options([("__missing__", 3), ("liver", 9), ("kidney", 2)], ["brain", "liver"])
    assert [o["value"] for o in options] == ["liver", "kidney", "brain", "__missing__"]
    labels = [[o["label"], o["count"]] for o in options]
    assert labels == [["liver", "9"], ["kidney", "2"], ["brain", "0"], ["no value", "3"]]


def test_a_term_facet_is_a_fieldset_of_checkboxes_named_by_kind_and_field():
    facet = figures.term_facet("case", "organs", [("liver", 1200)], ["liver"], other=5, label="Organs")
    boxes = find(facet, lambda c: isinstance(c, Choices))[0]
    assert boxes.id == {"type": "explore-term", "kind": "case", "field": "organs"}
    assert (boxes.legend, boxes.value, boxes.options[0]["count"]) == ("Organs", ["liver"], "1,200")
    assert "5 more" in str(facet)


def test_slider_bounds_are_round():
    assert figures.slider_bounds(0.15, 82, integer=False) == (0.1, 82.0, 0.1)
    assert figures.slider_bounds(0, 3_708_016, integer=True) == (0, 3_710_000, 10_000)
    assert figures.slider_bounds(1, 7, integer=True) == (1, 7, 1)
    assert figures.slider_bounds(5, 5, integer=True) == (5, 5, 1)


def test_a_range_facet_shows_the_filter_bounds_over_a_histogram():
    facet = figures.range_facet("case", "age_years", stats(missing=2), {">=": {"age_years": 30}}, integer=True)
    slider = find(facet, lambda c: isinstance(c, dcc.RangeSlider))[0]
    assert (slider.min, slider.max, slider.value) == (0, 90, [30, 90])
    assert slider.id == {"type": "explore-range", "kind": "case", "field": "age_years"}
    graph = find(facet, lambda c: isinstance(c, dcc.Graph))[0]
    assert graph.figure["data"][0]["marker"]["color"] == [figures.ACCENT, figures.ACCENT, figures.ACCENT]
    assert "2 without a value" in str(facet)


def test_a_range_facet_without_values_says_so():
    facet = figures.range_facet("case", "age_years", stats(count=0, bins=()), None, integer=True)
    assert not find(facet, lambda c: isinstance(c, dcc.RangeSlider)) and "no values" in str(facet)


def test_the_mini_histogram_greys_bins_outside_the_range():
    colors = figures.mini_histogram(stats(), [35, 50])["data"][0]["marker"]["color"]
    assert colors == [figures.MUTED, figures.ACCENT, figures.MUTED]


def test_counts_chart_as_bar_or_pie_with_no_value_and_other():
    bar = figures.counts_figure("organs", [("liver", 9), ("__missing__", 1)], 4, "bar")
    assert isinstance(bar.data[0], go.Bar)
    assert list(bar.data[0].x) == ["liver", "no value", "other values"] and list(bar.data[0].y) == [9, 1, 4]
    pie = figures.counts_figure("organs", [("liver", 9)], 0, "pie")
    assert isinstance(pie.data[0], go.Pie) and list(pie.data[0].values) == [9]


def test_charts_have_axis_titles_with_units_and_whole_number_counts():
    bar = figures.counts_figure("data_format", [("imzML", 3), ("ibd", 1)], 0, "bar", "Data format", "files")
    assert bar.layout.title.text == "Files by data format"
    assert bar.layout.xaxis.title.text == "Data format" and bar.layout.yaxis.title.text == "Number of files"
    assert (bar.layout.yaxis.dtick, bar.layout.yaxis.tickformat) == (1, ",d")  # no 0.5 ticks under a few
    many = figures.counts_figure("organs", [("liver", 900)], 0, "bar")
    assert many.layout.yaxis.dtick is None and many.layout.yaxis.tickformat == ",d"
    ages = figures.histogram_figure("age_years", stats(), "Age (years)", "cases", "years")
    assert ages.layout.xaxis.title.text == "Age (years)" and ages.layout.yaxis.title.text == "Number of cases"
    sizes = figures.histogram_figure("file_size", stats(bins=((0, 250_000, 9), (250_000, 466_000, 1))),
                                     "File size", "files", "bytes")
    assert sizes.layout.xaxis.title.text == "File size"  # the ticks carry the unit, in the KB of 1,024 the table shows
    assert list(sizes.layout.xaxis.ticktext) == ["0 B", "100 KB", "200 KB", "300 KB", "400 KB"]
    assert list(sizes.layout.xaxis.tickvals) == [0, 102_400, 204_800, 307_200, 409_600]
    assert figures.size_ticks(0, 3.5 * 1024 ** 2) == [0, 1024 ** 2, 2 * 1024 ** 2, 3 * 1024 ** 2]


def test_histogram_figure_has_a_bar_per_bin_and_the_mean():
    figure = figures.histogram_figure("age_years", stats())
    assert list(figure.data[0].y) == [4, 5, 1] and "mean 33" in figure.layout.title.text


def test_chips_describe_each_clause_and_the_search():
    state = State(filter={"AND": [{"IN": {"organ": ["liver", "__missing__"]}}, {">=": {"age_years": 30}},
                                  {"OR": [{"=": {"a": 1}}, {"=": {"b": 2}}]}]}, search="hippo")
    chips = figures.chips(state, {"age_years": "Age (years)"})
    texts = [c.children[0].children for c in chips[:-1]]
    assert texts == ["Organ is liver or no value", "Age (years) ≥ 30", '{"OR":[{"=":{"a":1}},{"=":{"b":2}}]}',
                     "contains “hippo”"]
    assert figures.describe({"<=": {"file_size": 3_708_016}}, {"file_size": "File size"}) == "File size ≤ 3.5 MB"
    assert figures.describe({"IN": {"data_format": ["imzML"]}}) == "Data format is imzML"
    assert [c.children[1].id["index"] for c in chips[:-1]] == [0, 1, 2, -1]
    assert chips[-1].id == "explore-clear"
    assert "No filters" in str(figures.chips(State()))


def test_table_rows_flatten_lists_and_count_records():
    rows = figures.table_rows([{"organs": ["liver", "kidney"], "samples": [{"organ": "x"}], "age": None, "n": 3}],
                              ["organs", "samples", "age", "n"])
    assert rows == [{"organs": "liver, kidney", "samples": "1 records", "age": "", "n": 3}]


def test_table_cells_show_sizes_dates_and_whole_numbers_for_people():
    rows = figures.table_rows([{"file_size": 3_708_016, "total": 5.0, "day": "2024-03-05", "name": "a"}],
                              ["file_size", "total", "day", "name"], {"file_size": "bytes", "day": "date"})
    assert rows == [{"file_size": "3.5 MB", "total": 5, "day": "5 Mar 2024", "name": "a"}]
    assert figures.readable_date("2024-03-05T14:02:11Z") == "5 Mar 2024 14:02 UTC"
    assert figures.readable_date("not a date") == "not a date"


def test_the_results_table_is_paged_and_sorted_by_the_service():
    table = figures.results_table(["submitter_id", "age_years"], [], 120, State(page=2, sort=(("age_years", True),)),
                                  {"age_years": "Age (years)"})
    assert isinstance(table, dash_table.DataTable)
    assert [c["name"] for c in table.columns] == ["Submitter id", "Age (years)"]
    assert (table.page_action, table.sort_action, table.page_size) == ("custom", "custom", 50)
    assert (table.page_current, table.page_count) == (2, 3)
    assert table.sort_by == [{"column_id": "age_years", "direction": "desc"}]
    assert figures.total_line(120, "Cases", 2) == "120 cases · page 3 of 3"
    assert figures.total_line(1, "Files", 0) == "1 file · page 1 of 1"


def test_a_message_lists_issues_and_ways_back():
    box = figures.message("invalid filter", [("filter.IN.orgn", "unknown field 'orgn'")], [("reset view", "/explore")])
    assert box.id == "explore-problem"
    links = find(box, lambda c: isinstance(c, dcc.Link))
    assert [(link.children, link.href) for link in links] == [("reset view", "/explore")]
    assert find(box, lambda c: isinstance(c, html.Code))[0].children == "filter.IN.orgn"


def test_export_links_carry_the_view_but_not_its_page():
    links = figures.export_links(State(kind="file", filter={"=": {"organ": "liver"}}, page=3, chart="pie"), "Files")
    hrefs = [link.href for link in links]
    assert hrefs[0].startswith("/export/manifest.tsv?tab=file&filter=") and "page" not in hrefs[0]
    assert hrefs[1].startswith("/export/manifest.json?") and hrefs[2].startswith("/export/table.tsv?")
    assert links[2].children == "Files table (TSV)"


def test_numbers_for_people():
    assert figures.number("file_size", 3_708_016) == "3.5 MB"
    assert figures.number("age_years", 1234) == "1,234" and figures.number("age_years", 0.25) == "0.25"
    assert figures.title("samples.organ") == "Samples › organ"


def test_tiered_counts_read_as_fewer_than_the_limit():
    from portal.explorer.figures import count_label, term_options, tier_note

    assert [count_label(12), count_label(1234, 50), count_label(0, 50)] == ["12", "1,234 + <50", "<50"]
    options = term_options([("a", 3), ("b", 0)], [], {"b": 50})
    assert [o["count"] for o in options] == ["3", "<50"]
    assert "title" not in options[0] and "fewer than 50" in options[1]["title"]
    note = json.dumps(tier_note(50, 120, 20).to_plotly_json(), default=lambda c: c.to_plotly_json())
    assert "where they reach 50 documents (120 in all, 20 you can read)" in note
    note = json.dumps(tier_note(50, 120, 20, 10).to_plotly_json(), default=lambda c: c.to_plotly_json())
    assert "where they reach 50 documents, rounded down to multiples of 10 (120 in all" in note
    note = json.dumps(tier_note(50, 20, 20, 10, "the filter uses submitter_id, which is not tier-visible")
                      .to_plotly_json(), default=lambda c: c.to_plotly_json())
    assert "Counts cover only the projects you can read" in note and "submitter_id" in note
