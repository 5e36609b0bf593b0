"""The filter language: Gen3 Guppy-style JSON filters over flattened documents.

One parser checks a filter against the fields of a flattened document (one row per case or per
file; some fields lists, some lists of records) and makes a small tree of frozen dataclasses. Two
pure compilers turn that tree into a DuckDB boolean expression (to_sql) or an Elasticsearch query
(to_es); the stores run what they make. docs/filters.md is the language's user guide.
"""
from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field as dataclass_field
from datetime import date, datetime
from typing import Any, Callable, Union

from metadata.errors import Invalid, Problem
from metadata.nesting import check_depth

KINDS = ("keyword", "text", "integer", "number", "boolean", "date")
OPERATORS = ("=", "!=", "IN", ">", ">=", "<", "<=", "search", "AND", "OR", "nested")
# the other names Guppy's documented filter language gives operators (uc-cdis/guppy doc/queries.md),
# spelt as documented: lower case and upper case, never mixed
ALIASES = {"eq": "=", "EQ": "=", "in": "IN", "gt": ">", "GT": ">", "gte": ">=", "GTE": ">=",
           "lt": "<", "LT": "<", "lte": "<=", "LTE": "<="}
RANGES = (">", ">=", "<", "<=")
RANGE_KINDS = ("integer", "number", "date")
SEARCH_KINDS = ("keyword", "text")
MISSING = "__missing__"   # Guppy's term for "no value": NULL, or an empty list
MAX_DEPTH = 16
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T|$)")
LEAF_EXAMPLES = {"IN": '"organ": ["liver", "kidney"]', "=": '"organ": "liver"', "!=": '"organ": "liver"'}
ES_RANGE = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
EXPECTED = {"keyword": "a string", "text": "a string", "integer": "a whole number", "number": "a number",
            "boolean": "true or false", "date": 'an ISO 8601 date such as "2024-01-31" or "2024-01-31T09:30:00"'}


@dataclass(frozen=True)
class Field:
    """A field of a flattened document: its kind, whether it holds a list, and for a list of records, their fields."""
    name: str
    kind: str  # keyword | text | integer | number | boolean | date
    multi: bool = False  # a list of values
    nested: dict[str, Field] | None = dataclass_field(default=None, hash=False)  # a list of structs with these fields

    def __post_init__(self):
        if self.kind not in KINDS + ("nested",):
            raise ValueError(f"Field {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind == "nested" and self.nested is None:
            raise ValueError(f"Field {self.name!r}: kind 'nested' needs the fields of its records")

    @property
    def is_list(self) -> bool:
        return self.multi or self.nested is not None


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


@dataclass(frozen=True)
class Compare:
    op: str  # = != > >= < <=
    field: Field
    value: Any  # a JSON scalar of the field's kind, or MISSING for = and !=


@dataclass(frozen=True)
class In:
    field: Field
    values: tuple


@dataclass(frozen=True)
class Search:
    keyword: str
    fields: tuple  # of Field


@dataclass(frozen=True)
class Nested:
    path: Field  # a field whose value is a list of records
    node: Any  # a node over the records' fields, true of one and the same record


Node = Union[And, Or, Compare, In, Search, Nested]


# -- parsing ----------------------------------------------------------------------------------

def parse(filter_json: Any, fields: dict[str, Field], default_search_fields: tuple[str, ...] = ()) -> Node | None:
    """The tree of a filter (decoded JSON, or its text) checked against fields; None means "everything".

    Raises Invalid listing every problem found, each located by its path in the filter."""
    if isinstance(filter_json, (str, bytes)):
        filter_json = _decode(filter_json)
    if filter_json is None or filter_json == {}:
        return None
    parser = _Parser(_Scope(fields, "", tuple(default_search_fields)))
    node = parser.clause(filter_json, "filter", parser.top, 1)
    if parser.problems:
        first = parser.problems[0]
        more = f" (and {len(parser.problems) - 1} more)" if len(parser.problems) > 1 else ""
        raise Invalid(f"invalid filter: {first.field}: {first.message}{more}", parser.problems)
    return node


def _decode(text: str | bytes) -> Any:
    if not text.strip():
        return None
    check_depth(text if isinstance(text, str) else text.decode(errors="replace"), "filter")
    try:
        return json.loads(text)
    except ValueError as exc:
        message = f"the filter is not valid JSON ({exc}); write it as a JSON object"
        raise Invalid(f"invalid filter: {message}", [Problem("filter", message)]) from None


@dataclass(frozen=True)
class _Scope:
    """The fields a clause may name: the document's, or inside nested, those of one record."""
    fields: dict[str, Field]
    prefix: str  # "" at the top, "samples." inside {"nested": {"path": "samples", ...}}
    default_search: tuple[str, ...]


class _Parser:
    """Walks a filter once, building the tree and collecting every problem on the way."""

    def __init__(self, top: _Scope):
        self.top = top
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))
        return None

    def clause(self, obj: Any, path: str, scope: _Scope, depth: int) -> Node | None:
        if depth > MAX_DEPTH:
            return self.add(path, f"filters may nest at most {MAX_DEPTH} levels deep; flatten nested AND/OR clauses")
        if not isinstance(obj, dict) or len(obj) != 1:
            return self.add(path, _shape_message(obj))
        (written, body), = obj.items()
        op = ALIASES.get(written, written)
        if op not in OPERATORS:
            return self.add(f"{path}.{written}", _unknown_operator(written))
        at = f"{path}.{written}"  # problems name the operator as the filter writes it
        if op in ("AND", "OR"):
            return self.combine(op, body, at, scope, depth)
        if op == "nested":
            return self.nested(body, at, scope, depth)
        if op == "search":
            return self.search(body, at, scope)
        return self.in_(body, at, scope) if op == "IN" else self.compare(op, body, at, scope)

    def combine(self, op: str, body: Any, path: str, scope: _Scope, depth: int) -> Node | None:
        if not isinstance(body, list) or not body:
            return self.add(path, f'{op} takes a non-empty list of clauses, e.g. {{"{op}": [{{"=": {{"organ": '
                                  f'"liver"}}}}, {{">=": {{"age_years": 30}}}}]}}')
        items = [self.clause(item, f"{path}[{i}]", scope, depth + 1) for i, item in enumerate(body)]
        if any(item is None for item in items):
            return None
        return (And if op == "AND" else Or)(tuple(items))

    def leaf(self, op: str, body: Any, path: str, scope: _Scope) -> tuple[Field, Any, str] | None:
        """The field, value and path of {"<op>": {"<field>": <value>}}."""
        if not isinstance(body, dict) or len(body) != 1:
            example = LEAF_EXAMPLES.get(op, '"age_years": 30')
            return self.add(path, f'{op} takes an object naming one field, e.g. {{"{op}": {{{example}}}}}; '
                                  'combine several with AND')
        (name, value), = body.items()
        found = self.field(name, f"{path}.{name}", scope)
        return None if found is None else (found, value, f"{path}.{name}")

    def field(self, name: str, path: str, scope: _Scope) -> Field | None:
        found = scope.fields.get(name)
        return found if found is not None else self.add(path, _unknown_field(name, scope))

    def compare(self, op: str, body: Any, path: str, scope: _Scope) -> Node | None:
        got = self.leaf(op, body, path, scope)
        if got is None:
            return None
        found, value, at = got
        if isinstance(value, (list, dict)):
            return self.add(at, f'{op} takes one value; for any of several values use IN, '
                                f'e.g. {{"IN": {{"{found.name}": [...]}}}}')
        if value == MISSING and op in ("=", "!="):
            return Compare(op, found, MISSING)
        if not self.term_field(found, at):
            return None
        if op in RANGES and found.kind not in RANGE_KINDS:
            return self.add(at, f"{op} compares integer, number and date fields; {found.name} is "
                                f"{_kind_phrase(found)}; use =, != or IN")
        return Compare(op, found, value) if self.value(found, value, at, missing_ok=op in ("=", "!=")) else None

    def in_(self, body: Any, path: str, scope: _Scope) -> Node | None:
        got = self.leaf("IN", body, path, scope)
        if got is None:
            return None
        found, values, at = got
        if not isinstance(values, list) or not values:
            return self.add(at, f'IN takes a non-empty list of values, e.g. {{"IN": {{"{found.name}": '
                                '["liver", "kidney"]}}; for one value use =')
        if any(value != MISSING for value in values) and not self.term_field(found, at):
            return None
        checks = [self.value(found, value, f"{at}[{i}]", missing_ok=True) for i, value in enumerate(values)]
        return In(found, tuple(dict.fromkeys(values))) if all(checks) else None

    def term_field(self, found: Field, path: str) -> bool:
        """Whether =, != and IN may name a value of this field (all fields may take __missing__)."""
        if found.nested is not None:
            self.add(path, f"{found.name} is a list of records; filter on their fields with "
                           f'{{"nested": {{"path": "{found.name}", ...}}}}, or use "{MISSING}" for none')
        elif found.kind == "text":
            self.add(path, f'{found.name} is a text field: find words in it with {{"search": {{"keyword": "...", '
                           f'"fields": ["{found.name}"]}}}}, or use "{MISSING}" for no value')
        return found.nested is None and found.kind != "text"

    def value(self, found: Field, value: Any, path: str, missing_ok: bool) -> bool:
        if missing_ok and value == MISSING:
            return True
        if isinstance(value, float) and not math.isfinite(value):  # JSON's NaN, Infinity, 1e999
            self.add(path, f"{json.dumps(value)} is not a number; give a finite number (NaN and ±Infinity are refused)")
            return False
        if _value_fits(found.kind, value):
            return True
        alternative = f' or "{MISSING}"' if missing_ok else ""
        self.add(path, f"{found.name} is {_kind_phrase(found)}: expected {EXPECTED[found.kind]}{alternative}, "
                       f"got {json.dumps(value)}")
        return False

    def search(self, body: Any, path: str, scope: _Scope) -> Node | None:
        if not isinstance(body, dict):
            return self.add(path, 'search takes {"keyword": "<text>", "fields": ["<field>", ...] or "<field>"}')
        for key in sorted(set(body) - {"keyword", "fields"}):
            self.add(f"{path}.{key}", "search takes keyword and, optionally, fields")
        keyword = body.get("keyword")
        if not isinstance(keyword, str) or not keyword:
            self.add(f"{path}.keyword", f"search needs a keyword: a non-empty string, got {json.dumps(keyword)}")
        fields = self.search_fields(body.get("fields"), f"{path}.fields", scope)
        if fields is None or not isinstance(keyword, str) or not keyword:
            return None
        return Search(keyword, fields)

    def search_fields(self, names: Any, path: str, scope: _Scope) -> tuple[Field, ...] | None:
        names = list(scope.default_search) if names is None else [names] if isinstance(names, str) else names
        searchable = _names(n for n, f in scope.fields.items() if _searchable(f)) or "(none here)"
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            return self.add(path, f"search needs fields: a field name or a non-empty list of them; searchable: {searchable}")
        found = [self.field(name, f"{path}[{i}]", scope) for i, name in enumerate(names)]
        for i, one in enumerate(found):
            if one is not None and not _searchable(one):
                self.add(f"{path}[{i}]", f"search looks in text and keyword fields; {one.name} is "
                                         f"{_kind_phrase(one)}; searchable: {searchable}")
        return tuple(dict.fromkeys(found)) if all(f is not None and _searchable(f) for f in found) else None

    def nested(self, body: Any, path: str, scope: _Scope, depth: int) -> Node | None:
        rest = {k: v for k, v in body.items() if k != "path"} if isinstance(body, dict) else {}
        if not isinstance(body, dict) or not isinstance(body.get("path"), str) or len(rest) != 1:
            return self.add(path, 'nested takes "path" (a list-of-records field) and one clause over the fields of '
                                  'its records, e.g. {"nested": {"path": "samples", "AND": [{"=": {"organ": "liver"}}, '
                                  '{"=": {"preparation": "FFPE"}}]}}')
        found = self.field(body["path"], f"{path}.path", scope)
        if found is not None and found.nested is None:
            nested_names = _names(n for n, f in scope.fields.items() if f.nested is not None) or "(none here)"
            return self.add(f"{path}.path", f"{found.name} is not a list of records, so nested does not apply; "
                                            f"nested fields: {nested_names}")
        if found is None:
            return None
        inner = _Scope(found.nested, f"{scope.prefix}{found.name}.", ())
        node = self.clause(rest, path, inner, depth + 1)
        return None if node is None else Nested(found, node)


def _shape_message(obj: Any) -> str:
    example = 'e.g. {"=": {"organ": "liver"}}'
    if not isinstance(obj, dict):
        return f"a clause is a JSON object with one operator key, {example}; got {json.dumps(obj)[:60]}"
    if not obj:
        return f"an empty clause; a clause has one operator key, {example}"
    return (f"a clause has one operator key, got {len(obj)} ({', '.join(map(str, obj))}); "
            'put several clauses in {"AND": [...]} or {"OR": [...]}')


def _unknown_operator(op: str) -> str:
    same = [o for o in (*OPERATORS, *ALIASES) if o.lower() == op.lower()][:1]
    close = same or difflib.get_close_matches(op, (*OPERATORS, *ALIASES), n=2)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    return f"unknown operator {op!r}; {hint}operators: {', '.join(OPERATORS)} (or Guppy's {', '.join(ALIASES)})"


def _unknown_field(name: str, scope: _Scope) -> str:
    where = f" in the records of {scope.prefix[:-1]}" if scope.prefix else ""
    head, _, tail = name.partition(".")
    holder = scope.fields.get(head)
    if tail and holder is not None and holder.nested is not None:
        return (f"{name!r} is a field of the records in {head}; filter on it inside "
                f'{{"nested": {{"path": "{head}", ...}}}}')
    close = difflib.get_close_matches(name, list(scope.fields), n=3, cutoff=0.6)
    if close:
        return f"unknown field {name!r}{where}; did you mean {' or '.join(close)}?"
    return f"unknown field {name!r}{where}; known fields: {_names(scope.fields)}"


def _value_fits(kind: str, value: Any) -> bool:
    if kind in ("keyword", "text"):
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool) or kind == "date" and not isinstance(value, str):
        return False
    if kind == "integer":  # a BIGINT, as DuckDB and Elasticsearch's long hold it
        return isinstance(value, int) and -2**63 <= value < 2**63
    if kind == "number":
        return isinstance(value, (int, float)) and math.isfinite(value)
    try:  # the extended ISO form both DuckDB and Elasticsearch read
        return bool(ISO_DATE.match(value)) and _date_value(value) is not None
    except ValueError:
        return False


def _date_value(text: str) -> date | datetime:
    """A date value as DuckDB should compare it: a date, or a datetime when the text has a time."""
    return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)


def _kind_phrase(found: Field) -> str:
    if found.nested is not None:
        return "a list of records"
    article = "an" if found.kind == "integer" else "a"
    return f"a list of {found.kind} values" if found.multi else f"{article} {found.kind} field"


def _searchable(found: Field) -> bool:
    return found.nested is None and found.kind in SEARCH_KINDS


def _names(names) -> str:
    return ", ".join(sorted(names))


# -- inspecting -------------------------------------------------------------------------------

def record_field(fields: dict[str, Field], name: str) -> Field | None:
    """The field of the records a dotted name such as samples.organ names (a list of records, then one
    of its records' fields), else None."""
    path, _, member = name.partition(".")
    holder = fields.get(path)
    return holder.nested.get(member) if member and holder is not None and holder.nested is not None else None


def fields_in(node: Node | None) -> set[str]:
    """The fields a node constrains; a record field inside nested is named "path.field"."""
    if node is None:
        return set()
    if isinstance(node, (And, Or)):
        return set().union(*(fields_in(item) for item in node.items))
    if isinstance(node, Search):
        return {f.name for f in node.fields}
    if isinstance(node, Nested):
        return {f"{node.path.name}.{name}" for name in fields_in(node.node)}
    return {node.field.name}


def without_field(node: Node | None, field: str) -> Node | None:
    """node without its top-level AND clauses that constrain only field (or what lies under it, "samples.");
    None when nothing is left. Facets use it so a facet's own selection does not hide its other values."""
    if node is None or _only(node, field):
        return None
    if not isinstance(node, And):
        return node
    kept = [item for item in (without_field(item, field) for item in node.items) if item is not None]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else And(tuple(kept))


def _only(node: Node, field: str) -> bool:
    names = fields_in(node)
    return bool(names) and all(name == field or name.startswith(field + ".") for name in names)


# -- DuckDB -----------------------------------------------------------------------------------

def quote_ident(name: str) -> str:
    """A DuckDB quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def to_sql(node: Node | None, quote: Callable[[str], str] = quote_ident) -> tuple[str, list]:
    """A DuckDB boolean expression with ? placeholders, and its parameters in order; "TRUE" for None.

    Values only ever travel as parameters; the text holds field names, quoted by quote."""
    if node is None:
        return "TRUE", []
    compiler = _Sql(quote)
    return compiler.node(node, None, 0), compiler.params


class _Sql:
    """Compiles one tree; elem is the lambda variable of the record inside nested, else None."""

    def __init__(self, quote: Callable[[str], str]):
        self.quote = quote
        self.params: list = []

    def column(self, found: Field, elem: str | None) -> str:
        return self.quote(found.name) if elem is None else f"{elem}.{quote_ident(found.name)}"

    def param(self, found: Field, value: Any) -> str:
        self.params.append(_date_value(value) if found.kind == "date" else value)
        return "?"

    def node(self, node: Node, elem: str | None, depth: int) -> str:
        if isinstance(node, (And, Or)):
            joiner = " AND " if isinstance(node, And) else " OR "
            return "(" + joiner.join(self.node(item, elem, depth) for item in node.items) + ")"
        if isinstance(node, Compare):
            return self.compare(node, self.column(node.field, elem))
        if isinstance(node, In):
            return self.in_(node, self.column(node.field, elem))
        if isinstance(node, Search):
            return _any_of([self.search(node.keyword, f, self.column(f, elem)) for f in node.fields])
        var = f"_e{depth + 1}"  # one name per nesting level, so an inner record never shadows an outer one
        inner = self.node(node.node, var, depth + 1)  # composites come parenthesized
        # a NULL record is no record, as an Elasticsearch nested [null] holds no document
        return f"len(list_filter({self.column(node.path, elem)}, lambda {var}: {var} IS NOT NULL AND {inner})) > 0"

    def compare(self, node: Compare, col: str) -> str:
        op, found = node.op, node.field
        if node.value == MISSING:
            return _missing(col, found) if op == "=" else _present(col, found)
        mark = self.param(found, node.value)
        if not found.multi:
            return f"{col} IS DISTINCT FROM {mark}" if op == "!=" else f"{col} {op} {mark}"
        if op == "=":
            return f"list_contains({col}, {mark})"
        if op == "!=":  # no element equals it; a NULL or empty list qualifies
            return f"NOT coalesce(list_contains({col}, {mark}), false)"
        return f"len(list_filter({col}, lambda _v: _v {op} {mark})) > 0"

    def in_(self, node: In, col: str) -> str:
        found = node.field
        values = [v for v in node.values if v != MISSING]
        parts = []
        if values and found.multi:
            self.params.append([_date_value(v) if found.kind == "date" else v for v in values])
            parts.append(f"list_has_any({col}, ?{'::VARCHAR[]' if found.kind == 'keyword' else ''})")
        elif values:
            parts.append(f"{col} IN ({', '.join(self.param(found, v) for v in values)})")
        if MISSING in node.values:
            parts.append(_missing(col, found))
        return _any_of(parts)

    def search(self, keyword: str, found: Field, col: str) -> str:
        escaped = keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        self.params.append(f"%{escaped}%")
        if found.multi:
            return f"len(list_filter({col}, lambda _v: _v ILIKE ? ESCAPE '\\')) > 0"
        return f"{col} ILIKE ? ESCAPE '\\'"


def _missing(col: str, found: Field) -> str:
    return f"{_count(col)} = 0" if found.is_list else f"{col} IS NULL"


def _present(col: str, found: Field) -> str:
    return f"{_count(col)} > 0" if found.is_list else f"{col} IS NOT NULL"


def _count(col: str) -> str:
    """The number of values in a list, 0 for NULL; NULL elements are no values, as in Elasticsearch ([null])."""
    return f"coalesce(len(list_filter({col}, lambda _v: _v IS NOT NULL)), 0)"


def _any_of(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


# -- Elasticsearch ----------------------------------------------------------------------------

def to_es(node: Node | None) -> dict:
    """The Elasticsearch Query DSL for a tree (match_all for None); record fields inside nested are "path.field"."""
    return {"match_all": {}} if node is None else _es(node, "")


def _es(node: Node, prefix: str) -> dict:
    if isinstance(node, And):  # filter context: no scoring, cacheable
        return {"bool": {"filter": [_es(item, prefix) for item in node.items]}}
    if isinstance(node, Or):
        return {"bool": {"should": [_es(item, prefix) for item in node.items], "minimum_should_match": 1}}
    if isinstance(node, Compare):
        return _es_compare(node, prefix + node.field.name)
    if isinstance(node, In):
        return _es_in(node, prefix + node.field.name)
    if isinstance(node, Search):
        return _es_any([_es_search(node.keyword, f, prefix + f.name) for f in node.fields])
    path = prefix + node.path.name
    return {"nested": {"path": path, "query": _es(node.node, path + ".")}}


def _es_compare(node: Compare, name: str) -> dict:
    if node.value == MISSING:
        return _es_not(_es_exists(node.field, name)) if node.op == "=" else _es_exists(node.field, name)
    if node.op == "=":
        return {"term": {name: node.value}}
    if node.op == "!=":  # like SQL's IS DISTINCT FROM: documents without the field qualify
        return _es_not({"term": {name: node.value}})
    return {"range": {name: {ES_RANGE[node.op]: node.value}}}


def _es_in(node: In, name: str) -> dict:
    values = [v for v in node.values if v != MISSING]
    parts = [{"terms": {name: values}}] if values else []
    if MISSING in node.values:
        parts.append(_es_not(_es_exists(node.field, name)))
    return _es_any(parts)


def _es_exists(found: Field, name: str) -> dict:
    """Has a value: exists (false for null and []), or for a list of records, at least one record."""
    if found.nested is not None:
        return {"nested": {"path": name, "query": {"match_all": {}}}}
    return {"exists": {"field": name}}


def _es_search(keyword: str, found: Field, name: str) -> dict:
    if found.kind == "text":
        return {"match_phrase_prefix": {name: keyword}}
    escaped = keyword.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
    return {"wildcard": {name: {"value": f"*{escaped}*", "case_insensitive": True}}}


def _es_not(query: dict) -> dict:
    return {"bool": {"must_not": [query]}}


def _es_any(parts: list[dict]) -> dict:
    return parts[0] if len(parts) == 1 else {"bool": {"should": parts, "minimum_should_match": 1}}
