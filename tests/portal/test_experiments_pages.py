"""The experiments browser and the measurement page in-process: the pages router and the preview
callbacks posted as the page's script posts them, against a real metadata service holding the
demo commons (scale 0.05), compared with what the service answers when asked straight."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from pyimzml.ImzMLParser import ImzMLParser

from ground.storage import resolve
from labcommons.demo import create_demo, data_file_entity
from labcommons.demo.accounts import PASSWORDS_FILE
from labcommons.demo.imzml import write_imzml_pair
from portal.explorer.widgets import counted, experiment_href, measurement_href, project_href
from ims import images
from ims.layout import read_pair
from portal.previews import cache
from tests.portal.layout import graphs
from tests.stored import plant

SECRET = "secret-proj"


@pytest.fixture
def small_demo(server, admin):
    """The demo commons at scale 0.05 (every measurement with its imzML image), the demo accounts
    granted its projects."""
    create_demo(admin, server.settings.storage_root, scale=0.05,
                passwords_path=server.settings.data_dir / PASSWORDS_FILE)


@pytest.fixture
def analyst(small_demo, portal, sign_in):
    sign_in(portal, "ana")
    return portal


@pytest.fixture
def imaged(admin, small_demo) -> dict:
    """The first demo measurement with an imzML file (its node), with its files' nodes."""
    image = next(f for f in admin.nodes("data_file") if f["properties"]["data_format"] == "imzML")
    measurement = admin.get(image["links"][0]["target_id"])
    ibd = admin.find(image["project_id"], image["submitter_id"].replace(".imzML", ".ibd"))
    return {**measurement, "imzml": image, "ibd": ibd}


@pytest.fixture
def bare(admin, imaged) -> dict:
    """A measurement without files beside the imaged one (every demo measurement has its pair),
    registered as a technician may before the files come."""
    links = {link["name"]: {"id": link["target_id"]} for link in imaged["links"]}
    node = {"type": "measurement", "submitter_id": "no-files-yet", **links,
            **{k: imaged["properties"][k] for k in ("instrument", "ionisation", "polarity")}}
    admin.submit(imaged["project_id"], [node])
    return node


def open_page(client, dash_call, path: str) -> str:
    """The page the pages router renders for a path, as JSON text."""
    answer = dash_call(client, "_pages_content.children", [
        {"id": "_pages_location", "property": "pathname", "value": path},
        {"id": "_pages_location", "property": "search", "value": ""}])
    return json.dumps(answer["response"]["_pages_content"]["children"], ensure_ascii=False)


def key_input(project: str, submitter_id: str) -> list[dict]:
    return [{"id": "measurement-key", "property": "data", "value": {"project": project, "submitter_id": submitter_id}}]


def figure_array(value) -> np.ndarray:
    """A figure array as Dash sends it: a list, or plotly's typed array {dtype, bdata, shape}."""
    if isinstance(value, dict):
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return array.reshape([int(n) for n in str(value.get("shape", len(array))).split(",")])
    return np.array(value, dtype=float)


def component(node, id_: str):
    """The rendered component with this id (None if absent)."""
    if isinstance(node, list):
        return next((found for item in node if (found := component(item, id_)) is not None), None)
    if not isinstance(node, dict):
        return None
    props = node.get("props", {})
    return node if props.get("id") == id_ else component(props.get("children"), id_)


def text(node) -> str:
    """All the text inside a rendered component, space-separated."""
    if isinstance(node, list):
        return " ".join(text(item) for item in node)
    if isinstance(node, dict):
        return text(node.get("props", {}).get("children"))
    return "" if node is None else str(node)


def table_rows(table) -> list[list[str]]:
    body = table["props"]["children"][1]
    return [[text(cell) for cell in row["props"]["children"]] for row in body["props"]["children"]]


# -- the levels ------------------------------------------------------------------------------

def test_the_browser_lists_programs_and_their_projects_with_counts(analyst, dash_call, admin):
    page = open_page(analyst, dash_call, "/browse")
    for program in admin.nodes("program"):
        assert f"experiments-program-card-{program['submitter_id']}" in page
        assert program["properties"]["full_name"] in page
    for project in admin.nodes("project"):
        assert project_href(project["submitter_id"]) in page
    rows = {row[0]: row for row in table_rows(component(json.loads(page), "experiments-projects-HUMAN-ATLAS"))}
    assert set(rows) == {"atlas-kidney", "atlas-liver"}
    for project, row in rows.items():
        assert row[-2:] == [str(admin.page("experiment", project, limit=1).total),
                            str(admin.page("measurement", project, limit=1).total)]
    assert "Traceback" not in page


def test_a_project_shows_its_properties_counts_and_experiments(analyst, dash_call, admin):
    page = open_page(analyst, dash_call, "/browse/mouse-brain")
    dictionary = admin.dictionary()["project"]["properties"]
    assert "Principal investigator" in page and dictionary["principal_investigator"]["description"] in page
    assert "Dr. Yuki Tanaka" in page and "HUMAN-ATLAS" not in page and "RODENT-MODELS" in page
    measurements = list(admin.nodes("measurement", "mouse-brain"))
    assert counted(len(measurements), "Measurement") in page
    for experiment in admin.nodes("experiment", "mouse-brain"):
        assert experiment_href("mouse-brain", experiment["submitter_id"]) in page
        assert experiment["properties"]["protocol"] in page


def test_an_experiment_lists_its_measurements_and_their_files(analyst, dash_call, admin, imaged):
    project = imaged["project_id"]
    experiment = next(link for link in imaged["links"] if link["name"] == "experiments")
    page = open_page(analyst, dash_call, experiment_href(project, experiment["target_submitter_id"]))
    expected = [m["submitter_id"] for m in admin.nodes("measurement", project)
                if any(link["target_id"] == experiment["target_id"] for link in m["links"])]
    assert expected and all(measurement_href(project, m) in page for m in expected)
    assert f"Measurements ({len(expected)})" in page
    assert "2 (ibd, imzML)" in page  # the imaged measurement's files
    assert project_href(project) in page  # the breadcrumbs lead back up


def test_a_measurement_shows_its_instrument_parameters_and_files(analyst, dash_call, imaged):
    page = open_page(analyst, dash_call, measurement_href(imaged["project_id"], imaged["submitter_id"]))
    props = imaged["properties"]
    assert "Pixel size (µm)" in page and "Raster width (pixels)" in page and "Mass range low (m/z)" in page
    assert props["instrument"] in page and str(props["raster_width"]) in page
    assert imaged["imzml"]["properties"]["file_name"] in page and imaged["ibd"]["properties"]["md5sum"] in page
    assert '"measurement-key"' in page and '"measurement-previews"' in page


# -- previews --------------------------------------------------------------------------------

def test_the_previews_show_the_tic_image_and_are_cached(analyst, dash_call, imaged, server):
    key = key_input(imaged["project_id"], imaged["submitter_id"])
    answer = dash_call(analyst, "measurement-previews.children", key)
    figures = graphs(answer["response"]["measurement-previews"]["children"])
    assert set(figures) == {"measurement-tic", "measurement-ion", "measurement-pixel", "measurement-mean"}
    tic = figure_array(figures["measurement-tic"]["data"][0]["z"])
    props = imaged["properties"]
    assert tic.shape == (props["raster_height"], props["raster_width"])
    image, ibd = (resolve(imaged[k]["properties"]["storage_url"], server.settings.storage_root, imaged["project_id"])
                  for k in ("imzml", "ibd"))
    entry = cache.entry(cache.cache_dir(server.settings.data_dir), image, imaged["imzml"]["properties"]["sha256"], ibd)
    assert entry.exists()
    written = entry.stat().st_mtime_ns
    again = dash_call(analyst, "measurement-previews.children", key)
    assert entry.stat().st_mtime_ns == written
    assert np.array_equal(figure_array(graphs(again["response"]["measurement-previews"]["children"])
                                       ["measurement-tic"]["data"][0]["z"]), tic)


def test_centroid_spectra_are_drawn_as_sticks(analyst, dash_call, imaged):
    """The page tells its previews whether the measurement's spectra are centroids; those are drawn
    as sticks from 0 (NaN between them), the pixel's and the mean spectrum alike."""
    project, name = imaged["project_id"], imaged["submitter_id"]
    centroid = imaged["properties"].get("spectrum_type") == "centroid"
    assert f'"centroid": {json.dumps(centroid)}' in open_page(analyst, dash_call, f"/measurement/{project}/{name}")
    key = [{"id": "measurement-key", "property": "data", "value": {"project": project, "submitter_id": name,
                                                                    "centroid": True}}]
    shown = graphs(dash_call(analyst, "measurement-previews.children", key)["response"]["measurement-previews"]["children"])
    for graph in ("measurement-pixel", "measurement-mean"):
        heights = figure_array(shown[graph]["data"][0]["y"]).astype(float)
        assert np.isnan(heights[2::3]).all() and (heights[0::3] == 0).all()


def test_a_click_on_the_image_shows_that_pixels_spectrum(analyst, dash_call, imaged, server):
    project, name = imaged["project_id"], imaged["submitter_id"]
    dash_call(analyst, "measurement-previews.children", key_input(project, name))
    click = [{"id": "measurement-tic", "property": "clickData", "value": {"points": [{"x": 3, "y": 2, "z": 1.0}]}}]
    answer = dash_call(analyst, "measurement-pixel.figure", click, state=key_input(project, name))
    figure = answer["response"]["measurement-pixel"]["figure"]
    assert figure["layout"]["title"]["text"] == "Spectrum at pixel (3, 2)"
    storage = server.settings.storage_root / project / name
    with ImzMLParser(str(storage / f"{name}.imzML")) as parser:
        _, intensity = parser.getspectrum(parser.coordinates.index((3, 2, 1)))
    assert np.allclose(figure_array(figure["data"][0]["y"]), intensity)
    marker = json.dumps(answer["response"]["measurement-tic"]["figure"])  # a patch of the image's outline only
    assert '"x0": 2.5' in marker and '"y1": 2.5' in marker and '"z"' not in marker


def test_a_click_outside_the_image_says_so(analyst, dash_call, imaged):
    project, name = imaged["project_id"], imaged["submitter_id"]
    click = [{"id": "measurement-tic", "property": "clickData", "value": {"points": [{"x": 999, "y": 1}]}}]
    answer = dash_call(analyst, "measurement-pixel.figure", click, state=key_input(project, name))
    assert answer["response"]["measurement-pixel-note"]["children"] == "Pixel (999, 1) has no spectrum."


def ion_inputs(mz, tolerance="0.25 Da") -> list[dict]:
    """The ion image callback's inputs as the page posts them after the m/z was typed."""
    return [{"id": "measurement-ion-mz", "property": "value", "value": mz},
            {"id": "measurement-ion-tolerance", "property": "value", "value": tolerance},
            {"id": "measurement-ion-show", "property": "n_clicks", "value": None}]


def test_a_typed_mz_shows_its_ion_image_on_the_tic_raster_and_caches_it(analyst, dash_call, imaged, server):
    project, name = imaged["project_id"], imaged["submitter_id"]
    answer = dash_call(analyst, "measurement-ion.figure", ion_inputs("760.585", "500 ppm"),
                       state=key_input(project, name))
    figure = answer["response"]["measurement-ion"]["figure"]
    assert figure["layout"]["title"]["text"].startswith(f"Ion image: {images.window(760.585, ppm=500).centre()}<br>")
    assert "a.u." in figure["data"][0]["colorbar"]["title"]["text"]
    paths = [resolve(imaged[k]["properties"]["storage_url"], server.settings.storage_root, project)
             for k in ("imzml", "ibd")]
    expected = images.ion_image(read_pair(*paths), paths[1], images.window(760.585, ppm=500))
    assert np.array_equal(figure_array(figure["data"][0]["z"]), expected, equal_nan=True) and np.nansum(expected) > 0
    assert answer["response"]["measurement-ion-problem"]["children"] == ""
    checksums = tuple(cache.recorded_checksum(imaged[k]["properties"]) for k in ("imzml", "ibd"))
    assert all(checksums)
    assert cache.ion_entry(cache.cache_dir(server.settings.data_dir), tuple(paths), checksums,
                           images.window(760.585, ppm=500)).exists()


@pytest.mark.parametrize("fields, words", [
    (("760.5", "0 Da"), "tolerance (Da) must be a number above 0 and at most 10 Da, not '0'"),
    (("760.5", "5000 ppm"), "tolerance (ppm) must be a number above 0 and at most 1000 ppm, not '5000'"),
    (("-3", "5 ppm"), "m/z must be a number above 0 and at most 100,000, not '-3'"),
    (("760.5", "5 mDa"), "tolerance must be a number and its unit, ppm or Da (as in 5 ppm or 0.25 Da), not '5 mDa'"),
    (("760.5", ["5 ppm"]), "tolerance must be a number and its unit, ppm or Da (as in 5 ppm or 0.25 Da), "
                           "not ['5 ppm']")])
def test_a_bad_mz_or_tolerance_is_refused_naming_the_field(analyst, dash_call, imaged, server, fields, words):
    answer = dash_call(analyst, "measurement-ion.figure", ion_inputs(*fields),
                       state=key_input(imaged["project_id"], imaged["submitter_id"]))
    assert answer["response"]["measurement-ion-problem"]["children"] == words
    assert "measurement-ion" not in answer["response"] or "figure" not in answer["response"]["measurement-ion"]
    assert not (cache.cache_dir(server.settings.data_dir) / "ions").exists()


def test_a_peak_of_the_table_or_the_spectrum_fills_the_mz(analyst, dash_call, imaged):
    previews = dash_call(analyst, "measurement-previews.children", key_input(imaged["project_id"],
                                                                             imaged["submitter_id"]))
    table = component(previews["response"]["measurement-previews"]["children"], "measurement-peaks")
    first = table_rows(table)[0][0]
    unclicked = {"id": "measurement-mean", "property": "clickData", "value": None}
    button = [{"id": {"type": "measurement-peak", "mz": first}, "property": "n_clicks", "value": 1}]
    answer = dash_call(analyst, "measurement-ion-mz.value", [unclicked, button], changed=1)
    assert answer["response"]["measurement-ion-mz"]["value"] == first
    clicked = {**unclicked, "value": {"points": [{"x": 760.58512, "y": 3.0}]}}
    answer = dash_call(analyst, "measurement-ion-mz.value", [clicked, button])
    assert answer["response"]["measurement-ion-mz"]["value"] == "760.5851"


def test_a_measurement_without_an_image_says_there_is_nothing_to_preview(analyst, dash_call, imaged, bare):
    answer = json.dumps(dash_call(analyst, "measurement-previews.children",
                                  key_input(imaged["project_id"], bare["submitter_id"])))
    assert "no imzML file" in answer and "Traceback" not in answer


@pytest.mark.parametrize("storage_url", ["file:///etc/passwd", "s3://bucket/x.ibd", "file://{root}/../secret.key"])
def test_a_file_outside_the_storage_root_is_not_read(analyst, dash_call, admin, imaged, server, storage_url):
    """The service refuses such a storage_url; a node holding one all the same (an older commons)
    is not read by the portal either."""
    root = server.settings.storage_root
    ibd = {**imaged["ibd"]["properties"], "storage_url": storage_url.format(root=root)}
    plant(server, imaged["project_id"], [{"type": "data_file", "submitter_id": imaged["ibd"]["submitter_id"],
                                          "measurements": {"id": imaged["id"]}, **ibd}])
    answer = json.dumps(dash_call(analyst, "measurement-previews.children",
                                  key_input(imaged["project_id"], imaged["submitter_id"])), ensure_ascii=False)
    assert "storage root" in answer and "measurement-previews-problem" in answer
    assert not (server.settings.data_dir / "cache" / "previews").exists()


# -- refusals and wrong addresses ------------------------------------------------------------

@pytest.fixture
def secret(analyst, admin, server) -> dict:
    """A project made after ana signed in, so her token holds no grant on it, with one measurement
    whose imzML file is in the storage root."""
    admin.submit("TEST", [{"type": "program", "submitter_id": "TEST"}])
    admin.submit(SECRET, [{"type": "project", "submitter_id": SECRET, "programs": {"submitter_id": "TEST"}}])
    written = write_imzml_pair(server.settings.storage_root / SECRET / "m-1", "m-1", 4, 3, seed=1)
    admin.submit(SECRET, [{"type": "case", "submitter_id": "c-1", "species": "mouse"},
                          {"type": "sample", "submitter_id": "s-1", "organ": "brain", "preparation": "FFPE",
                           "cases": {"submitter_id": "c-1"}},
                          {"type": "experiment", "submitter_id": "e-1", "protocol": "p"},
                          {"type": "measurement", "submitter_id": "m-1", "instrument": "i", "ionisation": "MALDI",
                           "polarity": "positive", "samples": {"submitter_id": "s-1"},
                           "experiments": {"submitter_id": "e-1"}},
                          *[data_file_entity(meta, "m-1") for meta in written]])
    return {"sha256": written[0]["sha256"]}


@pytest.mark.parametrize("path, refusal", [
    (f"/browse/{SECRET}", f"ana has no read access to project '{SECRET}'; ask an administrator"),
    (f"/browse/{SECRET}/experiment/e-1", f"no node 'e-1' in project '{SECRET}'"),  # as if it did not exist
    (f"/measurement/{SECRET}/m-1", f"no node 'm-1' in project '{SECRET}'")])
def test_a_user_without_a_grant_sees_the_services_refusal(analyst, dash_call, secret, path, refusal):
    page = open_page(analyst, dash_call, path)
    assert refusal in page
    assert "Traceback" not in page and '"e-1"' not in page


def test_a_user_without_a_grant_gets_no_previews(analyst, dash_call, secret, server):
    answer = json.dumps(dash_call(analyst, "measurement-previews.children", key_input(SECRET, "m-1")))
    assert f"no node 'm-1' in project '{SECRET}'" in answer
    click = [{"id": "measurement-tic", "property": "clickData", "value": {"points": [{"x": 1, "y": 1}]}}]
    answer = json.dumps(dash_call(analyst, "measurement-pixel.figure", click, state=key_input(SECRET, "m-1")))
    assert f"no node 'm-1' in project '{SECRET}'" in answer and '"figure"' not in answer
    assert not (server.settings.data_dir / "cache" / "previews" / f"{secret['sha256']}.npz").exists()
    answer = json.dumps(dash_call(analyst, "measurement-ion.figure", ion_inputs("700"), state=key_input(SECRET, "m-1")))
    assert f"no node 'm-1' in project '{SECRET}'" in answer and '"figure"' not in answer
    assert not (cache.cache_dir(server.settings.data_dir) / "ions").exists()


def test_the_programs_page_marks_projects_without_a_grant(analyst, dash_call, secret):
    table = component(json.loads(open_page(analyst, dash_call, "/browse")), "experiments-projects-TEST")
    assert table_rows(table)[0][0] == SECRET and table_rows(table)[0][-1] == "no read access"
    assert f"ana has no read access to project '{SECRET}'" in json.dumps(table)


@pytest.mark.parametrize("path, words", [
    ("/browse/no-such-project", "no node 'no-such-project'"),
    ("/browse/atlas-kidney/experiment/ak-case-0001", "is a case, not an experiment"),
    ("/measurement/atlas-kidney/ak-exp-001", "is an experiment, not a measurement"),
    ("/browse/atlas-kidney/samples/x", "There is no page at /browse/atlas-kidney/samples/x"),
])
def test_a_wrong_address_says_what_is_wrong_and_leads_back(analyst, dash_call, path, words):
    page = open_page(analyst, dash_call, path)
    assert words in page and "all programs" in page and "Traceback" not in page


def test_pages_need_a_signed_in_session(portal):
    response = portal.get("/browse/atlas-kidney")
    assert response.status_code == 302 and "/signin?next=/browse/atlas-kidney" in response.headers["Location"]


def test_open_in_jupyter_is_offered_only_where_a_notebook_has_spectra_to_read(analyst, dash_call, admin, imaged, bare):
    """A measurement without an imzML file and its ibd gets no button, and the hand-off refuses
    it with the reason, before any hub is asked."""
    project = imaged["project_id"]
    page = open_page(analyst, dash_call, f"/measurement/{project}/{imaged['submitter_id']}")
    assert '"id": "measurement-jupyter"' in page
    page = open_page(analyst, dash_call, f"/measurement/{project}/{bare['submitter_id']}")
    assert '"id": "measurement-jupyter"' not in page
    assert "This measurement has no imzML file with its ibd, so a notebook would have no spectra to read" in page
    opened = analyst.get(f"/jupyter/open/measurement/{project}/{bare['submitter_id']}")
    assert opened.status_code == 400
    page = opened.get_data(as_text=True)
    assert f"Measurement &#39;{bare['submitter_id']}&#39; has no imzML file with its ibd" in page
    status = analyst.get("/jupyter/status", query_string={"kind": "measurement", "project": project,
                                                          "submitter_id": bare["submitter_id"]})
    assert status.status_code == 400 and "no spectra to read" in status.get_json()["error"]
    experiment = admin.get(next(link["target_id"] for link in imaged["links"] if link["name"] == "experiments"))
    assert '"id": "experiments-jupyter"' in open_page(analyst, dash_call,
                                                      experiment_href(project, experiment["submitter_id"]))
