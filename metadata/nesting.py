"""How deep request JSON may nest, checked on the text before a parser recurses into it.

Python's JSON decoder recurses once per level and fails with RecursionError near 1,000 levels;
the check below counts brackets outside strings instead, so no depth of input reaches it.
"""
from __future__ import annotations

import re
from itertools import accumulate

from metadata.errors import Invalid, Problem

MAX_DEPTH = 64
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text (brackets inside strings ignored)."""
    steps = (1 if b in "[{" else -1 for b in _BRACKET.findall(_STRING.sub("", text)))
    return max(accumulate(steps), default=0)


def check_depth(text: str, field: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse (Invalid naming `field`) JSON text nested deeper than `max_depth` arrays or objects."""
    if text.count("[") + text.count("{") <= max_depth:
        return  # too few brackets to nest that deep: the common case costs two counts
    found = depth(text)
    if found > max_depth:
        message = f"the JSON nests {found} levels deep; at most {max_depth} are allowed"
        raise Invalid(f"{field}: {message}", [Problem(field, message)], code="too_deep")
