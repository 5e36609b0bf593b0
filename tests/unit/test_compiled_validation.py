"""The compiled property check (metadata/dictionary/compiled.py) never passes what JSON Schema refuses.

For every type of the shipped dictionary, thousands of property dicts mixing valid values with
near misses (wrong types, values off an enum, out of range, bad dates and patterns, NaN,
unknown names, missing required ones): whenever the compiled check says valid, the full
validation must find no problem; and for the valid ones it must say valid (else it is no faster).
"""
from __future__ import annotations

import random

import pytest

from metadata.dictionary import Dictionary
from metadata.dictionary.compiled import compile_check, compile_value

DICTIONARY = Dictionary.load()
ODD = [None, True, False, 0, 1, -1, 0.0, 2.5, -0.5, 3.0, 1e9, float("nan"), float("inf"), "", "x", "1",
       "2024-02-30", "2024-02-29", "2024-2-1", "２０２４-01-01", "2024-01-01\n", "a" * 300, [], ["a"], [1],
       {}, {"a": 1}, "0" * 32, "f" * 64, "g" * 32]


def good_value(schema: dict, rng: random.Random):
    """A value the schema accepts (within what the shipped dictionary uses)."""
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema["type"]
    if kind == "string":
        if schema.get("format") == "date":
            return f"20{rng.randint(10, 30)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        if "pattern" in schema:
            return "".join(rng.choice("0123456789abcdef") for _ in range(64 if "64" in schema["pattern"] else 32))
        return rng.choice(["liver", "x", "a b"])
    if kind == "array":
        return [good_value(schema.get("items", {"type": "string"}), rng) for _ in range(rng.randint(0, 3))]
    if kind == "boolean":
        return rng.choice([True, False])
    low = schema.get("minimum", schema.get("exclusiveMinimum", 0)) + (1 if "exclusiveMinimum" in schema else 0)
    high = schema.get("maximum", low + 1000)
    return rng.randint(int(low), int(high)) if kind == "integer" else rng.uniform(low, high)


def good_props(node_type, rng: random.Random) -> dict:
    names = set(node_type.required) | set(rng.sample(sorted(node_type.properties), k=len(node_type.properties) // 2))
    props = {name: good_value(node_type.properties[name], rng) for name in names}
    for low, high in node_type.ordered:  # the cross-field rule, which JSON Schema does not state
        if low in props and high in props and props[high] < props[low]:
            props[low], props[high] = props[high], props[low]
    return props


@pytest.mark.parametrize("type_name", DICTIONARY.names())
def test_valid_properties_pass_the_compiled_check(type_name):
    node_type, rng = DICTIONARY.get(type_name), random.Random(type_name)
    check = compile_check(node_type.properties, node_type.required)
    for _ in range(300):
        props = good_props(node_type, rng)
        assert node_type.check_properties(props) == [], props  # the generator makes valid ones
        assert check(props), props


@pytest.mark.parametrize("type_name", DICTIONARY.names())
def test_the_compiled_check_never_passes_what_json_schema_refuses(type_name):
    node_type, rng = DICTIONARY.get(type_name), random.Random(f"bad-{type_name}")
    check = compile_check(node_type.properties, node_type.required)
    for _ in range(2000):
        props = good_props(node_type, rng)
        for _ in range(rng.randint(1, 2)):
            name = rng.choice(sorted(node_type.properties) + ["not_a_property"])
            if rng.random() < 0.15:
                props.pop(name, None)
            else:
                props[name] = rng.choice(ODD)
        if check(props):
            full = node_type.validator().iter_errors(props)
            assert not list(full) and node_type.check_properties(props) == node_type.order_problems(props), props


def test_a_wrong_value_still_gets_the_full_explanation():
    sample = DICTIONARY.get("sample")
    assert sample.check_properties({"organ": "lever", "preparation": "FFPE"}) == [
        ("organ", '"lever" is not allowed; choose one of: ' + ", ".join(sample.properties["organ"]["enum"]))]


def test_date_and_integer_edge_cases_are_left_to_the_full_validation():
    date = compile_value({"type": "string", "format": "date"})
    assert date("2024-02-29") and not date("2023-02-29") and not date("2024-01-01\n")
    assert not compile_value({"type": "integer"})(3.0)  # valid in JSON Schema: the full check says so
    assert not compile_value({"type": "number"})(True)
