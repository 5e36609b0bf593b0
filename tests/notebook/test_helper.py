"""The notebook helper (labcommons.notebook) against a real service: a measurement with real
imzML files (labcommons/demo/imzml.py) in the storage root, a cohort, and parameter sets."""
import dataclasses
import time
import uuid

import numpy as np
import pytest
import yaml

import labcommons
from labcommons.demo.images import ImageSpec, simulate
from labcommons.demo.imzml import file_records, write_imzml_pair, write_spectra
from labcommons.notebook import Commons, DatasetError, ParameterError, hub_token_renewer, notebook_source
from metadata.client import MetadataClient
from metadata.idl import metadata_thrift as T
from tests.contract.test_service_runs import template
from tests.stored import plant

TEMPLATE = "tiny-qc"


@pytest.fixture
def settings(settings, tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / f"{TEMPLATE}.yaml").write_text(yaml.safe_dump(template(TEMPLATE, standard=True)))
    return dataclasses.replace(settings, templates_dir=templates)


@pytest.fixture
def measurement(admin, project, settings) -> str:
    """A 4x3-pixel measurement whose imzML and ibd sit in the storage root."""
    return imaged_measurement(admin, project, settings.storage_root)


def imaged_measurement(admin, project: str, storage_root, write=None) -> str:
    """Submit measurement m1 (with its case, sample and experiment) and its imzML and ibd, written
    under the storage root by write(folder, "m1") (their file records; by default a 4x3-pixel
    pair); its id."""
    write = write or (lambda folder, name: write_imzml_pair(folder, name, 4, 3, seed=7))
    records = write(storage_root / project, "m1")
    files = [{"type": "data_file", "submitter_id": r["file_name"], "file_name": r["file_name"],
              "data_format": r["data_format"], "file_size": r["file_size"], "md5sum": r["md5sum"],
              "sha256": r["sha256"], "storage_url": r["path"].as_uri(), "measurements": {"submitter_id": "m1"}}
             for r in records]
    admin.submit(project, [{"type": "case", "submitter_id": "c1", "species": "mouse"},
                           {"type": "sample", "submitter_id": "s1", "organ": "liver", "preparation": "fresh frozen",
                            "cases": {"submitter_id": "c1"}},
                           {"type": "experiment", "submitter_id": "e1", "protocol": "p"},
                           {"type": "measurement", "submitter_id": "m1", "instrument": "timsTOF",
                            "ionisation": "MALDI", "polarity": "positive", "samples": {"submitter_id": "s1"},
                            "experiments": {"submitter_id": "e1"}}] + files)
    return admin.find(project, "m1")["id"]


@pytest.fixture
def lc(server, settings, project, monkeypatch):
    """What a notebook of analyst ana gets from labcommons.connect() (token and address from the env)."""
    token, _ = server.tokens.mint("ana", ["analyst"], {project: "write"})
    monkeypatch.setenv("LABCOMMONS_TOKEN", token)
    monkeypatch.setenv("LABCOMMONS_PORT", str(server.bound_port()))
    monkeypatch.setenv("LABCOMMONS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/ana/liver.ipynb")
    with labcommons.connect() as commons:
        yield commons


def test_connect_gives_the_helper_over_the_client(lc):
    assert isinstance(lc, Commons)
    assert lc.whoami().user == "ana"   # any client call passes through


def test_a_measurements_spectra_files_and_properties(lc, measurement):
    dataset = lc.dataset(measurement)
    assert dataset.properties["instrument"] == "timsTOF"
    assert [f["properties"]["data_format"] for f in dataset.files] == ["ibd", "imzML"]
    spectra = dataset.spectra(limit=5, start=2)
    assert len(spectra) == 5 and spectra.coordinates[0] == (3, 1, 1)
    assert all(len(mz) == len(i) > 0 for mz, i in zip(spectra.mz, spectra.intensity))
    assert np.all(np.diff(spectra.mz[0]) > 0)
    frame = spectra.to_dataframe()
    assert list(frame.columns) == ["x", "y", "z", "mz", "intensity"] and len(frame) == 5
    assert len(dataset.spectra(limit=100)) == 12   # the image has 12 pixels


def test_a_data_files_spectra(lc, admin, project, measurement):
    image = admin.find(project, "m1.imzML")["id"]
    first = lc.dataset(image).spectra(limit=1)
    assert np.array_equal(first.intensity[0], lc.dataset(measurement).spectra(limit=1).intensity[0])


def test_an_ion_image_is_the_summed_window_on_the_imzml_grid(lc, measurement, settings, project):
    dataset = lc.dataset(measurement)
    image = dataset.ion_image(760.585, da=0.5)
    assert image.shape == (3, 4) and dataset.origin == (1, 1) and not np.isnan(image).any()
    spectra = dataset.spectra(limit=12)
    for (x, y, _), mz, intensity in zip(spectra.coordinates, spectra.mz, spectra.intensity):
        assert image[y - 1, x - 1] == intensity[(mz >= 760.085) & (mz <= 761.085)].astype(np.float64).sum()
    assert np.array_equal(dataset.ion_image(760.585, ppm=1000), dataset.ion_image(760.585, da=0.760585))
    assert dataset.plot_ion_image(760.585, ppm=50).data[0].z.shape == (3, 4)
    with pytest.raises(ValueError, match=r"tolerance \(ppm\) must be a number above 0 and at most 1000 ppm"):
        dataset.ion_image(760.585, ppm=5000)


BARE_ROWS = 3


def bare_top_pair(folder, name: str) -> list[dict]:
    """A demo image (labcommons/demo/images.py, 12x10 pixels) whose first BARE_ROWS rows in scan
    order are empty, as bare glass or matrix often is; its file records."""
    spec = ImageSpec(name, 12, 10, seed=3)
    spectra = [(xy, mz, intensity * (xy[1] > BARE_ROWS))
               for xy, mz, intensity in simulate(spec, np.random.default_rng(spec.seed))]
    folder.mkdir(parents=True, exist_ok=True)
    write_spectra(folder / name, uuid.uuid5(uuid.NAMESPACE_URL, name), spectra, mode="continuous")
    return file_records(folder, name)


def tic_by_pixel(imzml, ibd) -> dict[tuple[int, int], float]:
    """Each pixel's TIC, as a pyimzML loop reads it."""
    from pyimzml.ImzMLParser import ImzMLParser
    parser = ImzMLParser(str(imzml), ibd_file=open(ibd, "rb"))
    return {(x, y): float(parser.getspectrum(i)[1].astype(np.float64).sum())
            for i, (x, y, _) in enumerate(parser.coordinates)}


def closest(pixels) -> float:
    """The least distance between two of the pixels."""
    return min(np.hypot(a[0] - b[0], a[1] - b[1]) for i, a in enumerate(pixels) for b in pixels[i + 1:])


def test_tissue_spectra_skip_bare_first_rows_and_spread_over_the_image(lc, admin, project, settings):
    dataset = lc.dataset(imaged_measurement(admin, project, settings.storage_root, bare_top_pair))
    assert all(not i.any() for i in dataset.spectra(limit=5).intensity)   # scan order: bare glass
    tissue = dataset.tissue_spectra(limit=5)
    folder = settings.storage_root / project
    tics = tic_by_pixel(folder / "m1.imzML", folder / "m1.ibd")
    pixels = [(x, y) for x, y, _ in tissue.coordinates]
    ranked = sorted(tics, key=tics.get, reverse=True)
    assert pixels[0] == ranked[0] and set(pixels) <= set(ranked[:len(ranked) // 4])   # the brightest quarter
    assert all(y > BARE_ROWS for _, y in pixels) and len(set(pixels)) == 5
    assert closest(pixels) >= 2 > closest(ranked[:5])   # spread, where the five brightest lie side by side
    for (x, y), intensity in zip(pixels, tissue.intensity):
        assert float(intensity.sum()) == pytest.approx(tics[x, y], rel=1e-12)
    with pytest.raises(ValueError, match="limit of 1 or more"):
        dataset.tissue_spectra(limit=0)


def test_files_outside_the_storage_root_are_not_read(lc, admin, server, project, measurement, tmp_path):
    """Refused by the service; and a node holding such a storage_url all the same is not read."""
    outside = write_imzml_pair(tmp_path / "elsewhere", "m2", 2, 2, seed=1)
    plant(server, project, [{"type": "data_file", "submitter_id": "x.imzML", "file_name": "x.imzML",
                             "data_format": "imzML", "file_size": 1, "md5sum": "0" * 32,
                             "storage_url": outside[0]["path"].as_uri(), "measurements": {"submitter_id": "m1"}}])
    with pytest.raises(DatasetError, match="outside the folder of project test-proj in the storage root"):
        lc.dataset(admin.find(project, "x.imzML")["id"]).spectra()
    with pytest.raises(DatasetError, match="not a measurement or a data file"):
        lc.dataset(admin.find(project, "c1")["id"])


def test_a_cohorts_manifest_is_a_dataframe(lc, measurement):
    lc.save_cohort("liver files", "file", {"IN": {"organ": ["liver"]}})
    frame = lc.cohort("liver files").manifest()
    assert sorted(frame["file_name"]) == ["m1.ibd", "m1.imzML"] and "storage_url" in frame.columns
    with pytest.raises(LookupError, match="no cohort named 'nope'.*liver files"):
        lc.cohort("nope")


def test_a_cohort_by_id_and_an_unsaved_cohort_from_a_filter(lc, measurement, server, settings, project):
    saved = lc.save_cohort("liver files", "file", {"IN": {"organ": ["liver"]}})
    assert sorted(lc.cohort_by_id(saved.id).manifest()["file_name"]) == ["m1.ibd", "m1.imzML"]
    assert list(lc.cohort_from_filter("file", {"IN": {"data_format": ["imzML"]}}).manifest()["file_name"]) == [
        "m1.imzML"]
    empty = lc.cohort_from_filter("file", {"IN": {"organ": ["brain"]}}).manifest()
    assert empty.empty and "storage_url" in empty.columns  # the columns, so a notebook's next cell still runs
    with pytest.raises(T.NotFound, match="no cohort with id 'nope'"):
        lc.cohort_by_id("nope")
    token, _ = server.tokens.mint("bob", ["analyst"], {project: "read"})
    with labcommons.connect(token=token, port=server.bound_port(), storage_root=settings.storage_root) as bob:
        with pytest.raises(T.NotFound, match="no cohort with id"):  # another's private cohort is not there
            bob.cohort_by_id(saved.id)


def test_saving_parameters_records_the_notebook_and_the_dataset(lc, project, measurement):
    first = lc.save_parameter_set(template=TEMPLATE, name="liver-smooth", params={"window": 7, "method": "savgol"},
                                  dataset=measurement, notes="sharper peaks")
    assert (first.revision, first.project_id, first.created_by) == (1, project, "ana")
    assert (first.source, first.dataset_id, first.params) == ("/home/ana/liver.ipynb", measurement,
                                                             {"method": "savgol", "window": "7"})
    second = lc.save_parameter_set(TEMPLATE, "liver-smooth", {"window": 9}, dataset=measurement, source="other.ipynb")
    assert (second.revision, second.source) == (2, "other.ipynb")
    assert lc.save_parameter_set(TEMPLATE, "liver-smooth", {"window": "9"}, dataset=measurement).id == second.id
    assert [r.revision for r in lc.parameter_sets(TEMPLATE)[0].revisions] == [2, 1]


def test_parameters_the_template_refuses_raise_naming_them(lc, measurement):
    with pytest.raises(ParameterError) as refused:
        lc.save_parameter_set(TEMPLATE, "liver-smooth", {"window": 0, "method": "median"}, dataset=measurement)
    assert set(refused.value.problems) == {"window", "method"}
    assert "gaussian, savgol" in refused.value.problems["method"] and "between 1 and 51" in str(refused.value)
    with pytest.raises(ValueError, match="project_id"):
        lc.save_parameter_set(TEMPLATE, "liver-smooth", {"window": 3})


def test_the_source_is_the_notebooks_path_in_the_users_home(lc, project, measurement, monkeypatch):
    monkeypatch.setenv("HOME", "/home/ana")
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/ana/work/liver.ipynb")   # as JupyterLab's kernels get it
    assert notebook_source() == "work/liver.ipynb"
    monkeypatch.setenv("JPY_SESSION_NAME", "/elsewhere/liver.ipynb")
    assert notebook_source() == "/elsewhere/liver.ipynb"


def test_an_expired_token_is_renewed_once_and_the_call_sent_again(server, project):
    """The client asks renew_token for a new token when, and only when, the service says expired."""
    expired, _ = server.tokens.mint("ana", ["analyst"], {project: "read"}, ttl=1)
    fresh, _ = server.tokens.mint("ana", ["analyst"], {project: "read"})
    asked = []
    time.sleep(1.1)
    with MetadataClient("127.0.0.1", server.bound_port(), expired,
                        renew_token=lambda: asked.append(1) or fresh) as client:
        assert client.whoami().user == "ana" and client.token == fresh and asked == [1]
        client.token = "forged"
        with pytest.raises(T.Unauthenticated, match="not valid"):   # not expired: no renewal
            client.whoami()
        assert asked == [1]
    with MetadataClient("127.0.0.1", server.bound_port(), expired, renew_token=lambda: expired) as client:
        with pytest.raises(T.Unauthenticated, match="expired"):       # renewed to no avail: one retry only
            client.whoami()


def test_outside_a_hub_server_there_is_no_renewal(monkeypatch):
    for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_USER"):
        monkeypatch.delenv(name, raising=False)
    assert hub_token_renewer() is None
