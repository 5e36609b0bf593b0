"""Each step program run for real on small imzML files, its outputs checked against pyimzML."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pyimzml.ImzMLParser import ImzMLParser

from labcommons.demo.imzml import LIPID_MZ
from workflow_templates.steps import convert, preprocess, preprocess_merge, qc_index, qc_shard
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
    assert after.metadata["processing"].startswith(f"smoothing={method}:3 m/z")
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
    status, error = _run(preprocess.main, _args(args, smoothing="gaussian", smoothing_window="0 ppm"), capsys)
    assert status == 2 and "argument --smoothing-window: must be a positive width with its unit" in error


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
    [shard] = qc_index.qc_index(tmp_path / "pre" / "processed.imzML", tmp_path / "index", 1000, "default")
    count = int(shard.split(":")[1])
    with np.load(qc_shard.qc_shard(tmp_path / "index", (0, count), tmp_path / "qc", 3.0, 30.0)) as metrics, \
            ImzMLParser(str(tmp_path / "pre" / "processed.imzML")) as parser:
        assert metrics["peaks"].tolist() == [np.count_nonzero(parser.getspectrum(i)[1] > 0) for i in range(count)]
    args = ["--shard", str(shards[0]), "--out-dir", str(tmp_path / "x")] + PREPROCESS_DEFAULTS
    changes = {"smoothing": "gaussian", "baseline": "tophat", "peak_picking": "true"}
    assert _run(preprocess.main, _args(args, **changes), capsys)[0] == 0
    copied = read_shard(tmp_path / "x" / "shard-00000.parquet")  # centroids are copied, not picked again
    assert copied.metadata["processing"] == preprocess.CENTROIDED and copied.metadata["centroided"] == "true"
    for mz_before, mz_after in zip(again.mz, copied.mz):
        np.testing.assert_array_equal(mz_before, mz_after)


def test_preprocess_merge_names_a_missing_shard(processed, tmp_path, capsys):
    (processed[1] / "shard-00002.parquet").unlink()
    status, error = _run(preprocess_merge.main, _collect_args(processed, tmp_path / "out", "parquet"), capsys)
    assert status == 1 and "no processed shard for 1 shard(s)" in error and "shard-00002.parquet" in error
