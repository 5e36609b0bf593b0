"""Go's text forms that Argo's controller reads, so templates mean here what they mean there.

- `sprintf`: fmt.Sprintf(format, i) for one integer, as expandSequence formats
  `withSequence.format`: the verbs d v b o O x X with the flags + - # 0 space, a width and a
  precision, following fmt's fmtInteger (zero padding counts the sign, an explicit precision turns
  the 0 flag off, the # prefix comes after the padding digits). A format holding any other verb,
  or not exactly one verb, is refused: Go would print `%!(EXTRA ...)` or `%!d(MISSING)` into items.
- `seconds`: wfv1.ParseStringToDuration, as retryStrategy.backoff reads duration, cap and
  maxDuration: an integer is seconds, anything else time.ParseDuration ("1m30s", "500ms").
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_VERB = re.compile(r"%(?P<flags>[-+# 0]*)(?P<width>\d*)(?:\.(?P<prec>\d*))?(?P<verb>.?)", re.S)
_BASES = {"d": 10, "v": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}
_DIGITS = "0123456789abcdef"
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class _Spec:
    flags: str
    width: int | None
    prec: int | None
    verb: str


def check(format_: str) -> str:
    """Why Argo would not print one number with `format_` ("" when it would)."""
    try:
        _parse(format_)
    except ValueError as error:
        return str(error)
    return ""


def sprintf(format_: str, number: int) -> str:
    """fmt.Sprintf(format_, number) for a format `check` accepts."""
    literal, spec, rest = _parse(format_)
    return literal + _integer(spec, number) + rest


def _parse(format_: str) -> tuple[str, _Spec, str]:
    parts, specs, at = [], [], 0
    for match in _VERB.finditer(format_):
        if match.start() < at:
            continue
        parts.append(format_[at:match.start()])
        at = match.end()
        if match["verb"] == "%" and not (match["flags"] or match["width"] or match["prec"] is not None):
            parts.append("%")
            continue
        if match["verb"] not in _BASES:
            raise ValueError(f"verb %{match['verb']} is not one of Go's integer verbs "
                             f"(%d %v %b %o %O %x %X)")
        specs.append((len(parts), _spec(match)))
        parts.append("")
    parts.append(format_[at:])
    if len(specs) != 1:
        raise ValueError(f"holds {len(specs)} verbs; Argo formats one number with it (e.g. %02d)")
    index, spec = specs[0]
    return "".join(parts[:index]), spec, "".join(parts[index + 1:])


def _spec(match: re.Match) -> _Spec:
    prec = match["prec"]
    return _Spec(match["flags"], int(match["width"]) if match["width"] else None,
                 (int(prec) if prec else 0) if prec is not None else None, match["verb"])


def _integer(spec: _Spec, number: int) -> str:
    minus, zero = "-" in spec.flags, "0" in spec.flags and "-" not in spec.flags
    if spec.prec == 0 and number == 0:
        return _pad("", spec.width, minus)  # fmt: precision 0 and value 0 print nothing
    digits = _digits(abs(number), _BASES[spec.verb], spec.verb == "X")
    sign = "-" if number < 0 else "+" if "+" in spec.flags else " " if " " in spec.flags else ""
    least = spec.prec if spec.prec is not None else (spec.width - bool(sign)) if zero and spec.width else 0
    digits = digits.rjust(least, "0")
    return _pad(sign + _prefix(spec, digits) + digits, spec.width, minus)


def _digits(value: int, base: int, upper: bool) -> str:
    out = ""
    while True:
        value, digit = divmod(value, base)
        out = _DIGITS[digit] + out
        if not value:
            return out.upper() if upper else out


def _prefix(spec: _Spec, digits: str) -> str:
    if spec.verb == "O":
        return "0o"
    if "#" not in spec.flags:
        return ""
    return {"b": "0b", "x": "0x", "X": "0X", "o": "" if digits.startswith("0") else "0"}.get(spec.verb, "")


def _pad(text: str, width: int | None, left: bool) -> str:
    if not width:
        return text
    return text.ljust(width) if left else text.rjust(width)


def seconds(text) -> float:
    """ParseStringToDuration(text) in seconds; ValueError names what Go would not read."""
    text = str(text).strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return float(int(text))
    sign, body = (-1, text[1:]) if text[:1] == "-" else (1, text.lstrip("+"))
    parts = _DURATION.findall(body)
    if body == "0":
        return 0.0
    if not parts or "".join(n + u for n, u in parts) != body:
        raise ValueError(f"{text!r} is not a duration (seconds as an integer, or Go's form: 1m30s, 500ms, 2h)")
    return sign * sum(float(n) * _UNITS[u] for n, u in parts)
