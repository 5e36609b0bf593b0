"""The explorer's view state, its URL query string, and the filter edits the widgets make.

The URL is the single source of truth: `from_query` reads a (possibly hand-edited) query string
into a `State`, `to_query` writes one back, so a copied link reproduces the view. The filter is
the service's filter language (docs/filters.md), kept as its top-level clauses: facet widgets
replace only their own clauses (`IN` for terms, `>=`/`<=` for ranges) and leave any other
clause, such as a hand-written `OR`, in place as a removable chip. Everything here is pure.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from urllib.parse import urlencode

PAGE_SIZE = 50
CHARTS = ("bar", "pie")
MISSING = "__missing__"
TERM_OPS = ("IN", "=")
LOWER_OPS, UPPER_OPS = (">=", ">"), ("<=", "<")
FIELD_OPS = ("=", "!=", "IN", ">", ">=", "<", "<=")


class BadQuery(ValueError):
    """A URL query string that cannot be read as a view; the message says what and where."""


@dataclass(frozen=True)
class State:
    kind: str = "case"
    filter: dict | None = None
    search: str = ""
    sort: tuple[tuple[str, bool], ...] = ()  # (field, descending)
    page: int = 0  # zero-based; the URL shows it one-based
    chart: str = "bar"
    by: str = ""  # field of the counts chart; "" means the kind's first term facet
    hist: str = ""  # field of the histogram; "" means the kind's first numeric field


# -- URL -----------------------------------------------------------------------------------

def to_query(state: State) -> str:
    """The query string ("?tab=...") for a state, leaving out defaults."""
    params = {"tab": state.kind}
    if state.filter:
        params["filter"] = compact(state.filter)
    if state.search:
        params["search"] = state.search
    if state.sort:
        params["sort"] = ",".join(("-" if desc else "") + name for name, desc in state.sort)
    if state.page:
        params["page"] = str(state.page + 1)
    if state.chart != "bar":
        params["chart"] = state.chart
    params.update({key: getattr(state, key) for key in ("by", "hist") if getattr(state, key)})
    return "?" + urlencode(params)


def from_query(query: Mapping[str, str | Sequence[str]]) -> State:
    """A state from parsed query parameters (Dash pages or Flask args); BadQuery if malformed."""
    value = _single(query)
    chart = value("chart") or "bar"
    if chart not in CHARTS:
        raise BadQuery(f"chart: {chart!r} is not a chart type; use bar or pie")
    return State(kind=value("tab") or "case", filter=parse_filter(value("filter")),
                 search=value("search").strip(), sort=parse_sort(value("sort")),
                 page=parse_page(value("page")), chart=chart, by=value("by"), hist=value("hist"))


def _single(query: Mapping) -> Callable[[str], str]:
    """A reader of one parameter's value ("" when absent); BadQuery if it is repeated."""
    def value(name: str) -> str:
        raw = query.get(name, "")
        if isinstance(raw, (list, tuple)):
            if len(raw) > 1:
                raise BadQuery(f"{name}: given {len(raw)} times; give it once")
            raw = raw[0] if raw else ""
        return str(raw)
    return value


def parse_filter(text: str) -> dict | None:
    """The filter from its URL text; None for none. Only the shape is checked here: the
    service checks fields, operators and value types and names every problem."""
    if not text.strip():
        return None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadQuery(f"filter: not valid JSON ({exc.msg} at character {exc.pos + 1})") from None
    if not isinstance(parsed, dict):
        raise BadQuery(f"filter: must be a JSON object such as {{\"=\": {{\"sex\": \"female\"}}}}, "
                       f"not {type(parsed).__name__}")
    return parsed or None


def parse_sort(text: str) -> tuple[tuple[str, bool], ...]:
    """`-age_years,submitter_id` as ((age_years, descending), (submitter_id, ascending))."""
    keys = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name = part.lstrip("-")
        if not name:
            raise BadQuery(f"sort: {part!r} names no field; write field or -field")
        keys.append((name, part.startswith("-")))
    return tuple(keys)


def parse_page(text: str) -> int:
    """A one-based page number from the URL as a zero-based page."""
    if not text:
        return 0
    if not text.isdigit() or int(text) < 1:
        raise BadQuery(f"page: {text!r} is not a page number; pages start at 1")
    return int(text) - 1


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"))


# -- Store data (dcc.Store keeps JSON) --------------------------------------------------------

def to_data(state: State) -> dict:
    data = asdict(state)
    data["sort"] = [list(key) for key in state.sort]
    return data


def from_data(data: Mapping) -> State:
    values = {key: data[key] for key in ("kind", "filter", "search", "page", "chart", "by", "hist") if key in data}
    return State(sort=tuple((name, bool(desc)) for name, desc in data.get("sort", ())), **values)


# -- clauses ---------------------------------------------------------------------------------

def clauses(filter_: dict | None) -> list[dict]:
    """The top-level clauses of a filter: the items of a top-level AND, else the filter itself."""
    if not filter_:
        return []
    if set(filter_) == {"AND"} and isinstance(filter_["AND"], list):
        return list(filter_["AND"])
    return [filter_]


def combine(items: list[dict]) -> dict | None:
    """The filter of these top-level clauses: None, the one clause, or their AND."""
    if not items:
        return None
    return items[0] if len(items) == 1 else {"AND": list(items)}


def without_clause(filter_: dict | None, index: int) -> dict | None:
    """The filter less its top-level clause at index (a removed chip)."""
    items = clauses(filter_)
    return combine(items[:index] + items[index + 1:])


def _field_test(clause: dict, name: str, ops: tuple[str, ...]) -> tuple[str, object] | None:
    """(operator, value) when clause is one of ops on field `name` (dotted: a record field
    inside `nested`), else None."""
    if not isinstance(clause, dict) or len(clause) != 1:
        return None
    path, _, sub = name.rpartition(".")
    if path:
        inner = clause.get("nested")
        if not isinstance(inner, dict) or inner.get("path") != path:
            return None
        rest = {k: v for k, v in inner.items() if k != "path"}
        return _field_test(rest, sub, ops)
    (op, body), = clause.items()
    if op in ops and isinstance(body, dict) and list(body) == [name]:
        return op, body[name]
    return None


def _wrap(name: str, op: str, value) -> dict:
    """A clause `op` on field name, inside `nested` when the field is a record field."""
    path, _, sub = name.rpartition(".")
    if path:
        return {"nested": {"path": path, **_wrap(sub, op, value)}}
    return {op: {name: value}}


def _replace(filter_: dict | None, is_own, new: list[dict]) -> dict | None:
    """Replace the top-level clauses is_own picks with `new`, where the first of them stood."""
    items = clauses(filter_)
    own = [i for i, clause in enumerate(items) if is_own(clause)]
    at = own[0] if own else len(items)
    kept = [clause for clause in items if not is_own(clause)]
    return combine(kept[:at] + new + kept[at:])


# -- term facets -----------------------------------------------------------------------------

def selected_terms(filter_: dict | None, name: str) -> list:
    """The values the filter's top-level `IN`/`=` clauses on a field select, in order."""
    values = []
    for clause in clauses(filter_):
        if test := _field_test(clause, name, TERM_OPS):
            op, value = test
            values += value if op == "IN" and isinstance(value, list) else [value]
    return values


def with_terms(filter_: dict | None, name: str, values: Sequence) -> dict | None:
    """The filter with the field's term clauses replaced by one `IN` (none for no values).
    Unchanged when the same values are already selected, so re-rendered widgets change nothing."""
    if _same(selected_terms(filter_, name), values):
        return filter_
    new = [_wrap(name, "IN", list(values))] if values else []
    return _replace(filter_, lambda c: _field_test(c, name, TERM_OPS) is not None, new)


def _same(a: Sequence, b: Sequence) -> bool:
    return sorted(map(compact, a)) == sorted(map(compact, b))


def typed(value: str, kind: str):
    """A facet bucket's text value as the filter's value for a field of that kind."""
    if value == MISSING:
        return value
    if kind == "boolean":
        return value.lower() == "true"
    if kind in ("integer", "number"):
        number = float(value)
        return int(number) if kind == "integer" or number.is_integer() else number
    return value


def text(value) -> str:
    """A filter value as the text facet buckets use (true/false for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- numeric ranges --------------------------------------------------------------------------

def selected_range(filter_: dict | None, name: str) -> tuple[float | None, float | None]:
    """(lower, upper) bounds the filter's top-level comparisons on a field set; None for open."""
    low = high = None
    for clause in clauses(filter_):
        if test := _field_test(clause, name, LOWER_OPS):
            low = test[1] if isinstance(test[1], (int, float)) else low
        elif test := _field_test(clause, name, UPPER_OPS):
            high = test[1] if isinstance(test[1], (int, float)) else high
    return low, high


def with_range(filter_: dict | None, name: str, low, high) -> dict | None:
    """The filter with the field's comparisons replaced by `>= low` and `<= high` (None: open)."""
    new = [_wrap(name, op, bound) for op, bound in ((">=", low), ("<=", high)) if bound is not None]
    return _replace(filter_, lambda c: _field_test(c, name, LOWER_OPS + UPPER_OPS) is not None, new)


def slider_value(filter_: dict | None, name: str, low: float, high: float) -> list[float]:
    """What a range slider spanning [low, high] shows for the filter: its bounds, clamped."""
    lo, hi = selected_range(filter_, name)
    lo = low if lo is None else min(max(lo, low), high)
    hi = high if hi is None else max(min(hi, high), lo)
    return [lo, hi]


def with_slider(filter_: dict | None, name: str, value: Sequence[float], low: float, high: float) -> dict | None:
    """The filter after a slider over [low, high] moved to value; unchanged if it did not move.
    A handle at its end leaves that side open."""
    if list(value) == slider_value(filter_, name, low, high):
        return filter_
    lo, hi = value
    return with_range(filter_, name, None if lo <= low else lo, None if hi >= high else hi)


# -- search, whole-filter counts, tabs ---------------------------------------------------------

def search_clause(keyword: str, fields: Sequence[str]) -> dict:
    return {"search": {"keyword": keyword, "fields": list(fields)}}


def query_filter(state: State, search_fields: Sequence[str]) -> dict | None:
    """The filter sent to the service: the state's filter and its keyword search."""
    extra = [search_clause(state.search, search_fields)] if state.search and search_fields else []
    return combine(clauses(state.filter) + extra)


def split_search(filter_: dict | None, search_fields: Sequence[str]) -> tuple[dict | None, str]:
    """Undo query_filter: (the filter without the search box's clause, the keyword)."""
    items, keyword = clauses(filter_), ""
    for i, clause in enumerate(items):
        body = clause.get("search") if isinstance(clause, dict) and len(clause) == 1 else None
        if isinstance(body, dict) and list(body.get("fields", [])) == list(search_fields):
            keyword = str(body.get("keyword", ""))
            return combine(items[:i] + items[i + 1:]), keyword
    return filter_, keyword


def fields_of(clause) -> set[str]:
    """Every field name a clause refers to; "*" when a search names no fields."""
    if not isinstance(clause, dict):
        return set()
    names: set[str] = set()
    for op, body in clause.items():
        if op in ("AND", "OR") and isinstance(body, list):
            names |= set().union(*map(fields_of, body)) if body else set()
        elif op == "nested" and isinstance(body, dict):
            names.add(str(body.get("path")))
        elif op == "search" and isinstance(body, dict):
            names |= set(body.get("fields") or ["*"])
        elif op in FIELD_OPS and isinstance(body, dict):
            names |= set(body)
    return names


def carry(filter_: dict | None, fields: Sequence[str]) -> dict | None:
    """The top-level clauses that apply to another document kind, with these fields."""
    known = set(fields)
    return combine([c for c in clauses(filter_) if fields_of(c) and fields_of(c) <= known])


def switch_kind(state: State, kind: str, fields: Sequence[str]) -> State:
    """The state on another tab: the filter clauses that apply there, the same search."""
    if kind == state.kind:
        return state
    return State(kind=kind, filter=carry(state.filter, fields), search=state.search, chart=state.chart)


def edited(state: State, **changes) -> State:
    """The state after a change of filter or search: back to the first page."""
    return replace(state, page=0, **changes)
