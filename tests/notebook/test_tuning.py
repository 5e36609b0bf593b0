"""Interactive parameter tuning (labcommons/tuning.py and its widgets) against a real service:
controls bound to the shipped ims-preprocess template's ranges, the workflow's own processing
previewed on a spectrum, and saving checked against the user's grant before it is tried."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import labcommons
from labcommons.notebook import WriteAccessError
from labcommons.tuning import Tuner, controls, figure, preview, strongest
from tests.notebook.test_helper import bare_top_pair, imaged_measurement

MZ = np.linspace(400.0, 600.0, 4000)
PEAKS = (450.0, 500.0, 550.0)
SPECTRUM = sum(h * np.exp(-((MZ - p) / 0.3) ** 2) for p, h in zip(PEAKS, (1000, 400, 60))) \
    + 5 + np.random.default_rng(1).normal(0, 2, MZ.size)


@pytest.fixture
def commons_for(server, settings, monkeypatch):
    """commons_for(user, access) -> what labcommons.connect() gives that user's notebook."""
    opened = []

    def make(user: str, roles: list[str], grants: dict[str, str]):
        token, _ = server.tokens.mint(user, roles, grants)
        commons = labcommons.connect("127.0.0.1", server.bound_port(), token, settings.storage_root)
        opened.append(commons)
        return commons
    yield make
    for commons in opened:
        commons.client.close()


def test_controls_follow_the_templates_enums_ranges_and_units(admin):
    (template,) = [t for t in admin.templates() if t.name == "ims-preprocess"]
    found = {c.name: c for c in controls(template)}
    assert list(found) == ["smoothing", "smoothing-window", "baseline", "baseline-window", "peak-picking", "snr"]
    assert found["smoothing"].kind == "choice" and found["smoothing"].options == ("none", "gaussian", "savitzky-golay")
    window = found["smoothing-window"]  # a width: its number slides in its unit, the value keeps both
    assert (window.kind, window.minimum, window.maximum, window.unit, window.value, window.param(20)) == \
        ("log-slider", 1.0, 10000.0, "ppm", 10.0, "20 ppm")
    in_mz = controls(template, {"smoothing-window": "0.02 m/z"})[1]
    assert (in_mz.unit, in_mz.minimum, in_mz.maximum, in_mz.value) == ("m/z", 0.0001, 100.0, 0.02)
    assert found["peak-picking"].kind == "toggle" and found["peak-picking"].value is True
    # 0 to 1000: logarithmic from a hundred-thousandth of the maximum
    assert (found["snr"].kind, found["snr"].minimum, found["snr"].maximum, found["snr"].value) == \
        ("log-slider", 0.01, 1000, 3.0)
    assert controls(template, {"snr": "7"})[-1].value == 7.0
    with pytest.raises(LookupError, match="template 'ims-qc' declares no parameter 'smoothing'"):
        controls(next(t for t in admin.templates() if t.name == "ims-qc"))


def test_the_preview_is_the_workflows_processing_with_its_peaks_marked():
    params = {"smoothing": "gaussian", "smoothing-window": "0.2 m/z", "baseline": "tophat", "baseline-window": 10,
              "peak-picking": True, "snr": 3}
    picked = preview(MZ, SPECTRUM, params)
    assert sorted({round(m) for m in picked.peaks_mz}) == [450, 500, 550]  # and no noise
    assert sorted({round(m) for m in preview(MZ, SPECTRUM, {**params, "snr": 60}).peaks_mz}) == [450, 500]
    assert len(preview(MZ, SPECTRUM, {**params, "peak-picking": "false"}).peaks_mz) == 0
    fig = figure(MZ, SPECTRUM, picked, params, "m1, pixel (1, 1)")
    assert fig.layout.title.text == f"m1, pixel (1, 1): {len(picked.peaks_mz)} peaks picked at S/N ≥ 3"
    assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == ("m/z", "intensity (a.u.)")
    assert [t.name for t in fig.data] == ["before", "after smoothing and baseline removal", "picked peaks"]
    assert list(fig.data[2].x) == list(picked.peaks_mz)


def test_a_centroided_spectrum_is_previewed_as_the_workflow_copies_it():
    params = {"smoothing": "gaussian", "smoothing-window": "10 ppm", "baseline": "tophat", "baseline-window": 10,
              "peak-picking": True, "snr": 3}
    sticks_mz, sticks = np.array([450.0, 500.0, 550.0]), np.array([1000.0, 400.0, 60.0])
    result = preview(sticks_mz, sticks, params, centroided=True)
    assert list(result.peaks_mz) == list(sticks_mz) and list(result.intensity) == list(sticks)
    assert figure(sticks_mz, sticks, result, params).layout.title.text.startswith("3 centroids, copied as they are")


def test_the_tuner_opens_on_the_strongest_spectrum_and_says_why_a_spectrum_has_no_peaks():
    params = {"smoothing": "none", "smoothing-window": "1", "baseline": "none", "baseline-window": 10,
              "peak-picking": True, "snr": 3}
    slide = 5 + np.random.default_rng(2).normal(0, 2, MZ.size)  # a pixel off the tissue: noise only
    assert strongest(SimpleNamespace(intensity=[slide, SPECTRUM, slide])) == 1
    title = figure(MZ, slide, preview(MZ, slide, params), params).layout.title.text
    assert title.startswith("0 peaks picked at S/N ≥ 3: nothing stands out of this spectrum's noise")


def tuner_for(commons, measurement: str, name: str = "m1-tuned") -> Tuner:
    dataset = commons.dataset(measurement)
    return commons.tuner("ims-preprocess", dataset, dataset.spectra(limit=3), name=name)


def test_a_reader_sees_why_saving_needs_write_access_and_is_not_offered_it(commons_for, admin, project, settings):
    measurement = imaged_measurement(admin, project, settings.storage_root)
    ana = commons_for("ana", ["analyst"], {project: "read"})
    tuner = tuner_for(ana, measurement)
    tuner.widget  # noqa: B018 -- built as a notebook shows it
    assert tuner._widget.save_button.disabled
    assert "needs write access to project 'test-proj'" in tuner._widget.status.value
    assert not ana.can_write(project)
    with pytest.raises(WriteAccessError, match=r"because a saved set becomes part of that project's record.*ask the "
                                                r"project's admins"):
        tuner.save()
    assert admin.parameter_sets(template="ims-preprocess") == []


def test_a_writer_tunes_with_the_controls_and_saves_the_set(commons_for, admin, project, settings):
    measurement = imaged_measurement(admin, project, settings.storage_root)
    tom = commons_for("tom", ["technician"], {project: "write"})
    tuner = tuner_for(tom, measurement)
    tuner.widget  # noqa: B018
    before = tuner.figure().layout.title.text
    tuner.set(snr=900, smoothing="savitzky-golay")  # as the widgets do: params and figure follow
    assert tuner.params["snr"] == 900 and tuner._widget.controls["snr"].value == 900
    assert tuner.figure().layout.title.text != before
    tuner._widget.save_button.click()
    assert "Saved 'm1-tuned', revision 1" in tuner._widget.status.value
    (saved,) = admin.parameter_sets(template="ims-preprocess")
    assert saved.revisions[0].params["snr"] == "900" and saved.revisions[0].params["smoothing"] == "savitzky-golay"
    assert saved.revisions[0].created_by == "tom"


def _ppm_to_nearest(peaks, mz: float) -> float:
    return float(np.min(np.abs(np.asarray(peaks) - mz)) / mz * 1e6) if len(peaks) else float("inf")


def test_on_an_image_with_bare_first_rows_the_tuner_opens_on_tissue_with_peaks(commons_for, admin, project, settings):
    measurement = imaged_measurement(admin, project, settings.storage_root, bare_top_pair)
    tom = commons_for("tom", ["technician"], {project: "write"})
    dataset = tom.dataset(measurement)
    tuner = tom.tuner("ims-preprocess", dataset, dataset.tissue_spectra(limit=5))
    tuner.widget  # noqa: B018 -- built as a notebook shows it
    assert tuner.spectrum == 0 and tuner._widget.spectrum.value == 0   # the strongest pixel comes first
    x, y, _ = dataset.tissue_spectra(limit=1).coordinates[0]
    assert f"pixel ({x}, {y}): " in tuner.figure().layout.title.text and tuner.figure().data[0].y.max() > 0
    # the template's default (10 ppm) keeps this demo's narrow profile peaks where they are (PC 34:1
    # [M+H]+ within a few ppm); 1 m/z smears them tens of ppm away
    assert _ppm_to_nearest(tuner.figure().data[2].x, 760.5851) < 5
    tuner.set(smoothing_window="1 m/z")  # another unit: the slider is remade in m/z
    assert tuner.params["smoothing-window"] == "1 m/z" and tuner._widget.controls["smoothing-window"].value == 1.0
    assert "(m/z)" in tuner._widget.controls["smoothing-window"].description
    assert _ppm_to_nearest(tuner.figure().data[2].x, 760.5851) > 10
    tuner.set(smoothing_window=15)  # a bare number is m/z, as in the template
    assert tuner.params["smoothing-window"] == "15 m/z"
    bare = tom.tuner("ims-preprocess", dataset, dataset.spectra(limit=5))   # the scan's first pixels
    assert not bare.figure().data[0].y.any()
