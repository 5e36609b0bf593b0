"""The experiments browser's widgets and addresses as pure functions: no browser, no service."""
from __future__ import annotations

import pytest

from metadata.datafiles import imzml_pair
from metadata.dictionary import Dictionary
from portal.explorer import widgets as w

DICTIONARY = {name: t.as_json() for name, t in Dictionary.load().types.items()}


def node(type_name: str, submitter_id: str, links=(), id_=None, **properties) -> dict:
    return {"id": id_ or f"id-{submitter_id}", "type": type_name, "project_id": "p", "submitter_id": submitter_id,
            "properties": properties, "links": [{"name": n, "target_id": f"id-{t}", "target_submitter_id": t}
                                                for n, t in links]}


def text(component) -> str:
    """All the text inside a component tree."""
    if isinstance(component, (list, tuple)):
        return " ".join(text(c) for c in component)
    if isinstance(component, str):
        return component
    children = getattr(component, "children", None)
    return "" if children is None else text(children)


def rows(table) -> list[list[str]]:
    return [[text(cell) for cell in row.children] for row in table.children[1].children]


# -- addresses -------------------------------------------------------------------------------

@pytest.mark.parametrize("rest, route", [
    ("", ()), ("atlas-kidney", ("atlas-kidney",)), ("atlas-kidney/", ("atlas-kidney",)),
    ("atlas-kidney/experiment/ak-exp-001", ("atlas-kidney", "ak-exp-001")),
    ("a%20b/experiment/x%2Fy", ("a b", "x/y")),
    ("atlas-kidney/experiments/x", None), ("a/b", None), ("a/experiment/x/y", None),
])
def test_the_path_under_browse_names_a_level(rest, route):
    assert w.browse_route(rest) == route


def test_addresses_quote_names_so_they_route_back_to_the_same_level():
    href = w.experiment_href("a b", "x/y?z")
    assert href == "/browse/a%20b/experiment/x%2Fy%3Fz"
    assert w.browse_route(href.removeprefix("/browse/")) == ("a b", "x/y?z")
    assert w.measurement_href("p", "m#1") == "/measurement/p/m%231"


# -- text ------------------------------------------------------------------------------------

@pytest.mark.parametrize("type_name, name, expected", [
    ("measurement", "pixel_size_um", "Pixel size (µm)"),
    ("measurement", "laser_frequency_hz", "Laser frequency (Hz)"),
    ("measurement", "laser_power_percent", "Laser power (%)"),
    ("measurement", "raster_width", "Raster width (pixels)"),
    ("measurement", "mass_range_low", "Mass range low (m/z)"),
    ("measurement", "mass_resolution", "Mass resolution"),
    ("case", "age_years", "Age (years)"),
    ("data_file", "file_size", "File size"),
    ("measurement", "imzml_mode", "imzML mode"),  # a name with capitals of its own keeps them
])
def test_labels_come_from_the_name_and_the_dictionarys_unit(type_name, name, expected):
    assert w.label(name, DICTIONARY[type_name]["properties"][name]) == expected


@pytest.mark.parametrize("value, spec, expected", [
    (None, {}, "–"), ("", {}, "–"), (120000.0, {}, "120,000"), (734.569, {}, "734.569"), (12, {}, "12"),
    (1536, {"unit": "bytes"}, "1.5 KB"), (["a", "b"], {}, "a, b"), (True, {}, "yes"), ("MALDI", {}, "MALDI"),
])
def test_values_are_shown_for_people(value, spec, expected):
    assert w.value_text(value, spec) == expected


def test_counts_use_the_dictionarys_title():
    assert w.counted(1, "Data File") == "1 data file"
    assert w.counted(1200, "Measurement") == "1,200 measurements"


# -- widgets ---------------------------------------------------------------------------------

def test_properties_follow_the_dictionary_with_labels_units_and_descriptions():
    measurement = node("measurement", "m-1", instrument="timsTOF fleX", pixel_size_um=20.0, polarity="positive")
    table = w.properties_table(measurement, DICTIONARY["measurement"], "measurement-properties")
    shown = [[text(cell) for cell in row.children] for row in table.children.children]
    specs = DICTIONARY["measurement"]["properties"]
    assert shown == [["Instrument", "timsTOF fleX", specs["instrument"]["description"]],
                     ["Polarity", "positive", specs["polarity"]["description"]],
                     ["Pixel size (µm)", "20", specs["pixel_size_um"]["description"]]]
    assert table.children.children[2].id == "measurement-properties-pixel_size_um"


def test_a_node_without_properties_says_so():
    table = w.properties_table(node("experiment", "e"), DICTIONARY["experiment"], "experiments-properties")
    assert "No properties recorded." in text(table)


def test_breadcrumbs_link_every_level_but_the_page_itself():
    nav = w.breadcrumbs([("Experiments", "/browse"), ("HUMAN-ATLAS", "/browse"), ("atlas-kidney", None)], "x")
    links = [c for c in nav.children if type(c).__name__ == "Link"]
    assert [(link.children, link.href) for link in links] == [("Experiments", "/browse"), ("HUMAN-ATLAS", "/browse")]
    assert text(nav) == "Experiments › HUMAN-ATLAS › atlas-kidney"


def test_the_projects_table_shows_counts_or_that_the_user_may_not_read():
    projects = [node("project", "open-one", name="Open"), node("project", "closed-one", name="Closed")]
    counts = {"open-one": {"experiment": 3, "measurement": 1200},
              "closed-one": "ana has no read access to project 'closed-one'; ask an administrator for a grant"}
    table = w.projects_table("P", projects, counts)
    assert rows(table) == [["open-one", "Open", "", "", "3", "1,200"],
                           ["closed-one", "Closed", "", "", "no read access", "no read access"]]
    assert table.children[1].children[1].children[4].children.title == counts["closed-one"]


def test_an_experiments_measurements_show_their_raster_and_files():
    measurement = node("measurement", "m-1", links=[("samples", "s-1"), ("experiments", "e-1")],
                       instrument="rapifleX", raster_width=30, raster_height=20)
    files = {"id-m-1": [node("data_file", "m-1.imzML", data_format="imzML"),
                        node("data_file", "m-1.ibd", data_format="ibd")]}
    table = w.measurements_table("p", [measurement, node("measurement", "m-2")], files)
    assert rows(table)[0] == ["m-1", "s-1", "rapifleX", "", "", "30 × 20", "", "2 (ibd, imzML)"]
    assert rows(table)[1][-1] == "0"
    assert table.children[1].children[0].children[0].children.href == "/measurement/p/m-1"


def test_empty_levels_say_so():
    assert text(w.experiments_table("p", [], {})) == "No experiments in this project yet."
    assert text(w.measurements_table("p", [], {})) == "No measurements in this experiment yet."


# -- the imzML pair --------------------------------------------------------------------------

def file(name: str, data_format: str) -> dict:
    return node("data_file", name, file_name=name, data_format=data_format)


def test_an_imzml_file_pairs_with_the_ibd_of_its_name():
    files = [file("b.ibd", "ibd"), file("a.imzML", "imzML"), file("a.ibd", "ibd"), file("a.png", "png")]
    image, ibd = imzml_pair(files)
    assert (image["submitter_id"], ibd["submitter_id"]) == ("a.imzML", "a.ibd")


def test_a_lone_ibd_pairs_whatever_its_name_and_no_ibd_means_no_pair():
    assert imzml_pair([file("scan.imzML", "imzML"), file("raw.ibd", "ibd")])[1]["submitter_id"] == "raw.ibd"
    assert imzml_pair([file("scan.imzML", "imzML")]) is None
    assert imzml_pair([file("x.ibd", "ibd"), file("y.ibd", "ibd"), file("scan.imzML", "imzML")]) is None


def test_each_file_links_to_its_download():
    from dash import html

    from portal.explorer.widgets import files_table

    def links(component):
        found = [component] if isinstance(component, html.A) else []
        children = getattr(component, "children", None)
        for child in children if isinstance(children, list) else [children]:
            found += links(child) if child is not None and not isinstance(child, str) else []
        return found

    files = [{"id": "f/1", "submitter_id": "m.imzML", "properties": {"file_name": "m.imzML", "data_format": "imzML"}}]
    (link,) = links(files_table(files, {"properties": {}}))
    assert link.href == "/files/f%2F1/download" and link.children == "m.imzML"
