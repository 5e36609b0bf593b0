"""ims-qc's step programs on generated data with the template's default parameters: data like the
public example files passes, truncated, +10 ppm and a-third-missing data fail the check each
should, reference ions are checked, and the report is valid mzQC."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mzqc import MZQCFile as mzqc_file
from mzqc.SemanticCheck import SemanticCheck
from pyimzml.ImzMLParser import ImzMLParser

from metadata.workflow_catalog import load_catalog
from tests.workflows.qc_data import REFERENCE_PEAKS, example_like
from workflow_templates.steps import qc_index, qc_merge, qc_metrics, qc_pair, qc_shard

DEFAULTS = {p.name: p.default for p in load_catalog()["ims-qc"].parameters if p.default is not None}
THRESHOLDS = ("min-spectra", "min-median-tic", "min-mean-peaks", "min-pixel-completeness", "max-dropped-lines",
              "max-mass-error-ppm")


def run_qc(imzml: Path, out: Path, **changes: str) -> dict:
    """The three steps as the template runs them, with its defaults; the report."""
    params = {**DEFAULTS, "spectra-per-shard": "4", **changes}
    shards = qc_index.qc_index(imzml, out / "index", int(params["spectra-per-shard"]), params["reference-ions"])
    qc_pair.main(["--imzml", str(imzml), "--out-dir", str(out / "pair")])
    for shard in shards:
        qc_shard.main(["--index-dir", str(out / "index"), "--shard", shard, "--out-dir", str(out / "shards"),
                       "--snr", params["snr"], "--mass-window-ppm", params["mass-window-ppm"]])
    qc_merge.main(merge_args(out, out / "qc", params))
    return json.loads((out / "qc" / "report.json").read_text())


def merge_args(out: Path, report_dir: Path, params: dict) -> list[str]:
    return ["--index-dir", str(out / "index"), "--pair-dir", str(out / "pair"), "--metrics-dir", str(out / "shards"), "--out-dir", str(report_dir)] \
        + [arg for name in THRESHOLDS for arg in (f"--{name}", params[name])]


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    written = {}

    def make(mode: str = "continuous", flaw: str | None = None) -> Path:
        if (mode, flaw) not in written:
            written[mode, flaw] = example_like(tmp_path_factory.mktemp(f"qc-{mode}-{flaw}"), "example", mode, flaw)
        return written[mode, flaw]
    return make


def failing(report: dict) -> list[str]:
    return [c["metric"] for c in report["checks"] if c["status"] == "failed"]


@pytest.mark.parametrize("mode", ["continuous", "processed"])
def test_data_like_the_public_examples_passes_with_the_defaults(mode, dataset, tmp_path):
    report = run_qc(dataset(mode), tmp_path)
    assert report["passed"] is True and failing(report) == [] and (tmp_path / "qc" / "passed").read_text() == "true"
    m, facts = report["metrics"], report["dataset"]
    assert (facts["mode"], facts["spectrum_type"], facts["polarity"]) == (mode, "profile", "positive")
    low, high = facts["mz_range"]   # a processed file stores only the points above zero
    assert 100 <= low < min(REFERENCE_PEAKS) and max(REFERENCE_PEAKS) < high <= 800 and facts["grid"]["declared"]
    assert m["pixel_completeness"] == 1.0 and m["spectra_readable"] == 9
    assert m["noise_level"] > 0 and m["median_intensity"] > 0 and m["peaks_mean"] > 0   # sparse, yet not 0
    with ImzMLParser(str(dataset(mode))) as parser:
        tics = [float(parser.getspectrum(i)[1].sum(dtype=np.float64)) for i in range(9)]
    assert report["pixels"]["tic"] == pytest.approx(tics, rel=1e-6)
    assert report["mass_accuracy"]["assessed"] and abs(m["mass_error_ppm"]) < 2
    assert 760.5851 in {i["mz"] for i in report["mass_accuracy"]["ions"] if i["found"]}
    tops = [p["mz"] for p in report["mean_spectrum"]["top_peaks"]]
    assert all(min(abs(np.array(tops) - ion)) < 0.1 for ion in REFERENCE_PEAKS)
    assert len(report["profiles"]["rows"]) == 3 and report["profiles"]["dropped_rows"] == []
    for name in ("tic", "missing", "ppm"):
        assert (tmp_path / "qc" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mass = next(c for c in report["checks"] if c["metric"] == "mass_error_ppm")
    assert (mass["direction"], mass["threshold"], mass["maximum"]) == ("maximum", 5.0, 5.0)


@pytest.mark.parametrize("flaw, fails", [("truncated", {"pair_integrity", "spectra_readable_fraction",
                                                        "pixel_completeness"}),
                                         ("shifted", {"mass_error_ppm"}), ("missing", {"pixel_completeness"})])
def test_flawed_data_fails_the_check_its_flaw_breaks(flaw, fails, dataset, tmp_path):
    report = run_qc(dataset("continuous", flaw), tmp_path)
    assert report["passed"] is False and set(failing(report)) == fails
    status = np.array(report["images"]["missing"]["status"])
    if flaw == "shifted":
        assert report["metrics"]["mass_error_ppm"] == pytest.approx(10, abs=2)
    if flaw == "missing":
        assert (status == qc_merge.MISSING).sum() == 3
    if flaw == "truncated":
        assert (status == qc_merge.UNREADABLE).sum() == report["metrics"]["spectra"] - report["metrics"]["spectra_readable"] > 0


def test_an_ibd_of_another_imzml_fails_pair_integrity_naming_each_difference(dataset, tmp_path):
    """A pair registered before registration checked pairs (or an ibd swapped since) fails QC."""
    imzml = tmp_path / "pair" / "example.imzML"
    imzml.parent.mkdir()
    imzml.write_bytes(dataset().read_bytes())
    (tmp_path / "pair" / "example.ibd").write_bytes(dataset("continuous", "shifted").with_suffix(".ibd").read_bytes())
    report = run_qc(imzml, tmp_path / "out")
    assert failing(report)[0] == "pair_integrity" and report["metrics"]["pair_problems"] == len(report["pair"]["problems"])
    assert "UUID" in report["pair"]["checked"] and any("UUID" in p for p in report["pair"]["problems"])
    assert run_qc(dataset(), tmp_path / "good")["pair"]["problems"] == []


def test_reference_ions_not_in_the_data_leave_mass_accuracy_not_assessed(dataset, tmp_path):
    report = run_qc(dataset(), tmp_path, **{"reference-ions": "650.4321 absent lipid; 222.2"})
    mass = next(c for c in report["checks"] if c["metric"] == "mass_error_ppm")
    assert (mass["status"], mass["passed"], mass["value"]) == ("not assessed", True, None) and report["passed"]
    assert [(i["name"], i["found"]) for i in report["mass_accuracy"]["ions"]] == [("absent lipid", False),
                                                                                   ("m/z 222.2", False)]


def test_reference_ions_that_are_not_numbers_are_refused_in_a_sentence(dataset, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        qc_index.main(["--imzml", str(dataset()), "--out-dir", str(tmp_path), "--spectra-per-shard", "4",
                       "--reference-ions", "760.5851 PC 34:1; seven hundred"])
    assert exit.value.code == 1
    assert "qc_index: error: --reference-ions: 'seven' is not an m/z value. Give each reference ion as a " \
           "positive number such as 760.5851" in capsys.readouterr().err


def test_the_report_is_valid_mzqc(dataset, tmp_path):
    run_qc(dataset(), tmp_path)
    document = mzqc_file.JsonSerialisable.from_json((tmp_path / "qc" / "report.mzQC").read_text())
    vocabulary = Path(__import__("pyopenms").__file__).parent / "share" / "OpenMS" / "CV" / "psi-ms.obo"
    for cv in document.controlledVocabularies:   # offline: the release's copy that pyopenms ships
        cv.uri = vocabulary.as_uri()
    check = SemanticCheck(mzqc_obj=document, file_path=".")
    check.validate(load_local=True)
    issues = [i for kind, found in check.string_export().items() for i in found
              if not i.startswith("ERROR: Loading local vocabulary")]
    assert issues == []
    metrics = {m.accession: m.value for m in document.runQualities[0].qualityMetrics}
    assert metrics["MS:4000059"] == 9 and len(metrics["MS:4000104"]["MS:1000285"]) == 9


def test_line_profiles_flag_a_dropped_row_and_a_gradient():
    tic = np.tile(np.linspace(100, 300, 8), (6, 1))   # rising left to right
    tic[2] = 1.0
    tic[4, :3] = np.nan
    lines = qc_merge.profiles(tic)
    assert lines["dropped_rows"] == [2] and lines["dropped_columns"] == []
    assert lines["columns_gradient"] == pytest.approx(1.0, abs=0.05) and lines["gradient_flagged"]


def test_noise_of_sparse_spectra_comes_from_their_non_zero_points():
    block = np.zeros((2, 100), np.float32)
    block[0, 10:15] = [2, 6, 10, 6, 2]
    baseline, noise = qc_metrics.floor_and_noise(block)
    assert (baseline[0], baseline[1], noise[1]) == (6.0, 0.0, 0.0) and noise[0] == pytest.approx(4 * 1.4826)
    assert qc_metrics.peak_counts(block, np.zeros(2), centroided=False).tolist() == [1, 0]
    assert qc_metrics.peak_counts(block, np.zeros(2), centroided=True).tolist() == [5, 0]


def test_the_merge_names_a_shard_without_metrics(dataset, tmp_path, capsys):
    run_qc(dataset(), tmp_path)
    (tmp_path / "shards" / "4-8.npz").unlink()
    with pytest.raises(SystemExit) as exit:
        qc_merge.main(merge_args(tmp_path, tmp_path / "again", DEFAULTS))
    assert exit.value.code == 1 and "--metrics-dir: no metrics for 1 shard(s): 4-8.npz" in capsys.readouterr().err
