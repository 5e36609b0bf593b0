"""An in-process columnar copy of the embedded store's document tables, for facets, counts and stats.

DuckDB stays the source of truth. This module keeps, per document kind, numpy arrays of the
columns exploration filters and counts on, and answers facet counts, counts and numeric stats
from them; anything it cannot answer exactly it refuses with `Unsupported`, and the store asks
DuckDB instead.

Why: own-facet exclusion makes 8 facets need up to 8 different filters, and DuckDB evaluates a
filter again for every query (~5-10 ms over 1M rows each). Here a filter tree is compiled to
boolean masks with every distinct sub-tree evaluated once per call (a memo keyed by the frozen
filter nodes), so the facets of one request share their clauses, and counting is np.bincount
(or, for up to 16 codes, one vectorized compare per code) over the dictionary codes of the
selected rows (docs/performance.md has the figures).

Columns:
- keyword (scalar, ENUM or VARCHAR) and boolean: dictionary codes (code 0 = no value, values
  from 1; uint8 while they fit, else int32) and the dictionary; a clause becomes a lookup table
  over the dictionary (computed by DuckDB itself for `search`, so ILIKE keeps its semantics),
  taken at every row's code;
- integer and number (scalar): values with a validity mask;
- keyword lists: the distinct non-null elements of every row as (row, code) pairs plus the
  number of them per row (0 = no value), which is all the filter semantics and the facet count
  (once per distinct element) need.
Dates, text fields, lists of records (nested), lists of numbers: Unsupported (DuckDB answers).

Keeping current: inside each write's transaction the store makes a `Delta` for every kind it
holds here (the id hashes of the rewritten roots, the documents as inserted, the new document
count) and, after the commit and still under its write lock (so deltas queue in commit order),
hands it to `changed`. The next reader applies the queued deltas: it tombstones the old rows
(found through a sorted 64-bit hash of the id, DuckDB's hash()) and appends the new ones, then
checks the live row count against the write's. Any doubt (a count mismatch, a tenth of the rows
dead or appended, a new column needed, reindex, a snapshot built while a write was under way)
rebuilds the kind's snapshot from DuckDB in full. Snapshots are never changed once published:
a reader holds the lock only to pick the current one up (bringing it up to date), not while it
counts.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field as dataclass_field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metadata.filters import MISSING, And, Compare, In, Nested, Or, Search, quote_ident
from metadata.store import documents_sql as D

_names = itertools.count()  # registered Arrow views get fresh names, as in embedded.py
COMPACT_FRACTION = 0.1  # rebuild when dead or appended rows exceed this share of the base rows
SMALL_DICTIONARY = 16  # up to this many codes, count each with a compare rather than np.bincount
BUILD_THREADS = 4  # columns encoded at once when a kind is built
PARALLEL_ROWS = 500_000  # from this many rows, a request's facets are counted on several threads
CURRENT = "current.json"  # in a saved copy's directory: written last, removed before the next write


@dataclass
class Delta:
    """One committed write's change to a kind's documents, made inside its transaction."""
    gone: np.ndarray  # uint64 id hashes of every root rewritten or removed
    table: pa.Table | None  # the documents written (as inserted), or None
    hashes: np.ndarray  # uint64 id hash of each row of table
    total: int  # the kind's document count after the write


class Unsupported(Exception):
    """The columnar path cannot answer this exactly; ask DuckDB."""


@dataclass
class _Dict:
    """A scalar keyword/boolean column: codes (0 = no value) and the values they stand for."""
    codes: np.ndarray
    values: list  # values[code - 1]
    index: dict  # value -> code


@dataclass
class _Num:
    values: np.ndarray  # nulls hold 0
    valid: np.ndarray  # bool


@dataclass
class _List:
    """A keyword list column: distinct non-null elements as (row, code) pairs; count per row."""
    rows: np.ndarray  # int32 row of each element
    codes: np.ndarray  # int32 code (from 1) of each element
    count: np.ndarray  # int32 distinct non-null elements per row
    values: list
    index: dict


@dataclass
class Snapshot:
    n: int
    idhash: np.ndarray  # uint64 per row
    sorted_hash: np.ndarray  # of the first `base` rows
    order: np.ndarray  # row of each sorted_hash
    base: int
    alive: np.ndarray | None  # None: every row is alive
    dead: int
    columns: dict = dataclass_field(default_factory=dict)

    def live(self) -> int:
        return self.n - self.dead


def supported(spec, name: str) -> bool:
    field = spec.fields.get(name)
    if field is None or field.nested:
        return False
    if field.multi:
        return field.kind == "keyword"
    return field.kind in ("keyword", "boolean", "integer", "number")


class ColumnCache:
    """The columnar snapshots of every document kind of one store."""

    def __init__(self, cursor):
        self._cursor = cursor  # callable: this thread's DuckDB cursor
        self._lock = threading.Lock()
        self._snapshots: dict[str, Snapshot] = {}
        self._pending: dict[str, set] = {}
        self._stale: set[str] = set()
        self._shared = threading.local()  # .masks: {(kind, snapshot): _Masks} while sharing() is open
        self.specs: dict = {}

    # -- keeping current -----------------------------------------------------------------

    def reset(self, specs: dict) -> None:
        """Forget everything (documents rebuilt, flattening changed)."""
        with self._lock:
            self.specs = dict(specs)
            self._snapshots.clear()
            self._pending.clear()
            self._stale.clear()

    def tracking(self, kind: str) -> bool:
        """Whether a write should hand this kind's delta over (else the next read rebuilds)."""
        with self._lock:
            return kind in self._snapshots and kind not in self._stale

    def changed(self, kind: str, delta: Delta | None) -> None:
        """A committed write rewrote documents of kind; called in commit order."""
        with self._lock:
            if kind not in self._snapshots:
                return
            if delta is None:  # the snapshot appeared during the write: it may or may not hold it
                self._stale.add(kind)
            else:
                self._pending.setdefault(kind, []).append(delta)

    def invalidate(self, kind: str) -> None:
        with self._lock:
            self._stale.add(kind)

    def snapshot(self, kind: str, needed: set[str]) -> Snapshot:
        """The kind's current snapshot holding at least the columns `needed`."""
        spec = self.specs.get(kind)
        if spec is None or not all(supported(spec, n) for n in needed):
            raise Unsupported(kind)
        with self._lock:
            snap = self._snapshots.get(kind)
            pending = self._pending.pop(kind, [])
            if snap is not None and kind not in self._stale and needed <= set(snap.columns):
                fresh = self._apply(spec, snap, pending) if pending else snap
                if fresh is not None:
                    self._snapshots[kind] = fresh
                    return fresh
            self._stale.discard(kind)
            columns = needed | set(snap.columns if snap is not None else ())
            snap = self._snapshots[kind] = self._build(spec, columns)
            return snap

    def _build(self, spec, columns: set[str]) -> Snapshot:
        """Read the kind's columns in one query (one consistent view of the table), then encode
        them column by column on several threads (Arrow and numpy release the GIL)."""
        names = sorted(columns)
        select = ", ".join(["hash(id) AS _h"] + [quote_ident(n) for n in names])
        table = self._cursor().execute(f"SELECT {select} FROM {D.table(spec.kind)}").to_arrow_table()
        with ThreadPoolExecutor(BUILD_THREADS) as pool:
            encoded = pool.map(lambda n: _encode(spec.fields[n], table.column(n), None), names)
            idhash = _numpy(table.column("_h"), np.uint64)
            order = np.argsort(idhash, kind="stable").astype(np.int32)
            columns_ = dict(zip(names, encoded))
        return Snapshot(len(idhash), idhash, idhash[order], order, len(idhash), None, 0, columns_)

    def _apply(self, spec, snap: Snapshot, deltas: list[Delta]) -> Snapshot | None:
        """A new snapshot with the deltas applied in commit order; None if a full rebuild is due."""
        names = sorted(snap.columns)
        alive = np.ones(snap.n, bool) if snap.alive is None else snap.alive.copy()
        dead, n, hashes, columns = snap.dead, snap.n, [snap.idhash], dict(snap.columns)
        for delta in deltas:
            view = Snapshot(n, np.concatenate(hashes) if len(hashes) > 1 else hashes[0], snap.sorted_hash,
                            snap.order, snap.base, None, 0)
            rows = _rows_of(view, delta.gone)
            dead += int(np.count_nonzero(alive[rows]))
            alive[rows] = False
            if delta.table is not None and delta.table.num_rows:
                added = delta.table.num_rows
                for name in names:
                    column = delta.table.column(name)
                    columns[name] = _append(columns[name], _encode(spec.fields[name], column, columns[name]), n)
                hashes, n = [view.idhash, delta.hashes], n + added
                alive = np.concatenate([alive, np.ones(added, bool)])
        limit = COMPACT_FRACTION * snap.base + 1000
        new = Snapshot(n, np.concatenate(hashes) if len(hashes) > 1 else hashes[0], snap.sorted_hash, snap.order,
                       snap.base, alive, dead, columns)
        if new.live() != deltas[-1].total or dead > limit or new.n - new.base > limit:
            return None  # a row matched by hash collision, or time to compact
        return new

    @contextlib.contextmanager
    def sharing(self):
        """Within it, this thread's queries over the same snapshot share one _Masks: a clause
        evaluated for a facet is not evaluated again for the total (Store.sharing)."""
        outer = getattr(self._shared, "masks", None)
        self._shared.masks = {} if outer is None else outer
        try:
            yield
        finally:
            self._shared.masks = outer

    def _masks(self, snap: Snapshot, kind: str) -> "_Masks":
        shared = getattr(self._shared, "masks", None)
        if shared is None:
            return _Masks(self, snap, kind)
        key = (kind, id(snap))
        found = shared.get(key)
        if found is None or found.snap is not snap:
            found = shared[key] = _Masks(self, snap, kind)
        return found

    # -- kept on disk between runs ---------------------------------------------------------

    def save(self, directory: Path, signature: str) -> list[str]:
        """Write every kind's current copy under directory, `current.json` last, naming the
        flattening it reflects; the kinds saved. Called at close under the store's write lock."""
        with self._lock:
            kinds = {kind: snap for kind in list(self._snapshots) if (snap := self._current(kind)) is not None}
        if not kinds:
            return []
        staging = directory.with_name(directory.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            for kind, snap in kinds.items():
                _save_snapshot(staging / kind, snap)
        except (TypeError, ValueError):  # a value JSON cannot hold: the next start builds instead
            shutil.rmtree(staging, ignore_errors=True)
            return []
        (staging / CURRENT).write_text(json.dumps({"signature": signature, "kinds": sorted(kinds)}))
        shutil.rmtree(directory, ignore_errors=True)  # a copy mapped from it stays readable until unmapped
        os.replace(staging, directory)
        return sorted(kinds)

    def _current(self, kind: str) -> Snapshot | None:
        """The kind's snapshot with its queued writes applied; None when it must be rebuilt."""
        snap, pending = self._snapshots[kind], self._pending.pop(kind, [])
        if kind in self._stale:
            return None
        if pending:
            snap = self._apply(self.specs[kind], snap, pending)
            if snap is None:
                self._stale.add(kind)
                return None
            self._snapshots[kind] = snap
        return snap

    def restore(self, current: dict | None, directory: Path, signature: str) -> list[str]:
        """Take up the copies a clean stop saved (current: its `current.json`, read before any
        write could remove it), if they reflect this flattening; the kinds restored."""
        if not current or current.get("signature") != signature:
            return []
        restored = []
        with self._lock:
            for kind in current.get("kinds", []):
                spec = self.specs.get(kind)
                try:
                    snap = _load_snapshot(directory / kind, spec) if spec is not None else None
                except (OSError, ValueError, KeyError):
                    snap = None
                if snap is not None:
                    self._snapshots[kind] = snap
                    restored.append(kind)
        return restored

    # -- queries -------------------------------------------------------------------------

    def facets(self, kind: str, requests: list[tuple[str, object]]) -> dict[str, list[tuple[str, int]]]:
        """Per (field, where) it can answer: every (value, count) with a count, "__missing__" for no
        value; requests it cannot answer (a numeric facet, a nested filter...) are left out."""
        spec = self.specs.get(kind)
        if spec is None:
            return {}
        answerable, needed = [], set()
        for name, where in requests:
            field = spec.fields.get(name)
            if field is None or not supported(spec, name) or (not field.multi and field.kind in ("integer", "number")):
                continue
            try:
                needed |= columns_in(where) | {name}
            except Unsupported:
                continue
            answerable.append((name, where))
        if not answerable:
            return {}
        snap = self.snapshot(kind, needed)
        masks = self._masks(snap, kind)
        selected = [(name, masks.rows(where)) for name, where in answerable]  # shared clauses: once, in turn
        count = lambda pair: (pair[0], _count(snap.columns[pair[0]], pair[1], snap))  # noqa: E731
        if snap.n < PARALLEL_ROWS or len(selected) < 2:
            return dict(map(count, selected))
        return dict(_counting_pool().map(count, selected))  # numpy's gathers and compares release the GIL

    def count(self, kind: str, where) -> int:
        snap = self.snapshot(kind, columns_in(where))
        return self._masks(snap, kind).total(where)

    def stats(self, kind: str, name: str, where):
        """(count, missing, min, max, mean, sum, values of the matching rows that have one)."""
        spec = self.specs.get(kind)
        if spec is None or spec.fields.get(name) is None or spec.fields[name].multi or \
                spec.fields[name].kind not in ("integer", "number"):
            raise Unsupported(name)
        snap = self.snapshot(kind, columns_in(where) | {name})
        masks = self._masks(snap, kind)
        column = snap.columns[name]
        values = column.values[masks.rows(where, column.valid)]
        values = values[np.isfinite(values)] if values.dtype.kind == "f" else values  # as D.stats_sql: NaN is no value
        count = len(values)
        missing = masks.total(where) - count
        if not count:
            return 0, missing, None, None, None, None, values
        integer = spec.fields[name].kind == "integer"
        total = int(values.sum(dtype=np.int64)) if integer else float(values.sum())
        low, high = values.min(), values.max()
        low, high = (int(low), int(high)) if integer else (float(low), float(high))
        return count, missing, low, high, float(total) / count, total, values

    def search_lut(self, column: _Dict | _List, keyword: str) -> np.ndarray:
        """Which dictionary values contain keyword, ignoring case, as DuckDB's ILIKE says."""
        escaped = keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        lut = np.zeros(len(column.values) + 1, bool)
        if column.values:
            texts = pa.table({"i": pa.array(range(1, len(column.values) + 1), pa.int64()),
                              "v": pa.array([str(v) for v in column.values], pa.string())})
            cur, view = self._cursor(), f"_columnar_{next(_names)}"
            cur.register(view, texts)
            try:
                hits = cur.execute(f"SELECT i FROM {view} WHERE v ILIKE ? ESCAPE '\\'",
                                   [f"%{escaped}%"]).fetchnumpy()["i"]
            finally:
                cur.unregister(view)
            lut[np.asarray(hits, np.int64)] = True
        return lut


@functools.cache
def _counting_pool() -> ThreadPoolExecutor:
    """Threads that count one request's facets at once (one per core; shared by all requests)."""
    return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="facet-count")


def columns_in(node) -> set[str]:
    """The top-level columns a filter reads; Unsupported for what the columnar path cannot evaluate."""
    if node is None:
        return set()
    if isinstance(node, (And, Or)):
        return set().union(*(columns_in(item) for item in node.items))
    if isinstance(node, Nested):
        raise Unsupported("nested")
    if isinstance(node, Search):
        if any(f.kind != "keyword" for f in node.fields):
            raise Unsupported("search on text")
        return {f.name for f in node.fields}
    if node.field.kind not in ("keyword", "boolean", "integer", "number") or \
            (node.field.multi and node.field.kind != "keyword"):
        raise Unsupported(node.field.name)
    return {node.field.name}


class _Masks:
    """Evaluates filter trees over one snapshot, each distinct sub-tree once (memoized by node)."""

    def __init__(self, cache: ColumnCache, snap: Snapshot, kind: str):
        self.cache, self.snap, self.kind = cache, snap, kind
        self.memo: dict = {}
        self.rows_memo: dict = {}

    def rows(self, where, also: np.ndarray | None = None) -> np.ndarray:
        """The matching live rows, in order (as indices); also: a further mask they must pass."""
        key = (where, also is not None)
        found = self.rows_memo.get(key)
        if found is None:
            parts = [m for m in (None if where is None else self.mask(where), self.snap.alive, also) if m is not None]
            if not parts:
                found = np.arange(self.snap.n)
            else:
                mask = parts[0]
                for extra in parts[1:]:
                    mask = mask & extra
                found = np.flatnonzero(mask)
            self.rows_memo[key] = found
        return found

    def total(self, where) -> int:
        """How many live rows match."""
        if (where, False) in self.rows_memo:
            return len(self.rows_memo[(where, False)])
        if where is None:
            return self.snap.live()
        mask = self.mask(where)
        return int(np.count_nonzero(mask if self.snap.alive is None else mask & self.snap.alive))

    def mask(self, node) -> np.ndarray:
        found = self.memo.get(node)
        if found is None:
            found = self.memo[node] = self._mask(node)
        return found

    def _mask(self, node) -> np.ndarray:
        if isinstance(node, (And, Or)):
            combine = np.logical_and if isinstance(node, And) else np.logical_or
            out = self.mask(node.items[0]).copy()
            for item in node.items[1:]:
                combine(out, self.mask(item), out=out)
            return out
        if isinstance(node, Search):
            out = np.zeros(self.snap.n, bool)
            for f in node.fields:
                column = self.snap.columns[f.name]
                out |= self._by_lut(column, self.cache.search_lut(column, node.keyword))
            return out
        column = self.snap.columns[node.field.name]
        if isinstance(column, _Num):
            return _numeric(column, node)
        lut = np.zeros(len(column.values) + 1, bool)
        for value in (node.values if isinstance(node, In) else (node.value,)):
            code = 0 if value == MISSING else _code(column, value)
            if code is not None:
                lut[code] = True
        mask = self._by_lut(column, lut)
        # != : no value (no element) equals it, so rows without a value qualify
        return ~mask if isinstance(node, Compare) and node.op == "!=" else mask

    def _by_lut(self, column, lut: np.ndarray) -> np.ndarray:
        """Rows whose value (or, for a list, some element; code 0: no element) the table marks."""
        if isinstance(column, _Dict):
            return _lookup(column.codes, lut)
        out = np.zeros(self.snap.n, bool)
        out[column.rows[lut[1:].take(column.codes - 1)]] = True
        if lut[0]:
            out |= column.count == 0
        return out


def _lookup(codes: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """lut[codes]; a few equality tests on the narrow codes are ~10x faster than the gather."""
    marked = np.flatnonzero(lut)
    if len(marked) > 4 and len(lut) - len(marked) <= 4:
        return ~_lookup(codes, ~lut)
    if len(marked) > 4:
        return lut.take(codes)
    out = np.zeros(len(codes), bool)
    for code in marked:
        out |= codes == code
    return out


def _code(column, value) -> int | None:
    """A value's code; None for a value no row holds."""
    return column.index.get(value)


def _numeric(column: _Num, node) -> np.ndarray:
    values, valid = column.values, column.valid
    if isinstance(node, In):
        wanted = [v for v in node.values if v != MISSING]
        out = valid & np.isin(values, np.array(wanted, dtype=values.dtype)) if wanted else np.zeros(len(valid), bool)
        return out | ~valid if MISSING in node.values else out
    if node.value == MISSING:
        return ~valid if node.op == "=" else valid.copy()
    value = node.value
    if node.op == "!=":
        return ~valid | (values != value)
    compare = {"=": np.equal, ">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}[node.op]
    return valid & compare(values, value)


def _count(column, rows: np.ndarray, snap: Snapshot) -> list[tuple[str, int]]:
    if isinstance(column, _Dict):
        codes, size = column.codes[rows], len(column.values) + 1
        if size <= SMALL_DICTIONARY:  # one vectorized compare per value beats bincount's widening copy
            counts = np.array([np.count_nonzero(codes == code) for code in range(size)])
        else:
            counts = np.bincount(codes, minlength=size)
    elif isinstance(column, _List):
        selected = np.zeros(snap.n, bool)
        selected[rows] = True
        counts = np.bincount(column.codes[selected[column.rows]], minlength=len(column.values) + 1)
        counts[0] = int(np.count_nonzero(column.count[rows] == 0))
    else:
        raise Unsupported("facet on a number")
    out = [(D.MISSING, int(counts[0]))] if counts[0] else []
    nonzero = np.flatnonzero(counts[1:])
    out += [(D.bucket(column.values[i]), int(counts[i + 1])) for i in nonzero]
    return out


# -- saving --------------------------------------------------------------------------------

def saved_mark(directory: Path) -> dict | None:
    """The `current.json` of a saved copy, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((directory / CURRENT).read_text())
    except (OSError, ValueError):
        return None


def _save_snapshot(directory: Path, snap: Snapshot) -> None:
    """The snapshot as .npy arrays and a meta.json with its dictionaries."""
    directory.mkdir(parents=True)
    arrays = {"idhash": snap.idhash, "sorted_hash": snap.sorted_hash, "order": snap.order}
    if snap.alive is not None:
        arrays["alive"] = snap.alive
    columns = []
    for i, (name, column) in enumerate(sorted(snap.columns.items())):
        parts = {field.name: getattr(column, field.name) for field in dataclasses.fields(column)}
        arrays |= {f"c{i}.{part}": value for part, value in parts.items() if isinstance(value, np.ndarray)}
        values = None if isinstance(column, _Num) else parts["values"]  # a dictionary's values, as JSON
        columns.append({"name": name, "type": type(column).__name__, "values": values})
    for key, array in arrays.items():
        np.save(directory / f"{key}.npy", array, allow_pickle=False)
    meta = {"n": snap.n, "base": snap.base, "dead": snap.dead, "columns": columns}
    (directory / "meta.json").write_text(json.dumps(meta))


def _load_snapshot(directory: Path, spec) -> Snapshot | None:
    """A saved snapshot, its arrays mapped read-only (pages load as queries touch them); None
    when it holds a column this flattening no longer has in that form."""
    meta = json.loads((directory / "meta.json").read_text())
    array = lambda key: np.load(directory / f"{key}.npy", mmap_mode="r", allow_pickle=False)  # noqa: E731
    alive = array("alive") if (directory / "alive.npy").exists() else None
    snap = Snapshot(meta["n"], array("idhash"), array("sorted_hash"), array("order"), meta["base"], alive, meta["dead"])
    kinds = {"_Dict": _Dict, "_Num": _Num, "_List": _List}
    for i, column in enumerate(meta["columns"]):
        name, made = column["name"], kinds[column["type"]]
        if not supported(spec, name) or _shape(spec.fields[name]) is not made:
            return None
        listed = () if made is _Num else ("values", "index")  # kept in meta.json, not as arrays
        parts = {f.name: array(f"c{i}.{f.name}") for f in dataclasses.fields(made) if f.name not in listed}
        if listed:
            values = column["values"]
            parts |= {"values": values, "index": {v: code for code, v in enumerate(values, 1)}}
        snap.columns[name] = made(**parts)
    return snap


def _shape(found) -> type:
    """The column class a field is kept in."""
    if found.kind in ("integer", "number") and not found.multi:
        return _Num
    return _List if found.multi else _Dict


# -- encoding --------------------------------------------------------------------------------

def _numpy(column: pa.ChunkedArray, dtype) -> np.ndarray:
    if column.num_chunks == 0:
        return np.zeros(0, dtype)
    return column.combine_chunks().to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _dictionary(values: pa.ChunkedArray, old) -> tuple[np.ndarray, list, dict]:
    """Codes (0 = null) of a scalar column against old's dictionary, extended by unseen values."""
    values_list = list(old.values) if old is not None else []
    index = dict(old.index) if old is not None else {}
    if values.num_chunks == 0 or len(values) == 0:
        return np.zeros(0, np.int32), values_list, index
    if pa.types.is_dictionary(values.type) and values.num_chunks > 1:
        values = values.unify_dictionaries()
    array = values.combine_chunks()
    if not pa.types.is_dictionary(array.type):
        array = pc.dictionary_encode(array)
    dictionary = array.dictionary.to_pylist()
    remap = np.zeros(len(dictionary) + 1, np.int32)
    for i, value in enumerate(dictionary):
        code = index.get(value)
        if code is None:
            values_list.append(value)
            code = index[value] = len(values_list)
        remap[i + 1] = code
    indices = array.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) + 1
    if array.null_count:
        indices[~array.is_valid().to_numpy(zero_copy_only=False)] = 0
    return remap.take(indices), values_list, index


def _encode(found, column: pa.ChunkedArray, old):
    if found.kind in ("integer", "number") and not found.multi:
        dtype = np.int64 if found.kind == "integer" else np.float64
        if column.num_chunks == 0 or len(column) == 0:
            return _Num(np.zeros(0, dtype), np.zeros(0, bool))
        array = column.combine_chunks()
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        values = array.fill_null(0).to_numpy(zero_copy_only=False).astype(dtype)
        return _Num(values, valid)
    if not found.multi:
        codes, values, index = _dictionary(column, old)
        return _Dict(codes.astype(_code_type(len(values))), values, index)
    lists = column.combine_chunks() if column.num_chunks else pa.array([], pa.list_(pa.string()))
    n = len(lists)
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    codes, values, index = _dictionary(pa.chunked_array([pc.list_flatten(lists)]), old)
    keep = codes > 0
    parents, codes = parents[keep], codes[keep].astype(np.int64)
    pairs = np.unique(parents * (len(values) + 1) + codes)  # distinct elements per row
    rows, codes = (pairs // (len(values) + 1)).astype(np.int32), (pairs % (len(values) + 1)).astype(np.int32)
    return _List(rows, codes, np.bincount(rows, minlength=n).astype(np.int32), values, index)


def _code_type(size: int):
    return np.uint8 if size < 255 else np.int32


def _append(old, new, offset: int):
    if isinstance(old, _Num):
        return _Num(np.concatenate([old.values, new.values]), np.concatenate([old.valid, new.valid]))
    if isinstance(old, _Dict):
        dtype = _code_type(len(new.values))
        return _Dict(np.concatenate([old.codes.astype(dtype, copy=False), new.codes.astype(dtype, copy=False)]),
                     new.values, new.index)
    return _List(np.concatenate([old.rows, new.rows + offset]), np.concatenate([old.codes, new.codes]),
                 np.concatenate([old.count, new.count]), new.values, new.index)


def _rows_of(snap: Snapshot, hashes: np.ndarray) -> np.ndarray:
    """The rows (alive or not) whose id hashes to one of hashes."""
    if not len(hashes):
        return np.zeros(0, np.int64)
    at = np.searchsorted(snap.sorted_hash, hashes)
    at = at[at < len(snap.sorted_hash)]
    rows = snap.order[at[np.isin(snap.sorted_hash[at], hashes)]]
    tail = snap.base + np.flatnonzero(np.isin(snap.idhash[snap.base:], hashes))
    return np.concatenate([rows, tail]).astype(np.int64)
