"""The demo's imzML writer: real files written to tmp_path and read back with pyimzML."""
import hashlib

import numpy as np
import pytest
from pyimzml.ImzMLParser import ImzMLParser

from labcommons.demo.imzml import AXIS_POINTS, MZ_HIGH, MZ_LOW, write_imzml_pair

WIDTH, HEIGHT = 24, 18
RECORD_KEYS = {"file_name", "data_format", "file_size", "md5sum", "sha256", "path"}
DRIFT = 20e-6  # processed spectra carry a few ppm of per-pixel calibration drift


@pytest.fixture(params=["continuous", "processed"])
def pair(request, tmp_path):
    """(mode, file records, parser) for a small image written in each mode."""
    records = write_imzml_pair(tmp_path, "demo-image", WIDTH, HEIGHT, seed=11, mode=request.param)
    with ImzMLParser(str(records[0]["path"])) as parser:
        yield request.param, records, parser


def _tic_image(parser) -> np.ndarray:
    tics = np.zeros((HEIGHT, WIDTH))
    for i, (x, y, _) in enumerate(parser.coordinates):
        tics[y - 1, x - 1] = parser.getspectrum(i)[1].sum()
    return tics


def test_one_spectrum_per_pixel_at_one_based_coordinates(pair):
    _, _, parser = pair
    assert len(parser.coordinates) == WIDTH * HEIGHT
    expected = {(x, y, 1) for x in range(1, WIDTH + 1) for y in range(1, HEIGHT + 1)}
    assert set(parser.coordinates) == expected


def test_mz_values_lie_in_the_acquired_range(pair):
    mode, _, parser = pair
    for i in range(0, len(parser.coordinates), 37):
        mzs, intensities = parser.getspectrum(i)
        assert len(mzs) == len(intensities) > 0
        assert np.all(np.diff(mzs) > 0)
        assert MZ_LOW * (1 - DRIFT) <= mzs.min() and mzs.max() <= MZ_HIGH * (1 + DRIFT)
        if mode == "continuous":
            assert len(mzs) == AXIS_POINTS


def test_continuous_shares_one_axis_and_processed_has_one_per_spectrum(pair):
    mode, _, parser = pair
    distinct_axes = len(set(parser.mzOffsets))
    assert distinct_axes == (1 if mode == "continuous" else WIDTH * HEIGHT)


def test_tissue_pixels_have_higher_tic_than_bare_slide(pair):
    _, _, parser = pair
    tics = _tic_image(parser)
    centre = tics[HEIGHT // 2 - 2:HEIGHT // 2 + 3, WIDTH // 2 - 2:WIDTH // 2 + 3]
    corners = np.array([tics[0, 0], tics[0, -1], tics[-1, 0], tics[-1, -1]])
    assert centre.min() > 2 * corners.max()


def test_lipid_peak_is_on_tissue_only(pair):
    _, _, parser = pair
    centre = parser.getspectrum(parser.coordinates.index((WIDTH // 2, HEIGHT // 2, 1)))
    corner = parser.getspectrum(0)
    assert _height_near(*centre, 760.585) > 5 * max(_height_near(*corner, 760.585), 1.0)


def _height_near(mzs: np.ndarray, intensities: np.ndarray, mz: float) -> float:
    window = np.abs(mzs - mz) < 0.5
    return float(intensities[window].max()) if window.any() else 0.0


def test_records_describe_the_written_files(pair):
    _, records, _ = pair
    assert [r["data_format"] for r in records] == ["imzML", "ibd"]
    assert [r["file_name"] for r in records] == ["demo-image.imzML", "demo-image.ibd"]
    for record in records:
        assert set(record) == RECORD_KEYS
        assert record["path"].is_absolute() and record["path"].name == record["file_name"]
        data = record["path"].read_bytes()
        assert record["file_size"] == len(data) == record["path"].stat().st_size
        assert record["md5sum"] == hashlib.md5(data).hexdigest()
        assert record["sha256"] == hashlib.sha256(data).hexdigest()


def test_same_inputs_give_the_same_bytes_in_any_directory(tmp_path):
    first = write_imzml_pair(tmp_path / "a", "same", 20, 15, seed=3)
    second = write_imzml_pair(tmp_path / "b" / "deeper", "same", 20, 15, seed=3)
    other_seed = write_imzml_pair(tmp_path / "c", "same", 20, 15, seed=4)
    assert [r["sha256"] for r in first] == [r["sha256"] for r in second]
    assert first[1]["sha256"] != other_seed[1]["sha256"]


def test_unknown_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        write_imzml_pair(tmp_path, "bad", 4, 4, seed=1, mode="auto")
