"""Ion images (ims/images.py) against a straightforward pyimzML loop, on generated imzML pairs of
both modes with pixels missing; the m/z window's validation; the top peaks of a spectrum."""
from __future__ import annotations

import numpy as np
import pytest
from pyimzml.ImzMLParser import ImzMLParser
from pyimzml.ImzMLWriter import ImzMLWriter

from ims import images
from ims.layout import read_pair

WIDTH, HEIGHT = 9, 6
MISSING = {(2, 3), (9, 1)}   # pixels without a spectrum


@pytest.fixture(scope="module", params=[("continuous", np.float32), ("processed", np.float32),
                                        ("processed", np.float64)], ids=["continuous", "processed", "processed-f8"])
def pair(request, tmp_path_factory):
    """(imzML path, ibd path) of a WIDTH x HEIGHT image with MISSING pixels; processed spectra have
    lengths and axes of their own."""
    mode, dtype = request.param
    base = tmp_path_factory.mktemp("ions") / "image"
    rng = np.random.default_rng(7)
    axis = np.linspace(400.0, 1000.0, 3000)
    with ImzMLWriter(str(base), mode=mode, intensity_dtype=dtype) as writer:
        for y in range(1, HEIGHT + 1):
            for x in range(1, WIDTH + 1):
                if (x, y) in MISSING:
                    continue
                mz = axis if mode == "continuous" else np.sort(rng.uniform(400.0, 1000.0, rng.integers(0, 4000)))
                writer.addSpectrum(mz, rng.gamma(2.0, 50.0, len(mz)), (x, y))
    return base.with_suffix(".imzML"), base.with_suffix(".ibd")


def naive(imzml, query: images.Window) -> np.ndarray:
    """The ion image as anyone would write it with pyimzML: every spectrum, a mask, a sum."""
    parser = ImzMLParser(str(imzml))
    image = np.full((HEIGHT, WIDTH), np.nan)
    for number, (x, y, _) in enumerate(parser.coordinates):
        mz, intensity = parser.getspectrum(number)
        image[y - 1, x - 1] = intensity[(mz >= query.low) & (mz <= query.high)].astype(np.float64).sum()
    return image


@pytest.mark.parametrize("query", [images.window(700.0, ppm=5), images.window(700.0, ppm=1000),
                                   images.window(612.3, da=0.05), images.window(800.0, da=10),
                                   images.window(999.9, da=1), images.window(400.0, da=0.5)],
                         ids=["ppm-5", "ppm-1000", "da-0.05", "da-10", "upper-edge", "lower-edge"])
def test_an_ion_image_equals_the_pyimzml_loop_exactly(pair, query):
    found = images.ion_image(read_pair(*pair), pair[1], query)
    expected = naive(pair[0], query)
    assert found.shape == (HEIGHT, WIDTH)
    assert np.array_equal(found, expected, equal_nan=True)
    assert np.isnan(found[2, 1]) and np.isnan(found[0, 8])  # (2, 3) and (9, 1): no spectrum
    assert np.count_nonzero(np.isnan(found)) == len(MISSING)


def test_values_read_a_few_at_a_time_give_the_same_image(pair, monkeypatch):
    monkeypatch.setattr(images, "GATHER", 7)   # wide windows and many spectra are read in pieces
    query = images.window(800.0, da=10)
    assert np.array_equal(images.ion_image(read_pair(*pair), pair[1], query), naive(pair[0], query), equal_nan=True)


def test_without_a_sparse_index_the_binary_search_gives_the_same_image(pair):
    layout, query = read_pair(*pair), images.window(612.3, da=2)
    buffer = np.fromfile(pair[1], dtype=np.uint8)
    assert np.array_equal(layout.on_grid(images.window_sums(buffer, layout, query)), naive(pair[0], query),
                          equal_nan=True)


def test_a_window_holding_no_point_gives_zeros_where_there_are_spectra(pair):
    found = images.ion_image(read_pair(*pair), pair[1], images.window(5000.0, da=1))
    assert np.array_equal(found, np.where(np.isnan(naive(pair[0], images.window(700, ppm=1))), np.nan, 0.0),
                          equal_nan=True)


def test_both_searches_are_searchsorted_for_every_array():
    rng = np.random.default_rng(1)
    arrays = [np.sort(rng.uniform(0, 10, n)).astype("<f4") for n in (0, 1, 2, 7, 63, 64, 65, 100, 1000)]
    arrays.append(np.array([1, 2, 2, 2, 3], dtype="<f4"))   # ties: left and right sides differ
    buffer = np.frombuffer(b"".join(a.tobytes() for a in arrays), dtype=np.uint8)
    offsets = np.cumsum([0] + [a.nbytes for a in arrays[:-1]])
    lengths = np.array([len(a) for a in arrays])
    samples = images.sample(buffer, offsets, lengths, "<f4")
    for value in (-1.0, 0.5, 2.0, 5.0, 9.99, 11.0, *arrays[-3][[0, 63, 64]].astype(float)):
        expected = {side: [int(np.searchsorted(a.astype(np.float64), value, side)) for a in arrays]
                    for side in ("left", "right")}
        for side in ("left", "right"):
            assert images.search(buffer, offsets, lengths, "<f4", value, right=side == "right").tolist() == expected[side]
        found = images.sampled_window(buffer, offsets, lengths, "<f4", value, value, samples)
        assert [f.tolist() for f in found] == [expected["left"], expected["right"]]
    wide = images.sampled_window(buffer, offsets, lengths, "<f4", 1.0, 9.0, samples)   # past the scan: searched
    assert wide[1].tolist() == [int(np.searchsorted(a.astype(np.float64), 9.0, "right")) for a in arrays]


def test_values_are_read_at_unaligned_offsets_too():
    data = np.arange(10, dtype="<f8")
    buffer = np.frombuffer(b"\0\0\0" + data.tobytes() + data.tobytes(), dtype=np.uint8)
    rows = images.values(buffer, np.array([3, 3 + 80 + 16]), 3, "<f8")
    assert rows.tolist() == [[0, 1, 2], [2, 3, 4]]
    aligned = images.values(buffer, np.array([3, 3 + 8]), np.array([0, 4]), "<f8")
    assert aligned.tolist() == [[0, 4], [1, 5]]


@pytest.mark.parametrize("arguments, field, words", [
    (dict(mz=0, ppm=5), "m/z", "m/z must be a number above 0 and at most 100,000, not 0"),
    (dict(mz="abc", ppm=5), "m/z", "not 'abc'"),
    (dict(mz=float("nan"), ppm=5), "m/z", "above 0"),
    (dict(mz=500), "tolerance", "either in ppm or in Da"),
    (dict(mz=500, ppm=5, da=0.1), "tolerance", "either in ppm or in Da"),
    (dict(mz=500, ppm=0), "tolerance (ppm)", "tolerance (ppm) must be a number above 0 and at most 1000 ppm"),
    (dict(mz=500, ppm=1001), "tolerance (ppm)", "at most 1000 ppm"),
    (dict(mz=500, da=-1), "tolerance (Da)", "tolerance (Da) must be a number above 0 and at most 10 Da"),
    (dict(mz=500, da="wide"), "tolerance (Da)", "not 'wide'"),
])
def test_a_window_out_of_range_is_refused_naming_the_field_and_range(arguments, field, words):
    with pytest.raises(images.WindowError, match=words.replace("(", r"\(").replace(")", r"\)")) as refused:
        images.window(**arguments)
    assert refused.value.field == field


@pytest.mark.parametrize("typed, expected", [("5 ppm", ("ppm", 5.0)), ("0.25Da", ("Da", 0.25)),
                                             (" 1e1 PPM ", ("ppm", 10.0)), ("2 da", ("Da", 2.0))])
def test_a_tolerance_typed_with_its_unit_is_read(typed, expected):
    query = images.typed_window("760.5", typed)
    assert (query.unit, query.tolerance, query.mz) == (*expected, 760.5)


@pytest.mark.parametrize("typed", ["5", "ppm", "5 mDa", "", None, "5 ppm 3"])
def test_a_tolerance_without_a_known_unit_is_refused_saying_how_to_type_it(typed):
    with pytest.raises(images.WindowError, match=r"tolerance must be a number and its unit, ppm or Da") as refused:
        images.typed_window("760.5", typed)
    assert refused.value.field == "tolerance"


def test_a_window_says_its_bounds():
    query = images.window(760.585, ppm=5)
    assert query.low == pytest.approx(760.585 - 760.585 * 5e-6) and query.high == pytest.approx(760.585 * (1 + 5e-6))
    assert query.label() == "m/z 760.5850 ± 5 ppm (760.5812–760.5888)"
    assert images.window(760.585, da=0.25).label() == "m/z 760.5850 ± 0.25 Da (760.3350–760.8350)"


def test_the_top_peaks_are_the_highest_local_maxima():
    mz = np.arange(10.0)
    intensity = np.array([0, 5, 1, 0, 9, 9, 2, 3, 1, 7])   # maxima at 1, 4 (a plateau: once), 7
    assert images.top_peaks(mz, intensity) == [(4.0, 9.0), (1.0, 5.0), (7.0, 3.0)]
    assert images.top_peaks(mz, intensity, count=1) == [(4.0, 9.0)]
    assert images.top_peaks(mz[:2], intensity[:2]) == []
    # centroids: each point is a peak, its neighbours' heights notwithstanding (9 beside 9, 7 at the end)
    assert images.top_peaks(mz, intensity, count=4, centroid=True) == [(4.0, 9.0), (5.0, 9.0), (9.0, 7.0), (1.0, 5.0)]
    assert images.top_peaks(mz[:2], intensity[:2], centroid=True) == [(1.0, 5.0)]


def test_spectra_whose_mz_are_not_sorted_are_found_and_summed_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "RUN", 50)   # the order is checked a few arrays at a time
    rng = np.random.default_rng(3)
    base = tmp_path / "unsorted"
    with ImzMLWriter(str(base), mode="processed") as writer:
        for x in range(1, 9):
            mz = np.linspace(400.0, 1000.0, 40 + x)
            if x == 3:
                mz = mz[::-1]                       # a writer that lists m/z downwards
            if x == 8:
                mz[[2, -1]] = mz[[-1, 2]]           # ... or keeps one peak out of order
            writer.addSpectrum(mz, rng.gamma(2.0, 50.0, len(mz)), (x, 1))
    imzml, ibd = base.with_suffix(".imzML"), base.with_suffix(".ibd")
    layout, buffer = read_pair(imzml, ibd), np.fromfile(ibd, dtype=np.uint8)
    assert images.unsorted(buffer, layout.spans[:, 0], layout.spans[:, 1], layout.dtypes[0]).tolist() == [2, 7]
    parser = ImzMLParser(str(imzml))
    for query in (images.window(700.0, da=10), images.window(995.0, da=10), images.window(450.0, da=10)):
        expected = [float(i[(m >= query.low) & (m <= query.high)].astype(np.float64).sum())
                    for m, i in map(parser.getspectrum, range(8))]
        assert images.ion_image(layout, ibd, query)[0].tolist() == expected
        assert images.window_sums(buffer, layout, query).tolist() == expected


def test_sorted_arrays_are_not_taken_for_unsorted(pair):
    layout, buffer = read_pair(*pair), np.fromfile(pair[1], dtype=np.uint8)
    assert images.unsorted(buffer, layout.spans[:, 0], layout.spans[:, 1], layout.dtypes[0]).size == 0


def test_unsorted_arrays_are_found_at_any_alignment():
    arrays = [np.array([1.0, 2.0, 3.0]), np.array([3.0, 1.0]), np.array([5.0]), np.array([1.0, 1.0, 0.5])]
    data, offsets = b"", []
    for pad, array in zip((0, 3, 1, 0), arrays):   # offsets of three alignments
        data += b"\0" * pad
        offsets.append(len(data))
        data += array.astype("<f8").tobytes()
    buffer, lengths = np.frombuffer(data, dtype=np.uint8), np.array([len(a) for a in arrays])
    assert images.unsorted(buffer, np.array(offsets), lengths, "<f8").tolist() == [1, 3]
