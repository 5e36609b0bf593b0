"""ims.header reads what an imzML says of itself in one streamed pass, and refuses, with the place
named, what the commons cannot trust."""
import io
import re

import numpy as np
import pytest

from ims.header import HeaderError, measurement_values, read_header
from tests.imzml_files import INSTRUMENT_UUID, instrument_pair, write_pair


@pytest.mark.parametrize("mode", ["continuous", "processed"])
def test_a_written_pair_reads_as_written(tmp_path, mode):
    imzml, ibd = write_pair(tmp_path, mode=mode, width=3, height=2, polarity="negative", spec_type="centroid")
    header = read_header(imzml)
    assert (header.storage, header.polarity, header.spectrum_type) == (mode, "negative", "centroid")
    assert header.uuid == ibd.read_bytes()[:16].hex() and header.checksum[0] == "sha1"
    assert header.pixels == (3, 2) and header.spectra == 6
    assert header.mz_range == (400.0, 900.0) and header.mz_range_from == "observed m/z"
    assert (header.mz_type, header.intensity_type) == ("64-bit float", "32-bit float")
    assert header.expected_ibd_bytes() == ibd.stat().st_size
    assert list(header.extents["x"]) == [1, 2, 3, 1, 2, 3] and list(header.extents["y"]) == [1, 1, 1, 2, 2, 2]
    assert header.scan["linescan sequence"] == "top down" and not header.notes


def test_a_stream_reads_like_a_path(tmp_path):
    imzml, _ = write_pair(tmp_path)
    assert read_header(io.BytesIO(imzml.read_bytes())) == read_header(imzml)


def test_64_bit_intensities_are_accepted_and_said(tmp_path):
    imzml, _ = write_pair(tmp_path, intensity_dtype=np.float64)
    header = read_header(imzml)
    assert header.intensity_type == "64-bit float"
    assert any("64-bit float" in note and "legal" in note for note in header.notes)


def test_an_instruments_header_fills_the_measurement():
    xml, _ = instrument_pair()
    header = read_header(io.BytesIO(xml))
    assert header.uuid == INSTRUMENT_UUID.replace("-", "") and header.checksum[1] == header.checksum[1].lower()
    assert header.instrument.model == "timsTOF fleX"
    assert header.instrument.sources == ["matrix-assisted laser desorption ionization"]
    assert header.instrument.analyzers == ["time-of-flight"]
    assert header.scan["scan pattern"] == "meandering" and header.max_dimension == (40.0, 20.0)
    assert header.mz_range_from == "scan window"
    assert measurement_values(header) == {
        "instrument": "timsTOF fleX", "ionisation": "MALDI", "polarity": "negative", "mass_range_low": 300.0,
        "mass_range_high": 1350.0, "pixel_size_um": 20.0, "raster_width": 2, "raster_height": 1,
        "acquisition_date": "2024-06-20", "spectrum_type": "centroid", "imzml_mode": "processed"}


def mutated(tmp_path, old: str, new: str, count: int = 1) -> bytes:
    imzml, _ = write_pair(tmp_path)
    text = imzml.read_text("iso-8859-1")
    assert old in text, old
    return text.replace(old, new, count).encode("iso-8859-1")


def refusal(data: bytes) -> str:
    with pytest.raises(HeaderError) as refused:
        read_header(io.BytesIO(data))
    return str(refused.value)


BAD = {
    "broken XML": (lambda t: t[: len(t) // 2] + b"</oops>", r"not well-formed XML at line \d+, column \d+"),
    "no UUID": (('accession="IMS:1000080"', 'accession="MS:1000579"'), r"fileContent \(line \d+\) has no universally unique"),
    "bad UUID": (('value="{', 'value="{XYZ'), r"universally unique identifier '\{XYZ.*\(line \d+\) is not a UUID"),
    "no layout": (('accession="IMS:1000030" name="continuous"', 'accession="IMS:1999999" name="wavy"'),
                  r"neither of continuous \(IMS:1000030\) and processed.*unknown accessions: IMS:1999999 \('wavy', line \d+\)"),
    "unknown binary type": (('accession="MS:1000521" name="32-bit float"', 'accession="MS:1999999" name="odd float"'),
                            r"intensity array of spectrum 1 \(line \d+\) declares no binary data type it knows; "
                            r"unknown accessions: MS:1999999 \('odd float', line \d+\)"),
    "unsupported binary type": (('accession="MS:1000521" name="32-bit float"', 'accession="MS:1000520" name="16-bit float"'),
                                r"holds 16-bit float values \(MS:1000520\), which the commons cannot read"),
    "compressed": (('accession="MS:1000576" name="no compression"', 'accession="MS:1000574" name="zlib compression"'),
                   r"is compressed \(zlib compression, MS:1000574\)"),
    "zero-length spectrum": (('name="external array length" value="20"', 'name="external array length" value="0"', 2),
                             r"spectrum 1 \(line \d+\) is empty: its m/z array has 0 values"),
    "outside the grid": (('name="position x" value="3"', 'name="position x" value="9"'),
                         r"spectrum 3 \(line \d+\) lies at x=9, y=1, outside the declared grid of 3 x 2 pixels"),
    "no position": (('accession="IMS:1000051"', 'accession="IMS:1000052"'), r"spectrum 1 \(line \d+\) has no position"),
    "not imzML": (('<mzML ', '<html '), r"root element is <html>"),
    "undefined group": (('<referenceableParamGroupRef ref="mzArray"/>\n            <cvParam accession="IMS:1000103"',
                         '<referenceableParamGroupRef ref="nope"/>\n            <cvParam accession="IMS:1000103"'),
                        r"line \d+ refers to the referenceableParamGroup 'nope', which is not defined before it"),
    "wrong encoded length": (('name="external encoded length" value="80"', 'name="external encoded length" value="81"'),
                             r"intensity array is 81 bytes \(external encoded length\) for 20 32-bit float values, which take 80"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_imzml_is_refused_naming_what_and_where(tmp_path, case):
    change, expected = BAD[case]
    data = change(write_pair(tmp_path)[0].read_bytes()) if callable(change) else mutated(tmp_path, *change)
    assert re.search(expected, refusal(data)), refusal(data)


def test_a_doctype_is_refused_before_any_entity_is_expanded(tmp_path):
    data = mutated(tmp_path, "<mzML ", '<!DOCTYPE mzML [<!ENTITY a "aaaa">]>\n<mzML ')
    assert "declares a DOCTYPE" in refusal(data)


def test_a_flaw_in_every_spectrum_is_said_once_with_its_count(tmp_path):
    imzml, _ = write_pair(tmp_path, width=8, height=8)
    data = imzml.read_text("iso-8859-1").replace('name="external array length" value="20"',
                                                  'name="external array length" value="0"')
    with pytest.raises(HeaderError) as refused:
        read_header(io.BytesIO(data.encode("iso-8859-1")))
    (problem,) = refused.value.problems
    assert problem.startswith("spectrum 1 (line") and problem.endswith("(and 63 more spectra like it)")


def test_a_missing_checksum_is_a_note_not_a_refusal(tmp_path):
    data = mutated(tmp_path, 'accession="IMS:1000091"', 'accession="IMS:1000091x"')
    header = read_header(io.BytesIO(data))
    assert header.checksum is None and any("no checksum" in note for note in header.notes)
