"""Reading YAML rule files (trigger rules, storage lifecycle rules): one rule per file, a mapping
of known keys, names unique; every refusal names the file and the field."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import yaml

from metadata.errors import Invalid


def load_all(directory: Path, load_one: Callable[[Path], object], what: str) -> list:
    """Every rule in a directory (its *.yaml files, by name), names unique."""
    rules = [load_one(path) for path in sorted(Path(directory).glob("*.yaml"))]
    names = [r.name for r in rules]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise Invalid(f"{what}: the rule name {duplicated[0]!r} is used twice")
    return rules


def read(path: Path, where: str, keys: set[str]) -> dict:
    """The rule file's mapping; Invalid for one that cannot be read or has an unknown key."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise Invalid(f"{where}: cannot read it: {exc}") from None
    if not isinstance(doc, dict):
        raise Invalid(f"{where}: must be a mapping with {', '.join(sorted(keys))}")
    known(where, "", doc, keys)
    return doc


def known(where: str, prefix: str, doc: dict, keys: set[str]) -> None:
    """Invalid naming the first key of doc that is not one of keys."""
    unknown = sorted(set(doc) - keys, key=str)
    if unknown:
        raise Invalid(f"{where}: {prefix}{unknown[0]}: unknown field; allowed: {', '.join(sorted(keys))}")


def mapping(where: str, doc: dict, key: str) -> dict:
    """doc[key] as a mapping ({} when absent)."""
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        raise Invalid(f"{where}: {key}: must be a mapping")
    return value
