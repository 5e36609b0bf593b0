"""The demo's imzML writers (the fixed test image, and the varied measurement images): real files
written to tmp_path and read back with pyimzML."""
import hashlib

import numpy as np
import pytest
from pyimzml.ImzMLParser import ImzMLParser

from ims import header as header_reader, pair as pair_check
from ims.reference_ions import defaults
from labcommons.demo.images import ImageSpec, write_image
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


# -- the demo's measurement images (labcommons/demo/images.py) ---------------------------------

KINDS = [("continuous", "profile", "positive"), ("processed", "profile", "negative"),
         ("processed", "centroid", "positive"), ("continuous", "centroid", "negative")]


def _image(directory, **fields):
    """(records, header, parser) of a 10 x 9 image written with these spec fields."""
    spec = ImageSpec(name=fields.pop("name", "img"), width=10, height=9, seed=fields.pop("seed", 5),
                     matrix=fields.pop("matrix", "DHB"), **fields)
    records, header = write_image(directory, spec)
    return records, header, ImzMLParser(str(records[0]["path"]))


@pytest.mark.parametrize("mode,spectrum_type,polarity", KINDS)
def test_each_kind_of_image_reads_back_as_its_header_says(tmp_path, mode, spectrum_type, polarity):
    records, header, parser = _image(tmp_path, mode=mode, spectrum_type=spectrum_type, polarity=polarity,
                                     matrix="9-AA" if polarity == "negative" else "DHB", pixel_size_um=7.5)
    with parser:
        assert (parser.polarity, parser.spectrum_mode) == (polarity, spectrum_type)
        assert len(set(parser.mzOffsets)) == (1 if mode == "continuous" else 90)
        declared = parser.imzmldict
        assert (declared["max count of pixels x"], declared["max count of pixels y"]) == (10, 9)
        assert declared["pixel size x"] == declared["pixel size y"] == 7.5 and declared["max dimension x"] == 75
        spectra = [parser.getspectrum(i) for i in range(len(parser.coordinates))]
    assert header == {"raster_width": 10, "raster_height": 9, "pixel_size_um": 7.5, "polarity": polarity,
                      "mass_range_low": round(min(m[0] for m, _ in spectra), 4),
                      "mass_range_high": round(max(m[-1] for m, _ in spectra), 4),
                      "spectrum_type": spectrum_type, "imzml_mode": mode}
    assert all(len(m) == len(i) > 0 and np.all(np.diff(m) > 0) for m, i in spectra)
    for record in records:
        data = record["path"].read_bytes()
        assert (record["file_size"], record["md5sum"]) == (len(data), hashlib.md5(data).hexdigest())


def _ppm_errors(parser, polarity: str) -> np.ndarray:
    """Per reference ion in range, its ppm error: a Gaussian apex fit in the mean spectrum
    (continuous profile), else the median of the nearest centroids over the pixels."""
    spectra = [parser.getspectrum(i) for i in range(len(parser.coordinates))]
    errors = []
    for ion in defaults(polarity):
        found = []
        for mzs, intensities in spectra:
            near = np.abs(mzs - ion.mz) < ion.mz * 40e-6
            if near.any() and intensities[near].max() > 100:
                found.append(_apex(mzs[near], intensities[near]) if parser.spectrum_mode == "profile"
                             else mzs[near][np.argmax(intensities[near])])
        if found:
            errors.append((np.median(found) - ion.mz) / ion.mz * 1e6)
    return np.array(errors)


def _apex(mzs: np.ndarray, intensities: np.ndarray) -> float:
    """The apex of a Gaussian through the highest point and its neighbours (a parabola in log)."""
    k = int(np.clip(np.argmax(intensities), 1, len(mzs) - 2))
    a, b, c = np.log(np.maximum(intensities[k - 1:k + 2], 1.0))
    return float(mzs[k] + (mzs[k + 1] - mzs[k - 1]) / 2 * (a - c) / (2 * (a - 2 * b + c)))


@pytest.mark.parametrize("mode,spectrum_type", [("continuous", "profile"), ("processed", "centroid")])
def test_reference_ions_sit_at_their_mz_and_the_drifted_image_10_ppm_above(tmp_path, mode, spectrum_type):
    errors = {}
    for flaw in ("", "drift"):
        _, _, parser = _image(tmp_path, name=f"img{flaw}", mode=mode, spectrum_type=spectrum_type, flaw=flaw)
        with parser:
            errors[flaw] = _ppm_errors(parser, "positive")
    assert len(errors[""]) >= 5  # DHB's ion and the lipids; CHCA's only shows with CHCA
    assert np.all(np.abs(errors[""]) < 2.5)
    assert np.median(errors["drift"]) == pytest.approx(10.0, abs=1.5)
    assert np.median(errors["drift"] - errors[""]) == pytest.approx(10.0, abs=0.5)


def test_missing_pixels_lose_the_middle_third_of_the_lines_and_keep_the_raster(tmp_path):
    _, header, parser = _image(tmp_path, flaw="missing_pixels")
    with parser:
        rows = {y for _, y, _ in parser.coordinates}
        assert len(parser.coordinates) == 60 and rows == {1, 2, 3, 7, 8, 9}
        assert (parser.imzmldict["max count of pixels x"], parser.imzmldict["max count of pixels y"]) == (10, 9)
    assert (header["raster_width"], header["raster_height"]) == (10, 9)


def test_a_truncated_ibd_cannot_hold_its_spectra_but_its_record_is_its_bytes(tmp_path):
    records, _, parser = _image(tmp_path, flaw="truncated")
    ibd = records[1]["path"].read_bytes()
    assert records[1]["file_size"] == len(ibd) and records[1]["sha256"] == hashlib.sha256(ibd).hexdigest()
    with parser:
        needed = max(o + n * 4 for o, n in zip(parser.intensityOffsets, parser.intensityLengths))
        assert len(ibd) < 0.7 * needed
        assert len(parser.getspectrum(0)[1]) == parser.intensityLengths[0]  # the start is intact
        last = len(parser.coordinates) - 1
        try:
            short = len(parser.getspectrum(last)[1]) < parser.intensityLengths[last]
        except ValueError:  # pyimzML's versions differ: fewer values, or none
            short = True
        assert short


def test_la_icp_images_carry_element_ions(tmp_path):
    _, header, parser = _image(tmp_path, elements=True, matrix="none", mz_low=6, mz_high=238, resolving_power=400)
    with parser:
        mzs, intensities = parser.getspectrum(parser.coordinates.index((5, 5, 1)))
    assert (header["mass_range_low"], header["mass_range_high"]) == (6.0, 238.0)
    assert intensities[np.abs(mzs - 55.93439) < 0.05].max() > 5 * np.median(intensities)  # 56Fe+


def test_a_spec_outside_what_is_allowed_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="flaw must be one of"):
        ImageSpec(name="x", width=4, height=4, seed=1, flaw="scratched")
    with pytest.raises(ValueError, match="spectrum_type"):
        ImageSpec(name="x", width=4, height=4, seed=1, spectrum_type="both")


@pytest.mark.parametrize("mode,spectrum_type,polarity", KINDS)
def test_registration_would_read_from_the_file_what_the_demo_sets(tmp_path, mode, spectrum_type, polarity):
    """ims.header (registration's reader) gives the header fields the demo sets on the measurement,
    and ims.pair takes the pair, but not the truncated one."""
    records, header, parser = _image(tmp_path, mode=mode, spectrum_type=spectrum_type, polarity=polarity,
                                     matrix="9-AA" if polarity == "negative" else "DHB")
    with parser:  # pyimzML's reading aside, what registration reads:
        assert header_reader.measurement_values(header_reader.read_header(records[0]["path"])) == header
        assert pair_check.check_pair(records[0]["path"], records[1]["path"]).problems == []
    truncated, _, _ = _image(tmp_path / "t", mode=mode, spectrum_type=spectrum_type, flaw="truncated")
    assert pair_check.check_pair(truncated[0]["path"], truncated[1]["path"]).problems
