"""The values, operators and functions of Argo's expression tags (see expr.py): expr-lang's
semantics (ints stay ints, `/` gives a float, `==` compares numbers by value, a missing map key is
nil), its builtins, Argo's own functions (asInt, asFloat, string, toJson, jsonpath) and the Sprig
functions under `sprig.` that templates use, with Sprig's argument order (the value last)."""
from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from dataclasses import dataclass

from workflow_templates.engines.expressions import ExpressionError

Number = (int, float)


@dataclass(frozen=True)
class Function:
    """A function by name ("len", "sprig.trim"), called with evaluated arguments."""

    name: str

    def __call__(self, *arguments):
        implementation = BUILTINS.get(self.name) or SPRIG.get(self.name.removeprefix("sprig."))
        try:
            return implementation(*arguments)
        except ExpressionError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError) as error:
            raise ExpressionError(f"{self.name}({', '.join(map(repr, arguments))}): {error}") from None


def known(name: str) -> bool:
    """Whether `name` is a function the evaluator has."""
    if name.startswith("sprig."):
        return name.removeprefix("sprig.") in SPRIG
    return name in BUILTINS or name in PREDICATES


# --- values ---------------------------------------------------------------------------------

def go_json(value) -> str:
    """json.Marshal as Go writes it: compact, floats without a trailing .0, no HTML escaping."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{go_json(v)}" for k, v in sorted(value.items())) + "}"
    return json.dumps(value, ensure_ascii=False)


def truth(value, op: str) -> bool:
    if not isinstance(value, bool):
        raise ExpressionError(f"{op} needs a boolean, got {value!r}")
    return value


def member(base, key):
    """base.key / base[key]: a map's key (nil when missing), a list's index (negative from the end)."""
    if isinstance(base, Function) and base.name == "sprig":
        return Function(f"sprig.{key}")
    if isinstance(base, dict):
        return base.get(key)
    if isinstance(base, (list, str)) and isinstance(key, int) and not isinstance(key, bool):
        if not -len(base) <= key < len(base):
            raise ExpressionError(f"index {key} out of range (length {len(base)})")
        return base[key]
    raise ExpressionError(f"cannot read {key!r} of {type_name(base)} {base!r}")


def slice_of(base, start, end):
    if not isinstance(base, (list, str)):
        raise ExpressionError(f"cannot slice {type_name(base)}")
    return base[start:end]


def type_name(value) -> str:
    return {bool: "bool", int: "int", float: "float", str: "string", list: "array", dict: "map",
            type(None): "nil"}.get(type(value), type(value).__name__)


# --- operators ------------------------------------------------------------------------------

def unary(op: str, value):
    if op == "!":
        return not truth(value, "!")
    if not isinstance(value, Number) or isinstance(value, bool):
        raise ExpressionError(f"{op} needs a number, got {value!r}")
    return -value if op == "-" else value


def binary(op: str, left, right):
    if op in ("==", "!="):
        return equal(left, right) == (op == "==")
    if op in ("in", "not in"):
        return contained(left, right) == (op == "in")
    if op in _STRINGS:
        if not (isinstance(left, str) and isinstance(right, str)):
            raise ExpressionError(f"{op} needs two strings, got {left!r} and {right!r}")
        return _STRINGS[op](left, right)
    if op == "..":
        return list(range(_int(left, op), _int(right, op) + 1))
    if op == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    return _arithmetic(op, _number(left, op), _number(right, op))


def equal(left, right) -> bool:
    if _is_number(left) and _is_number(right):
        return left == right
    return type(left) is type(right) and left == right


def contained(item, collection) -> bool:
    if isinstance(collection, dict):
        return item in collection
    if isinstance(collection, list):
        return any(equal(item, element) for element in collection)
    raise ExpressionError(f"in needs an array or a map on its right, got {type_name(collection)}")


_STRINGS = {"matches": lambda s, pattern: re.search(pattern, s) is not None,
            "contains": lambda s, part: part in s,
            "startsWith": lambda s, prefix: s.startswith(prefix),
            "endsWith": lambda s, suffix: s.endswith(suffix)}


def _arithmetic(op: str, a, b):
    if op in ("<", ">", "<=", ">="):
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
    if op == "/":
        if b == 0:
            raise ExpressionError("division by zero")
        return a / b
    if op == "%":
        return _int(a, op) % _int(b, op) if _int(b, op) else _raise("modulo by zero")
    if op in ("**", "^"):
        return float(a) ** b
    return {"+": a + b, "-": a - b, "*": a * b}[op]


def _number(value, op: str):
    if isinstance(value, str) and op in ("<", ">", "<=", ">="):
        return value  # strings order as strings
    if not _is_number(value):
        raise ExpressionError(f"{op} needs numbers, got {type_name(value)} {value!r} (asInt/asFloat convert strings)")
    return value


def _is_number(value) -> bool:
    return isinstance(value, Number) and not isinstance(value, bool)


def _int(value, op: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ExpressionError(f"{op} needs integers, got {value!r}")
    return value


def _raise(message: str):
    raise ExpressionError(message)


# --- closures -------------------------------------------------------------------------------

def predicate(name: str, items, body):
    """filter/map/all/any/none/one/count over a list, `#` being each item."""
    if not isinstance(items, list):
        raise ExpressionError(f"{name} needs an array, got {type_name(items)}")
    if name == "map":
        return [body(item) for item in items]
    results = [truth(body(item), name) for item in items]
    if name == "filter":
        return [item for item, kept in zip(items, results) if kept]
    return {"all": all(results), "any": any(results), "none": not any(results),
            "one": sum(results) == 1, "count": sum(results)}[name]


PREDICATES = {"filter", "map", "all", "any", "none", "one", "count"}


# --- functions ------------------------------------------------------------------------------

def as_int(value) -> int:
    """Argo's asInt: a number truncated, or a string read as a base-10 integer."""
    if isinstance(value, str):
        return int(value.strip(), 10)
    if _is_number(value):
        return int(value)
    raise ValueError(f"cannot convert {type_name(value)} to int")


def as_float(value) -> float:
    if isinstance(value, str) or _is_number(value):
        return float(value)
    raise ValueError(f"cannot convert {type_name(value)} to float")


def as_string(value) -> str:
    """Argo's string: Go's fmt %v."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e21 else repr(value)
    if value is None:
        return "<nil>"
    return value if isinstance(value, str) else go_json(value) if isinstance(value, (list, dict)) else str(value)


def jsonpath(document, path: str):
    """Argo's jsonpath(json, '$.a.b[0]'): dotted keys and [index] / ['key'] steps from `$`."""
    value = json.loads(document) if isinstance(document, str) else document
    if not path.startswith("$"):
        raise ValueError(f"path {path!r} must start with $")
    for key, index, quoted in re.findall(r"\.([\w\-]+)|\[(-?\d+)\]|\['([^']*)'\]", path[1:]):
        value = value[int(index)] if index else value[key or quoted]
    return value


def _length(value) -> int:
    if isinstance(value, (str, list, dict)):
        return len(value)
    raise ValueError(f"len needs a string, array or map, got {type_name(value)}")


BUILTINS = {
    "asInt": as_int, "asFloat": as_float, "string": as_string, "toJson": go_json, "jsonpath": jsonpath,
    "len": _length, "int": as_int, "float": as_float, "abs": abs, "toJSON": go_json, "fromJSON": json.loads,
    "upper": str.upper, "lower": str.lower, "trim": lambda s, chars=None: s.strip(chars),
    "trimPrefix": lambda s, p: s.removeprefix(p), "trimSuffix": lambda s, p: s.removesuffix(p),
    "split": lambda s, sep, n=-1: s.split(sep, n - 1 if n > 0 else -1), "join": lambda items, sep="": sep.join(items),
    "replace": lambda s, old, new: s.replace(old, new), "repeat": lambda s, n: s * n,
    "indexOf": lambda s, part: s.find(part), "lastIndexOf": lambda s, part: s.rfind(part),
    "hasPrefix": lambda s, p: s.startswith(p), "hasSuffix": lambda s, p: s.endswith(p),
    "max": lambda *v: max(v[0] if len(v) == 1 else v), "min": lambda *v: min(v[0] if len(v) == 1 else v),
    "sum": sum, "first": lambda items: items[0] if items else None, "last": lambda items: items[-1] if items else None,
    "keys": lambda m: sorted(m), "values": lambda m: [m[k] for k in sorted(m)],
    "round": lambda x: float(math.floor(x + 0.5)), "ceil": lambda x: float(math.ceil(x)),
    "floor": lambda x: float(math.floor(x)),
    "toBase64": lambda s: base64.b64encode(s.encode()).decode(), "fromBase64": lambda s: base64.b64decode(s).decode(),
}


def _sprig_int(value) -> int:
    """Sprig's int: 0 where it cannot read a number (Argo's docs warn of it)."""
    try:
        return int(float(value)) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else 0
    except ValueError:
        return 0


def _empty(value) -> bool:
    return value in (None, "", 0, False) or (isinstance(value, (list, dict)) and not value)


SPRIG = {
    "trim": str.strip, "trimAll": lambda chars, s: s.strip(chars),
    "trimPrefix": lambda p, s: s.removeprefix(p), "trimSuffix": lambda p, s: s.removesuffix(p),
    "upper": str.upper, "lower": str.lower, "title": str.title,
    "replace": lambda old, new, s: s.replace(old, new), "repeat": lambda n, s: s * n,
    "contains": lambda part, s: part in s, "hasPrefix": lambda p, s: s.startswith(p),
    "hasSuffix": lambda p, s: s.endswith(p), "substr": lambda start, end, s: s[start:end],
    "trunc": lambda n, s: s[:n] if n >= 0 else s[n:], "quote": lambda *v: " ".join(json.dumps(as_string(x)) for x in v),
    "squote": lambda *v: " ".join(f"'{as_string(x)}'" for x in v), "cat": lambda *v: " ".join(as_string(x) for x in v if x is not None),
    "join": lambda sep, items: sep.join(as_string(x) for x in items), "splitList": lambda sep, s: s.split(sep),
    "toString": as_string, "atoi": _sprig_int, "int": _sprig_int, "int64": _sprig_int,
    "float64": lambda v: float(v) if _is_number(v) or isinstance(v, str) else 0.0,
    "add": lambda *v: sum(_sprig_int(x) for x in v), "sub": lambda a, b: _sprig_int(a) - _sprig_int(b),
    "mul": lambda *v: math.prod(_sprig_int(x) for x in v), "div": lambda a, b: _sprig_int(a) // _sprig_int(b),
    "mod": lambda a, b: _sprig_int(a) % _sprig_int(b), "max": lambda *v: max(_sprig_int(x) for x in v),
    "min": lambda *v: min(_sprig_int(x) for x in v), "default": lambda fallback, *v: fallback if not v or _empty(v[0]) else v[0],
    "empty": _empty, "coalesce": lambda *v: next((x for x in v if not _empty(x)), None),
    "ternary": lambda yes, no, condition: yes if truth(condition, "ternary") else no,
    "toJson": go_json, "fromJson": json.loads, "b64enc": lambda s: base64.b64encode(s.encode()).decode(),
    "b64dec": lambda s: base64.b64decode(s).decode(), "sha256sum": lambda s: hashlib.sha256(s.encode()).hexdigest(),
    "list": lambda *v: list(v), "first": lambda items: items[0] if items else None,
    "last": lambda items: items[-1] if items else None, "has": lambda item, items: item in items,
}

NAMES = set(BUILTINS) | PREDICATES | {"sprig"}
