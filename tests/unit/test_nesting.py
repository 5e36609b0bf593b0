"""metadata/nesting.py: JSON depth measured on the text and on the parsed value agree."""
from __future__ import annotations

import json

import pytest

from metadata.errors import Invalid
from metadata.nesting import depth, loads, parsed_depth


@pytest.mark.parametrize("text", ["1", '"[[{"', "[]", "{}", '{"a": [1, {"b": []}, "]]"]}', "[" * 64 + "]" * 64])
def test_the_parsed_depth_is_the_texts(text):
    assert parsed_depth(json.loads(text)) == depth(text)
    assert loads(text, "body") == json.loads(text)


@pytest.mark.parametrize("levels", [65, 100_000])  # the second is past what the decoder itself parses
def test_loads_refuses_deeper_than_the_limit_naming_the_field(levels):
    with pytest.raises(Invalid, match=f"body: the JSON nests {levels} levels deep; at most 64"):
        loads("[" * levels + "]" * levels, "body")
