"""Each step program run for real on small imzML files, its outputs checked against pyimzML."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pyimzml.ImzMLParser import ImzMLParser

from labcommons.demo.imzml import LIPID_MZ
from workflow_templates.steps import convert, preprocess, preprocess_merge, qc_merge, qc_shard
from workflow_templates.steps.shards import read_shard

PREPROCESS_DEFAULTS = ["--smoothing", "none", "--smoothing-window", "1", "--baseline", "none",
                       "--baseline-window", "10", "--peak-picking", "false", "--snr", "3"]


def _args(options: list[str], **changes: str) -> list[str]:
    """options with --name values replaced by changes (name_with_underscores=value)."""
    result = list(options)
    for name, value in changes.items():
        result[result.index("--" + name.replace("_", "-")) + 1] = value
    return result


def _run(main, argv, capsys) -> tuple[int, str]:
    """(exit status, stderr) of a step program's main."""
    try:
        main(argv)
        status = 0
    except SystemExit as exit:
        status = exit.code if isinstance(exit.code, int) else 1
    return status, capsys.readouterr().err


@pytest.mark.parametrize("mode", ["continuous", "processed"])
def test_convert_writes_every_spectrum_into_shards_of_n(mode, converted, imzml, spectra_of):
    out_dir, shards = converted(mode, per_shard=50)
    coords, spectra = spectra_of(imzml(mode))
    assert len(shards) == math.ceil(len(spectra) / 50) == 3
    assert json.loads((out_dir / "shards.json").read_text()) == [str(s) for s in shards]
    dataset = json.loads((out_dir / "dataset.json").read_text())
    assert dataset == {"source": str(imzml(mode)), "mode": mode, "centroided": False, "spectra": 120, "shards": 3,
                       "spectra_per_shard": 50, "x_range": [1, 12], "y_range": [1, 10]}
    rows = [read_shard(s) for s in shards]
    assert [len(r) for r in rows] == [50, 50, 20]
    index = np.concatenate([r.index for r in rows])
    assert index.tolist() == list(range(120))
    assert np.concatenate([r.coords for r in rows]).tolist() == [list(c) for c in coords]
    for number, (mz, intensity) in enumerate(spectra):
        shard, row = divmod(number, 50)
        np.testing.assert_array_equal(rows[shard].mz[row], mz)
        np.testing.assert_array_equal(rows[shard].intensity[row], intensity)
    assert rows[0].metadata == {"source": str(imzml(mode)), "mode": mode, "centroided": "false"}


def test_convert_again_with_other_shards_leaves_no_stale_shard(imzml, tmp_path):
    assert len(convert.convert(imzml(), tmp_path, 20)) == 6
    shards = convert.convert(imzml(), tmp_path, 50)
    assert sorted(tmp_path.glob("shard-*.parquet")) == shards and len(shards) == 3


def test_convert_refuses_bad_arguments_naming_them(imzml, tmp_path, capsys):
    args = ["--imzml", str(imzml()), "--out-dir", str(tmp_path / "out"), "--spectra-per-shard", "0"]
    status, error = _run(convert.main, args, capsys)
    assert status == 2 and "argument --spectra-per-shard: must be an integer >= 1, not '0'" in error
    status, error = _run(convert.main, _args(args, imzml=str(tmp_path / "none.imzML")), capsys)
    assert status == 2 and "argument --imzml: no such file:" in error
    lonely = tmp_path / "lonely.imzML"
    lonely.write_bytes(imzml().read_bytes())
    status, error = _run(convert.main, _args(args, imzml=str(lonely), spectra_per_shard="5"), capsys)
    assert status == 1 and error.startswith("convert: error: --imzml: no .ibd file beside")
    not_xml = tmp_path / "junk.imzML"
    not_xml.write_text("not xml")
    not_xml.with_suffix(".ibd").write_bytes(b"")
    status, error = _run(convert.main, _args(args, imzml=str(not_xml), spectra_per_shard="5"), capsys)
    assert status == 1 and "cannot be read as imzML" in error


# Processed-mode spectra keep only points above the noise floor, so the picker's noise estimate
# sees mostly signal and a lower ratio finds the same peaks.
@pytest.mark.parametrize("mode, snr", [("continuous", 3.0), ("processed", 1.0)])
def test_qc_shard_metrics_agree_with_the_spectra(mode, snr, converted, imzml, spectra_of, tmp_path):
    _, shards = converted(mode)
    path = qc_shard.qc_shard(shards[1], tmp_path / "qc", snr=snr)
    metrics = json.loads(path.read_text())
    _, spectra = spectra_of(imzml(mode))
    mine = spectra[50:100]
    assert path.name == "shard-00001.json" and metrics["spectra"] == 50
    assert metrics["tic_sum"] == pytest.approx(sum(float(i.sum(dtype=np.float64)) for _, i in mine))
    assert metrics["tic_sum"] == pytest.approx(sum(metrics["pixels"]["tic"]))
    assert metrics["mz_min"] == min(m.min() for m, _ in mine)
    assert metrics["mz_max"] == max(m.max() for m, _ in mine)
    assert metrics["pixels"]["index"] == list(range(50, 100))
    assert metrics["pixels"]["median_intensity"][0] == pytest.approx(float(np.median(mine[0][1])))
    assert metrics["peaks_sum"] == sum(metrics["pixels"]["peaks"])
    # On tissue the simulated lipids and matrix ions stand well above the noise.
    assert max(metrics["pixels"]["peaks"]) >= len(LIPID_MZ) // 2
    assert all(noise >= 0 for noise in metrics["pixels"]["noise"])


def test_qc_shard_names_a_shard_that_is_not_one(tmp_path, capsys):
    junk = tmp_path / "shard-00000.parquet"
    junk.write_text("not parquet")
    status, error = _run(qc_shard.main, ["--shard", str(junk), "--out-dir", str(tmp_path), "--snr", "3"], capsys)
    assert status == 1 and error.startswith("qc_shard: error: --shard: ") and "not a readable Parquet shard" in error
    status, error = _run(qc_shard.main, ["--shard", str(junk), "--out-dir", str(tmp_path), "--snr", "-1"], capsys)
    assert status == 2 and "argument --snr: must be a finite number >= 0, not '-1'" in error


def test_a_higher_snr_counts_fewer_peaks(converted, tmp_path):
    _, shards = converted()
    low = json.loads(qc_shard.qc_shard(shards[1], tmp_path / "low", snr=1.0).read_text())
    high = json.loads(qc_shard.qc_shard(shards[1], tmp_path / "high", snr=20.0).read_text())
    assert high["peaks_sum"] < low["peaks_sum"]


@pytest.fixture
def qc_inputs(converted, tmp_path):
    """(manifest, metrics dir) after qc_shard ran on every shard of the continuous image."""
    out_dir, shards = converted()
    for shard in shards:
        qc_shard.qc_shard(shard, tmp_path / "qc" / "shards", snr=3.0)
    return out_dir / "shards.json", tmp_path / "qc" / "shards"


def _merge_args(manifest, metrics_dir, out_dir, **thresholds) -> list[str]:
    args = ["--manifest", str(manifest), "--metrics-dir", str(metrics_dir), "--out-dir", str(out_dir),
            "--min-spectra", "1", "--min-median-tic", "0", "--min-mean-peaks", "1"]
    return _args(args, **thresholds)


def test_qc_merge_reports_the_dataset_and_draws_its_tic(qc_inputs, imzml, spectra_of, tmp_path, capsys):
    manifest, metrics_dir = qc_inputs
    status, error = _run(qc_merge.main, _merge_args(manifest, metrics_dir, tmp_path / "qc"), capsys)
    assert status == 0, error
    report = json.loads((tmp_path / "qc" / "report.json").read_text())
    _, spectra = spectra_of(imzml())
    tics = [float(i.sum(dtype=np.float64)) for _, i in spectra]
    metrics = report["metrics"]
    assert metrics["spectra"] == 120 and metrics["shards"] == 3
    assert metrics["tic_total"] == pytest.approx(sum(tics))
    assert metrics["tic_median"] == pytest.approx(float(np.median(tics)))
    assert (metrics["mz_min"], metrics["mz_max"]) == (400.0, 1000.0)
    assert 0 < metrics["noise_level"] < metrics["median_intensity"] * 10
    assert metrics["peaks_mean"] == pytest.approx(metrics["peaks_total"] / 120)
    assert report["passed"] is True and (tmp_path / "qc" / "passed").read_text() == "true"
    png = (tmp_path / "qc" / "tic.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    scale = report["tic_image"]["scale"]
    assert (width, height) == (12 * scale, 10 * scale) and scale == 21


def test_qc_passes_or_fails_with_its_thresholds(qc_inputs, tmp_path, capsys):
    manifest, metrics_dir = qc_inputs
    _run(qc_merge.main, _merge_args(manifest, metrics_dir, tmp_path / "a"), capsys)
    median_tic = json.loads((tmp_path / "a" / "report.json").read_text())["metrics"]["tic_median"]
    for name, value, failing in [("min_median_tic", median_tic * 0.99, None),
                                 ("min_median_tic", median_tic * 1.01, "tic_median"),
                                 ("min_spectra", "121", "spectra"), ("min_spectra", "120", None),
                                 ("min_mean_peaks", "1000", "peaks_mean")]:
        out = tmp_path / f"{name}-{value}"
        status, _ = _run(qc_merge.main, _merge_args(manifest, metrics_dir, out, **{name: str(value)}), capsys)
        assert status == 0  # a failed check is a result, not an error
        report = json.loads((out / "report.json").read_text())
        assert (out / "passed").read_text() == ("false" if failing else "true"), (name, value)
        assert [c["metric"] for c in report["checks"] if not c["passed"]] == ([failing] if failing else [])


def test_qc_merge_names_a_shard_without_metrics(qc_inputs, tmp_path, capsys):
    manifest, metrics_dir = qc_inputs
    (metrics_dir / "shard-00002.json").write_text("{}")
    status, error = _run(qc_merge.main, _merge_args(manifest, metrics_dir, tmp_path / "qc"), capsys)
    assert status == 1 and "--metrics-dir: shard-00002.json is not a qc_shard metrics file" in error
    (metrics_dir / "shard-00001.json").unlink()
    status, error = _run(qc_merge.main, _merge_args(manifest, metrics_dir, tmp_path / "qc"), capsys)
    assert status == 1
    assert "--metrics-dir: no metrics for 1 shard(s)" in error and "shard-00001.parquet" in error
    manifest.write_text('{"not": "a list"}')
    status, error = _run(qc_merge.main, _merge_args(manifest, metrics_dir, tmp_path / "qc"), capsys)
    assert status == 1 and "--manifest: the shard manifest" in error


def _preprocessed(shard, tmp_path, **changes) -> object:
    args = _args(["--shard", str(shard), "--out-dir", str(tmp_path / "pre")] + PREPROCESS_DEFAULTS, **changes)
    return read_shard(preprocess.run(preprocess.parser().parse_args(args)))


def _roughness(values: np.ndarray) -> float:
    return float(np.sum(np.diff(values.astype(np.float64), 2) ** 2))


def test_preprocess_with_nothing_to_do_keeps_the_spectra(converted, tmp_path):
    _, shards = converted()
    before, after = read_shard(shards[0]), _preprocessed(shards[0], tmp_path)
    assert after.index.tolist() == before.index.tolist()
    for mz_before, mz_after in zip(before.mz, after.mz):
        np.testing.assert_array_equal(mz_before, mz_after)
    for it_before, it_after in zip(before.intensity, after.intensity):
        np.testing.assert_allclose(it_before, it_after)


@pytest.mark.parametrize("method", ["gaussian", "savitzky-golay"])
def test_smoothing_makes_spectra_smoother(method, converted, tmp_path):
    _, shards = converted()
    before = read_shard(shards[0])
    after = _preprocessed(shards[0], tmp_path, smoothing=method, smoothing_window="3")
    assert after.metadata["processing"].startswith(f"smoothing={method}:3.0")
    for raw, smooth in zip(before.intensity, after.intensity):
        assert _roughness(smooth) < 0.5 * _roughness(raw)
        assert smooth.sum() == pytest.approx(raw.sum(), rel=0.05)  # smoothing keeps the signal


def test_tophat_removes_the_baseline_but_keeps_the_peaks(converted, tmp_path):
    _, shards = converted()
    before = read_shard(shards[1])
    after = _preprocessed(shards[1], tmp_path, baseline="tophat", baseline_window="10")
    tissue = int(np.argmax([i.sum() for i in before.intensity]))
    raw, flat, mz = before.intensity[tissue], after.intensity[tissue], before.mz[tissue]
    assert np.median(flat) < 0.5 * np.median(raw)  # the chemical-noise floor is gone
    peak = int(np.argmin(np.abs(mz - LIPID_MZ[-1])))
    assert flat[peak] > 0.5 * raw[peak]  # a lipid peak survives


def test_peak_picking_yields_centroids_at_the_simulated_ions(converted, tmp_path):
    _, shards = converted()
    before = read_shard(shards[1])
    after = _preprocessed(shards[1], tmp_path, smoothing="gaussian", baseline="tophat", peak_picking="true")
    assert after.metadata["centroided"] == "true"
    tissue = int(np.argmax([i.sum() for i in before.intensity]))
    centroids = after.mz[tissue]
    assert 0 < len(centroids) < len(before.mz[tissue]) / 20
    found = [ion for ion in LIPID_MZ if np.min(np.abs(centroids - ion)) < 0.1]
    assert len(found) >= len(LIPID_MZ) - 2


def test_preprocess_refuses_a_bad_method_naming_the_argument(converted, tmp_path, capsys):
    _, shards = converted()
    args = _args(["--shard", str(shards[0]), "--out-dir", str(tmp_path)] + PREPROCESS_DEFAULTS, smoothing="median")
    status, error = _run(preprocess.main, args, capsys)
    assert status == 2 and "argument --smoothing: invalid choice: 'median'" in error
    status, error = _run(preprocess.main, _args(args, smoothing="none", peak_picking="maybe"), capsys)
    assert status == 2 and "argument --peak-picking: must be true or false, not 'maybe'" in error


@pytest.fixture
def processed(converted, tmp_path):
    """(manifest, processed shards dir): every shard peak-picked."""
    out_dir, shards = converted()
    for shard in shards:
        _preprocessed(shard, tmp_path, peak_picking="true")
    return out_dir / "shards.json", tmp_path / "pre"


def _collect_args(processed, out_dir, output_format: str) -> list[str]:
    manifest, shards_dir = processed
    return ["--manifest", str(manifest), "--shards-dir", str(shards_dir), "--out-dir", str(out_dir),
            "--format", output_format]


def test_preprocess_merge_lists_the_processed_shards(processed, tmp_path, capsys):
    shards_dir = processed[1]
    assert _run(preprocess_merge.main, _collect_args(processed, tmp_path / "out", "parquet"), capsys)[0] == 0
    listed = json.loads((tmp_path / "out" / "shards.json").read_text())
    assert listed == [str(shards_dir / f"shard-{n:05d}.parquet") for n in range(3)]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["spectra"] == 120 and summary["centroided"] is True and "imzml" not in summary


def test_preprocess_merge_writes_a_readable_imzml(processed, tmp_path, capsys):
    shards_dir = processed[1]
    assert _run(preprocess_merge.main, _collect_args(processed, tmp_path / "out", "imzml"), capsys)[0] == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    shards = [read_shard(shards_dir / f"shard-{n:05d}.parquet") for n in range(3)]
    kept = [(tuple(c), mz, i) for s in shards for c, mz, i in zip(s.coords, s.mz, s.intensity) if len(mz)]
    assert summary["empty_spectra_skipped"] == 120 - len(kept)
    with ImzMLParser(summary["imzml"]) as parser:
        assert len(parser.coordinates) == len(kept)
        for number in (0, len(kept) - 1):
            mz, intensity = parser.getspectrum(number)
            assert tuple(parser.coordinates[number]) == kept[number][0]
            np.testing.assert_allclose(mz, kept[number][1])
    assert not list((tmp_path / "out").glob("*-part*"))


def test_centroided_imzml_counts_its_points_as_peaks_and_is_not_processed_again(
        processed, tmp_path, capsys):
    assert _run(preprocess_merge.main, _collect_args(processed, tmp_path / "pre", "imzml"), capsys)[0] == 0
    shards = convert.convert(tmp_path / "pre" / "processed.imzML", tmp_path / "again", 50)
    again = read_shard(shards[0])
    assert again.metadata["centroided"] == "true" and again.metadata["mode"] == "processed"
    metrics = json.loads(qc_shard.qc_shard(shards[0], tmp_path / "qc", snr=3.0).read_text())
    assert metrics["pixels"]["peaks"] == [len(mz) for mz in again.mz]
    args = ["--shard", str(shards[0]), "--out-dir", str(tmp_path / "x")] + PREPROCESS_DEFAULTS
    status, error = _run(preprocess.main, _args(args, smoothing="gaussian"), capsys)
    assert status == 1 and "--shard: shard-00000.parquet holds centroided spectra" in error
    assert _run(preprocess.main, args, capsys)[0] == 0  # none/none/false copies them


def test_preprocess_merge_names_a_missing_shard(processed, tmp_path, capsys):
    (processed[1] / "shard-00002.parquet").unlink()
    status, error = _run(preprocess_merge.main, _collect_args(processed, tmp_path / "out", "parquet"), capsys)
    assert status == 1 and "no processed shard for 1 shard(s)" in error and "shard-00002.parquet" in error
