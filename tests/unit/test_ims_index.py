"""ims.header's spectrum index, the one reading of an imzML that registration, previews, ion images
and QC share, equals pyimzML's parse (the oracle) exactly: coordinates, offsets, lengths, types,
and the spectra read at those offsets."""
import io

import numpy as np
import pytest
from pyimzml.ImzMLParser import ImzMLParser
from pyimzml.ImzMLWriter import ImzMLWriter

from ims import layout
from ims.header import read_header
from labcommons.demo.images import ImageSpec, write_image
from labcommons.demo.imzml import write_imzml_pair
from tests.imzml_files import instrument_pair, write_pair
from workflow_templates.steps import ibd as qc_ibd

TYPES = [(np.float64, np.float32), (np.float32, np.float64), (np.float64, np.int32), (np.float32, np.int64)]


def typed_pair(directory, mode: str, mz_dtype, intensity_dtype):
    """A 4 x 3 image whose processed spectra differ in length and m/z."""
    base = directory / "typed"
    with ImzMLWriter(str(base), mode=mode, mz_dtype=mz_dtype, intensity_dtype=intensity_dtype) as writer:
        for y in range(1, 4):
            for x in range(1, 5):
                points = 12 if mode == "continuous" else 8 + x + y
                mzs = np.linspace(300.0 + (0 if mode == "continuous" else x * 0.01), 900.0, points)
                writer.addSpectrum(mzs, np.arange(points, dtype=intensity_dtype) * (x + y), (x, y))
    return base.with_suffix(".imzML"), base.with_suffix(".ibd")


def assert_same_as_pyimzml(xml: bytes, binary: bytes, mode: str) -> None:
    header = read_header(io.BytesIO(xml))
    found = layout.from_header(header, io.BytesIO(binary))
    oracle = ImzMLParser(io.BytesIO(xml), ibd_file=io.BytesIO(binary))
    extents = header.extents
    assert np.column_stack([extents["x"], extents["y"], extents["z"]]).tolist() == [list(c) for c in oracle.coordinates]
    assert extents["mz_offset"].tolist() == oracle.mzOffsets and extents["mz_length"].tolist() == oracle.mzLengths
    assert extents["intensity_offset"].tolist() == oracle.intensityOffsets
    assert extents["intensity_length"].tolist() == oracle.intensityLengths
    assert found.dtypes == (np.dtype(oracle.mzPrecision).str, np.dtype(oracle.intensityPrecision).str)
    stream = io.BytesIO(binary)
    for number in range(len(oracle.coordinates)):
        mzs, intensities = oracle.getspectrum(number)
        ours = layout.read_spectrum(stream, found.spans[number], found.dtypes)
        np.testing.assert_array_equal(ours[0], mzs)
        np.testing.assert_array_equal(ours[1], intensities)
    assert found.continuous == (mode == "continuous") and header.storage == mode
    qc = qc_ibd.from_header(header, len(binary))
    assert qc.continuous == found.continuous and qc["readable"].all() and len(qc) == len(oracle.coordinates)
    assert qc["int_offset"].tolist() == oracle.intensityOffsets


@pytest.mark.parametrize("mode", ["continuous", "processed"])
@pytest.mark.parametrize("mz_dtype,intensity_dtype", TYPES)
def test_the_index_of_every_binary_type_equals_pyimzmls(tmp_path, mode, mz_dtype, intensity_dtype):
    imzml, ibd = typed_pair(tmp_path, mode, mz_dtype, intensity_dtype)
    assert_same_as_pyimzml(imzml.read_bytes(), ibd.read_bytes(), mode)


@pytest.mark.parametrize("mode", ["continuous", "processed"])
def test_the_index_of_the_test_pairs_equals_pyimzmls(tmp_path, mode):
    imzml, ibd = write_pair(tmp_path, mode=mode, width=5, height=4)
    assert_same_as_pyimzml(imzml.read_bytes(), ibd.read_bytes(), mode)


def test_the_index_of_an_instruments_header_equals_pyimzmls():
    xml, binary = instrument_pair()   # groups referenced by spectra and arrays, a z-less scan
    assert_same_as_pyimzml(xml, binary, "processed")


@pytest.mark.parametrize("mode", ["continuous", "processed"])
def test_the_index_of_the_demos_pairs_equals_pyimzmls(tmp_path, mode):
    records = write_imzml_pair(tmp_path, "demo-image", 12, 9, seed=11, mode=mode)
    assert_same_as_pyimzml(records[0]["path"].read_bytes(), records[1]["path"].read_bytes(), mode)


def test_the_index_of_a_demo_image_with_missing_pixels_equals_pyimzmls(tmp_path):
    records, _ = write_image(tmp_path, ImageSpec(name="gaps", width=10, height=9, seed=5, matrix="DHB",
                                                 mode="processed", spectrum_type="centroid", flaw="missing_pixels"))
    assert_same_as_pyimzml(records[0]["path"].read_bytes(), records[1]["path"].read_bytes(), "processed")


def test_offsets_written_as_signed_32_bit_numbers_are_unwrapped_as_pyimzml_does(tmp_path):
    imzml, ibd = write_pair(tmp_path, mode="processed", width=2, height=1, points=4)
    text = imzml.read_text("iso-8859-1")
    header = read_header(imzml)
    offset = int(header.extents["intensity_offset"][1])
    wrapped = text.replace(f'name="external offset" value="{offset}"', f'name="external offset" value="{offset - 2 ** 32}"')
    assert wrapped != text
    read = read_header(io.BytesIO(wrapped.encode("iso-8859-1")))
    # a negative offset after a positive one is read 2**32 further on: the offset it stood for
    assert read.extents["intensity_offset"].tolist() == header.extents["intensity_offset"].tolist()
    assert read.expected_ibd_bytes() == ibd.stat().st_size


def test_qc_reads_a_processed_spectrum_with_unsorted_mz_sorted(tmp_path):
    base = tmp_path / "unsorted"
    with ImzMLWriter(str(base), mode="processed") as writer:
        writer.addSpectrum(np.array([500.0, 400.0, 600.0]), np.array([5, 4, 6], dtype=np.float32), (1, 1))
        writer.addSpectrum(np.array([410.0, 510.0]), np.array([1, 2], dtype=np.float32), (2, 1))
    index = qc_ibd.from_header(read_header(base.with_suffix(".imzML")), base.with_suffix(".ibd").stat().st_size)
    read = list(qc_ibd.spectra(index, qc_ibd.open_ibd(base.with_suffix(".ibd")), np.arange(2)))
    assert [(a.tolist(), v.tolist()) for _, a, v in read] == [([400.0, 500.0, 600.0], [[4, 5, 6]]),
                                                              ([410.0, 510.0], [[1, 2]])]
