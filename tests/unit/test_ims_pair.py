"""ims.pair: an imzML and an ibd belong together only when the UUID, the stored checksum and the
sizes agree; every difference is said, and file names never matter."""
import hashlib
import io

import pytest

from ims.pair import Digests, PairMismatch, check_ibd, check_pair, needed, require_pair
from tests.imzml_files import instrument_pair, write_pair


@pytest.fixture
def pair(tmp_path):
    return write_pair(tmp_path, name="slide", mode="processed")


def test_a_true_pair_passes_every_check_as_paths_and_as_streams(pair):
    imzml, ibd = pair
    report = check_pair(imzml, ibd)
    assert report.ok and report.checked == ["UUID", "SHA-1", "size"] and report.ibd_bytes == ibd.stat().st_size
    assert check_pair(io.BytesIO(imzml.read_bytes()), io.BytesIO(ibd.read_bytes())).ok


def test_an_ibd_of_another_imzml_is_refused_with_each_difference(tmp_path, pair):
    _, other_ibd = write_pair(tmp_path / "other", name="slide", mode="processed")
    problems = check_pair(pair[0], other_ibd).problems
    assert [p.split(":")[0] for p in problems] == ["UUID", "SHA-1"]
    assert "this ibd was written with another imzML" in problems[0]


def test_a_truncated_ibd_names_the_first_spectrum_past_its_end(pair):
    imzml, ibd = pair
    data = ibd.read_bytes()[:-100]
    problems = check_pair(imzml, io.BytesIO(data)).problems
    assert [p.split(":")[0] for p in problems] == ["SHA-1", "size"]
    assert f"the ibd is {len(data)} bytes" in problems[1] and "spectrum 6 (x=3, y=2)" in problems[1]
    assert "truncated" in problems[1]


def test_a_changed_byte_is_caught_by_the_checksum_alone(pair):
    imzml, ibd = pair
    data = bytearray(ibd.read_bytes())
    data[100] ^= 0xFF
    (problem,) = check_pair(imzml, io.BytesIO(bytes(data))).problems
    assert problem.startswith("SHA-1: the imzML records") and "changed, damaged" in problem


def test_an_ibd_far_larger_than_its_spectra_is_refused(pair):
    imzml, ibd = pair
    problems = check_pair(imzml, io.BytesIO(ibd.read_bytes() + bytes(10_000))).problems
    assert problems[-1].startswith("size:") and "10000 more than" in problems[-1]


def test_an_ibd_shorter_than_its_uuid(pair):
    (problem,) = check_pair(pair[0], io.BytesIO(b"short")).problems
    assert "5 bytes long, too short" in problem


def test_a_refused_imzml_is_reported_not_raised(pair):
    broken = pair[0].read_bytes()[:300]
    report = check_pair(io.BytesIO(broken), pair[1])
    assert report.header is None and report.problems[0].startswith("imzML: the imzML is not well-formed XML")


def test_require_pair_raises_with_every_problem(tmp_path, pair):
    _, other_ibd = write_pair(tmp_path / "other", mode="processed")
    with pytest.raises(PairMismatch) as refused:
        require_pair(pair[0], other_ibd)
    assert len(refused.value.problems) == 2 and "do not belong together" in str(refused.value)


class Counting(io.BytesIO):
    """A stream that counts what was read from it."""
    read_bytes = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.read_bytes += len(chunk)
        return chunk


def test_a_known_digest_and_size_spare_reading_the_whole_ibd(tmp_path):
    imzml, ibd = write_pair(tmp_path)
    text = imzml.read_text("iso-8859-1")
    data = ibd.read_bytes()
    sha1 = hashlib.sha1(data).hexdigest().upper()
    md5_header = text.replace('accession="IMS:1000091" name="ibd SHA-1" value="' + sha1,
                              'accession="IMS:1000090" name="ibd MD5" value="' + hashlib.md5(data).hexdigest())
    assert md5_header != text
    stream = Counting(data)
    report = check_pair(io.BytesIO(md5_header.encode("iso-8859-1")), stream, size=len(data),
                        digests={"md5": hashlib.md5(data).hexdigest()})
    assert report.ok and report.checked == ["UUID", "MD5", "size"] and stream.read_bytes == 16


def test_the_checksum_may_wait_for_digests_computed_where_the_ibd_is_read_anyway(pair):
    imzml, ibd = pair
    data = bytearray(ibd.read_bytes())
    data[100] ^= 0xFF   # the same UUID and size: only the checksum tells
    first = Counting(bytes(data))
    report = check_pair(imzml, first, size=len(data), checksum=False)
    assert report.ok and report.checked == ["UUID", "size"] and first.read_bytes == 16
    assert needed(report.header) == ("sha1",)
    digests = Digests(("md5", *needed(report.header)))
    for start in range(0, len(data), 1000):   # as a sender reads it
        digests.update(bytes(data[start:start + 1000]))
    assert digests.hexdigests() == {"md5": hashlib.md5(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest()}
    again = Counting(bytes(data))
    (problem,) = check_ibd(report.header, again, size=len(data), digests=digests.hexdigests())
    assert problem.startswith("SHA-1: the imzML records") and again.read_bytes == 16


def test_an_instruments_header_with_a_synthesized_ibd():
    xml, ibd = instrument_pair()
    assert check_pair(io.BytesIO(xml), io.BytesIO(ibd)).ok
    wrong = ibd[:20] + bytes(4) + ibd[24:]
    assert [p.split(":")[0] for p in check_pair(io.BytesIO(xml), io.BytesIO(wrong)).problems] == ["SHA-1"]
