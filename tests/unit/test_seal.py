"""Sealed blobs (portal/seal.py): what one key seals it opens, of the kind asked for and before
it expires; anything else is refused with a message saying why."""
import time

import pytest

from portal.seal import Seal, SealError

KEY, OTHER = b"k" * 32, b"o" * 32


def test_a_blob_opens_with_its_key_and_kind():
    blob = Seal(KEY).seal("code", {"name": "ana"}, time.time() + 60)
    assert Seal(KEY).open("code", blob) == {"name": "ana"}
    assert "ana" not in blob  # encrypted, not just signed: the service token inside stays secret


@pytest.mark.parametrize("seal_key, kind, expires_in, words", [
    (OTHER, "code", 60, "not issued by this commons' portal, or has been altered"),
    (KEY, "refresh token", 60, "the refresh token given cannot serve as the code"),
    (KEY, "code", -1, "the code expired at "),
])
def test_a_foreign_mistaken_or_expired_blob_is_refused(seal_key, kind, expires_in, words):
    blob = Seal(seal_key).seal(kind, {}, time.time() + expires_in)
    with pytest.raises(SealError, match=words):
        Seal(KEY).open("code", blob)


@pytest.mark.parametrize("blob", ["", "x", "gAAAA", "é"])
def test_junk_and_altered_blobs_are_refused(blob):
    sealed = Seal(KEY).seal("code", {}, time.time() + 60)
    for candidate in (blob, sealed[:-5] + ("AAAAA" if not sealed.endswith("AAAAA") else "BBBBB")):
        with pytest.raises(SealError, match="has been altered"):
            Seal(KEY).open("code", candidate)
