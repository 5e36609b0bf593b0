"""The embedded store: one DuckDB file, opened only by the metadata service.

Bulk parameters (id lists, rows) travel as registered Arrow tables: binding Python lists as
query parameters costs DuckDB ~0.1 ms per element, Arrow a few microseconds.
Reads run concurrently on per-thread cursors; writes are serialized by one lock, so a batch's
optimistic checks and its writes happen in one transaction that no other write interleaves.
DuckDB's write-ahead log makes a committed transaction survive a crash; an uncommitted one
leaves no trace.

A full disk: a commit that cannot write the log raises StorageFull and wrote nothing. A
checkpoint that cannot write the file makes DuckDB invalidate the database (every later call
fails); so checkpoints run here, after the commit, where such a failure loses nothing, and the
database is opened again (the file and its log hold every commit). `storage_full` stays True
until a write succeeds with at least ROOM_AFTER_FULL_BYTES free; reads work throughout.
"""
from __future__ import annotations

import itertools
import json
import logging
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from metadata.errors import Clash, StorageFull
from metadata.filters import quote_ident, to_sql
from metadata.store import documents_sql as D
from metadata.store import run_stats_sql as S
from metadata.store import records_sql as R
from metadata.store.record_index import (INDEXES, SIGNATURE, RecordQuery, check, empty, encode_record_cursor,
                                         from_millis)
from metadata.store.columnar import CURRENT, ColumnCache, Delta, Unsupported, saved_mark
from metadata.store.base import (EdgeRow, FacetCounts, NumericSummary, Page, Store, StoredNode, Write,
                                 children_clash_message, decode_cursor, decode_id_cursor, edges_of, encode_cursor,
                                 encode_id_cursor, histogram_edges)

SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    id VARCHAR PRIMARY KEY,
    type VARCHAR NOT NULL,
    project_id VARCHAR NOT NULL,
    submitter_id VARCHAR NOT NULL,
    version BIGINT NOT NULL,
    props JSON NOT NULL,
    links JSON NOT NULL,
    created_at VARCHAR NOT NULL,
    updated_at VARCHAR NOT NULL,
    created_by VARCHAR NOT NULL,
    updated_by VARCHAR NOT NULL,
    UNIQUE (project_id, submitter_id)
);
CREATE TABLE IF NOT EXISTS edges (
    child_id VARCHAR NOT NULL,
    child_type VARCHAR NOT NULL,
    link_name VARCHAR NOT NULL,
    parent_id VARCHAR NOT NULL,
    parent_type VARCHAR NOT NULL
);
CREATE INDEX IF NOT EXISTS edges_parent ON edges (parent_id);
CREATE INDEX IF NOT EXISTS edges_child ON edges (child_id);
CREATE TABLE IF NOT EXISTS documents_meta (kind VARCHAR PRIMARY KEY, signature VARCHAR NOT NULL);
"""
NODE_COLUMNS = ("id", "type", "project_id", "submitter_id", "version", "props", "links",
                "created_at", "updated_at", "created_by", "updated_by")
# a record type's side table repeats the node's row (metadata/store/records_sql.py says why)
RECORD_COLUMNS = ("id VARCHAR NOT NULL, type VARCHAR NOT NULL, project_id VARCHAR NOT NULL, "
                  "submitter_id VARCHAR NOT NULL, version BIGINT NOT NULL, props JSON NOT NULL, links JSON NOT NULL, "
                  "created_at VARCHAR NOT NULL, updated_at VARCHAR NOT NULL, created_by VARCHAR NOT NULL, "
                  "updated_by VARCHAR NOT NULL")
# a list of strings bound as one parameter, for IN: half the CPU of a join against a registered
# Arrow view (the view's scan and its registration), measured at 50,000 nodes
IDS = "(SELECT unnest(?::VARCHAR[]) AS v)"
EDGE_COLUMNS = ("child_id", "child_type", "link_name", "parent_id", "parent_type")
REINDEX_CHUNK = 2000
TALLY_PARAMETERS = 20  # tally changes bound as parameters; more travel as an Arrow view
BACKFILL_CHUNK = 50_000  # nodes per read when indexing a type's records on open
CUMULATIVE_BINS = 32  # histograms of up to this many bins count by compares, more by binning each value
COLUMNS = ("id, type, project_id, submitter_id, version, props, links, "
           "created_at, updated_at, created_by, updated_by")
CHECKPOINT_WAL_BYTES = 16 * 1024 * 1024  # DuckDB's own default, applied in _checkpoint_if_due
ROOM_AFTER_FULL_BYTES = 1024 * 1024  # free space that ends `storage_full` with the next write
NEVER = "1000 TB"  # DuckDB's automatic checkpoint threshold: never, since we do it ourselves
log = logging.getLogger("labcommons.metadata")


class EmbeddedStore(Store):
    name = "embedded"

    def __init__(self, path: Path, read_only: bool = False, columnar: bool = True,
                 checkpoint_wal_bytes: int = CHECKPOINT_WAL_BYTES):
        """read_only: for readers of a store no service has open (migrate); writes and documents
        then fail. columnar: answer facets, counts and stats from an in-process columnar copy of
        the documents (metadata/store/columnar.py) where it can; False asks DuckDB every time.
        checkpoint_wal_bytes: checkpoint after a write once the log has grown this large."""
        self.path, self.read_only, self.checkpoint_wal_bytes = path, read_only, checkpoint_wal_bytes
        if read_only:
            self._db = duckdb.connect(str(path), read_only=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._connect()
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self.flattening = None
        self._columns = ColumnCache(self._cursor) if columnar else None
        # the columnar copy a clean stop saved beside the database; its mark goes before any write
        self._saved_copy = Path(f"{path}.columnar")
        self._saved_mark = not read_only and (self._saved_copy / CURRENT).exists()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        db = duckdb.connect(str(self.path))
        db.execute(f"SET checkpoint_threshold = '{NEVER}'")
        db.execute(SCHEMA)
        _use_records(db)
        return db

    @contextmanager
    def _writing(self):
        """Hold the write lock for one write; a full disk becomes StorageFull."""
        with self._write_lock:
            self._forget_saved_copy()
            try:
                yield
            except duckdb.Error as error:
                self._failed(error)
                raise
            if self.storage_full:  # small writes may fit in a page's slack: trust only real room
                self.storage_full = shutil.disk_usage(self.path.parent).free < ROOM_AFTER_FULL_BYTES
            self._checkpoint_if_due()

    def _failed(self, error: duckdb.Error) -> None:
        """After a failed write: reopen an invalidated database; StorageFull if the disk is full."""
        if isinstance(error, duckdb.FatalException) or "invalidated" in str(error):
            self._reopen(error)
        if "No space left on device" in str(error):
            self.storage_full = True
            log.error("a write failed, the disk is full: %s", error)
            raise StorageFull("the metadata store's disk is full: nothing was written; reads still work; "
                              "an operator must free space, then try again") from None

    def _forget_saved_copy(self) -> None:
        """Before the first write after a start: the saved columnar copy no longer matches what
        a crash would leave, so the next start rebuilds it unless a clean stop saves it again."""
        if self._saved_mark:
            (self._saved_copy / CURRENT).unlink(missing_ok=True)
            self._saved_mark = False

    def _checkpoint_if_due(self) -> None:
        """Checkpoint once the log is large; the commit is already in the log, so a failure here
        (a full disk) costs no data: the store is marked full and the database reopened."""
        try:
            if Path(f"{self.path}.wal").stat().st_size < self.checkpoint_wal_bytes:
                return
            self._cursor().execute("CHECKPOINT")
        except FileNotFoundError:
            return
        except duckdb.Error as error:
            log.warning("checkpoint failed (the write-ahead log keeps the data): %s", error)
            self.storage_full = "No space left on device" in str(error)
            if isinstance(error, duckdb.FatalException) or "invalidated" in str(error):
                self._reopen(error)

    def _reopen(self, error: duckdb.Error) -> None:
        """Open the database again after DuckDB invalidated it: every commit is in its file and log."""
        log.warning("DuckDB invalidated the database (%s); opening it again", str(error).splitlines()[0])
        try:
            self._db.close()
        except duckdb.Error:
            pass
        self._db = self._connect()
        self._local = threading.local()  # every thread's next cursor comes from the new connection
        self._reset_columns()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor; DuckDB connections must not be shared across threads."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._local.cursor = self._db.cursor()
        return cursor

    def _select(self, where: str, params: list) -> list[StoredNode]:
        return _select(self._cursor(), where, params)

    def get_many(self, ids: list[str]) -> dict[str, StoredNode]:
        if not ids:
            return {}
        return _nodes(self._cursor(), ids)

    def find(self, project_id: str, submitter_ids: list[str]) -> dict[str, StoredNode]:
        if not submitter_ids:
            return {}
        nodes = self._select(f"project_id = ? AND submitter_id IN {IDS}", [project_id, list(submitter_ids)])
        return {n.submitter_id: n for n in nodes}

    def list(self, type_name: str, project_ids: list[str] | None, limit: int, cursor: str = "") -> Page:
        where, params = ["type = ?"], [type_name]
        if project_ids is not None:
            where.append("list_contains(?, project_id)")
            params.append(list(project_ids))
        total = self._cursor().execute(f"SELECT count(*) FROM nodes WHERE {' AND '.join(where)}",
                                       params).fetchone()[0]
        if after := decode_cursor(cursor):
            where.append("(project_id, submitter_id) > (?, ?)")
            params.extend(after)
        nodes = self._select(f"{' AND '.join(where)} ORDER BY project_id, submitter_id LIMIT ?",
                             params + [limit + 1])
        more = len(nodes) > limit
        nodes = nodes[:limit]
        return Page(nodes, total, encode_cursor(nodes[-1]) if more else "")

    def with_id_prefix(self, prefix: str, types: list[str], project_ids: list[str] | None,
                       limit: int) -> list[StoredNode]:
        if not types or project_ids == []:
            return []
        where, params = "starts_with(id, ?) AND list_contains(?, type)", [prefix, list(types)]
        if project_ids is not None:
            where, params = where + " AND list_contains(?, project_id)", params + [list(project_ids)]
        return self._select(where + " ORDER BY id LIMIT ?", params + [limit])

    def query(self, query: RecordQuery) -> Page:
        checked = check(query)
        if empty(checked):
            return Page([], 0 if checked.total else -1)
        cur = self._cursor()
        matches, earliest, latest = cur.execute(*R.tally_sql(checked)).fetchone()
        if not matches:
            return Page([], 0 if checked.total else -1)
        rows = _page_rows(cur, checked, matches, earliest, latest)
        more, rows = len(rows) > checked.limit, rows[:checked.limit]
        total = -1 if not checked.total else matches if not (checked.since or checked.before) else \
            cur.execute(*R.count_sql(checked)).fetchone()[0]
        cursors = [encode_record_cursor(from_millis(row[1]), row[0], checked.newest_first) for row in rows]
        return Page([_node(row[2:]) for row in rows], total, cursors[-1] if more else "", cursors)

    def edges(self, node_id: str) -> list[EdgeRow]:
        # two equality lookups, each answered by its index; `child_id = ? OR parent_id = ?` scans the table
        columns = ", ".join(EDGE_COLUMNS)
        rows = self._cursor().execute(
            f"SELECT {columns} FROM edges WHERE child_id = ? UNION ALL "
            f"SELECT {columns} FROM edges WHERE parent_id = ? AND child_id <> ? ORDER BY child_type, child_id",
            [node_id, node_id, node_id]).fetchall()
        return [EdgeRow(*row) for row in rows]

    def children(self, parent_ids: list[str], child_type: str) -> dict[str, list[str]]:
        parents = list(dict.fromkeys(parent_ids))
        if not parents:
            return {}
        # one index lookup per parent; an IN list would scan every edge
        one = "SELECT parent_id, child_id FROM edges WHERE parent_id = ? AND child_type = ?"
        rows = self._cursor().execute(" UNION ALL ".join([one] * len(parents)),
                                      [v for p in parents for v in (p, child_type)]).fetchall()
        found: dict[str, list[str]] = {}
        for parent, child in sorted(set(rows)):
            found.setdefault(parent, []).append(child)
        return found

    def apply(self, writes: list[Write], parent_ids: set[str]) -> None:
        with self._writing():
            try:
                rewritten = self._apply(writes, parent_ids)
            except duckdb.ConstraintException:
                # a create took a key in use: the nodes' unique indexes refused it and the batch was
                # rolled back; which keys, and the Clash that names them, is asked only now
                _check_free(self._cursor(), [w.node for w in writes if w.expected_version is None])
                raise
            self._committed(rewritten)

    def _apply(self, writes: list[Write], parent_ids: set[str]) -> dict:
        with _transaction(self._cursor()) as cur:
            reader = _Reader(cur)
            _check_parents(parent_ids, reader)
            creates = [w.node for w in writes if w.expected_version is None]
            before = self._affected(reader, _nodes(cur, [w.node.id for w in writes if w.expected_version is not None]).values())
            _update(cur, [w for w in writes if w.expected_version is not None])
            _insert_rows(cur, "nodes", NODE_COLUMNS, [_row(n) for n in creates])
            _replace_edges(cur, [w.node for w in writes], [w.node.id for w in writes if w.expected_version is not None])
            _index_records(cur, writes)
            reader.wrote(w.node for w in writes)
            return self._refresh(cur, reader, before, self._affected(reader, [w.node for w in writes]))

    def delete(self, ids: list[str]) -> None:
        with self._writing():
            self._committed(self._delete(ids))

    def _delete(self, ids: list[str]) -> dict:
        with _transaction(self._cursor()) as cur:
            with _values(cur, ids) as values:
                children = [EdgeRow(*row) for row in cur.execute(
                    f"SELECT {', '.join(EDGE_COLUMNS)} FROM edges WHERE parent_id IN (SELECT v FROM {values}) "
                    f"AND child_id NOT IN (SELECT v FROM {values}) ORDER BY child_type, child_id").fetchall()]
                if children:
                    raise Clash(children_clash_message(children), "has_children")
                reader = _Reader(cur)
                before = self._affected(reader, _nodes(cur, ids).values())
                cur.execute(f"DELETE FROM edges WHERE child_id IN (SELECT v FROM {values})")
                _unindex_records(cur, values)
                cur.execute(f"DELETE FROM nodes WHERE id IN (SELECT v FROM {values})")
                reader.removed(ids)
            return self._refresh(cur, reader, before, {})

    def _committed(self, rewritten: dict) -> None:
        """After a commit, still under the write lock so deltas queue in commit order: the columnar
        copy applies each kind's delta (or, for None, rebuilds) at its next read."""
        if self._columns is not None:
            for kind, delta in rewritten.items():
                self._columns.changed(kind, delta)

    # -- flattened documents ----------------------------------------------------------

    def use_documents(self, flattening) -> None:
        saved = saved_mark(self._saved_copy) if self._saved_mark else None  # before this write removes it
        with self._writing(), _transaction(self._cursor()) as cur:
            stored = dict(cur.execute("SELECT kind, signature FROM documents_meta").fetchall())
            signature = flattening.signature()
            for spec in flattening.specs.values():
                if stored.get(spec.kind) != signature:
                    for statement in D.drop_statements(spec) + D.create_statements(spec):
                        cur.execute(statement)
                    cur.execute("INSERT OR REPLACE INTO documents_meta VALUES (?, ?)", [spec.kind, signature])
            self.flattening = flattening
            rebuilt = any(stored.get(kind) != signature for kind in flattening.specs)
            if rebuilt:
                self._rebuild(cur)
        self._reset_columns()
        if self._columns is not None and not rebuilt:
            restored = self._columns.restore(saved, self._saved_copy, signature)
            if restored:
                log.info("columnar copy of %s taken up from %s", ", ".join(restored), self._saved_copy)

    def _reset_columns(self) -> None:
        if self._columns is not None:
            self._columns.reset(self.flattening.specs if self.flattening else {})

    def reindex(self) -> dict[str, int]:
        try:
            with self._writing(), _transaction(self._cursor()) as cur:
                return self._rebuild(cur)
        finally:
            self._reset_columns()

    def _rebuild(self, cur) -> dict[str, int]:
        counts = {}
        for spec in self.flattening.specs.values():
            cur.execute(f"DELETE FROM {D.table(spec.kind)}")
            ids = [r[0] for r in cur.execute("SELECT id FROM nodes WHERE type = ? ORDER BY id", [spec.root]).fetchall()]
            for start in range(0, len(ids), REINDEX_CHUNK):  # a reader per chunk: its cache stays a chunk's size
                chunk = ids[start:start + REINDEX_CHUNK]
                self._write_documents(cur, spec, self.flattening.flattener.documents(_Reader(cur), spec.kind, chunk))
            counts[spec.kind] = len(ids)
        return counts

    def load_documents(self, kind: str, documents: pa.Table) -> None:
        """Bulk-load prepared documents of a kind (benchmarks, migrations); replaces none."""
        with self._writing(), _transaction(self._cursor()) as cur, _registered(cur, documents) as view:
            cur.execute(D.insert_sql(self.flattening.specs[kind], view))
        if self._columns is not None:
            self._columns.invalidate(kind)

    def _affected(self, reader, nodes) -> dict[str, set[str]]:
        return self.flattening.flattener.affected(reader, nodes) if self.flattening else {}

    def _refresh(self, cur, reader, before: dict, after: dict) -> dict:
        """Rewrite the documents of every affected root; those whose root is gone are removed.
        Returns, per kind, the columnar copy's delta (None when the copy does not hold the kind)."""
        rewritten = {}
        for kind in set(before) | set(after):
            roots = before.get(kind, set()) | after.get(kind, set())
            if not roots:
                continue
            spec = self.flattening.specs[kind]
            roots = list(roots)
            cur.execute(f"DELETE FROM {D.table(kind)} WHERE id IN {IDS}", [roots])
            written = self._write_documents(cur, spec, self.flattening.flattener.documents(reader, kind, roots))
            rewritten[kind] = self._delta(cur, kind, roots, written)
        return rewritten

    def _delta(self, cur, kind: str, roots: list[str], written: pa.Table | None) -> Delta | None:
        """What the columnar copy needs to follow this write without reading the table again."""
        if self._columns is None or not self._columns.tracking(kind):
            return None
        hashes = dict(cur.execute(f"SELECT v, hash(v) FROM {IDS}", [roots]).fetchall())
        total = cur.execute(f"SELECT count(*) FROM {D.table(kind)}").fetchone()[0]
        return Delta(np.array(list(hashes.values()), np.uint64), written,
                     np.array([hashes[i] for i in written.column("id").to_pylist()] if written else [], np.uint64),
                     total)

    @staticmethod
    def _write_documents(cur, spec, docs: list[dict]) -> pa.Table | None:
        """Insert documents; the Arrow table they travelled as (None for none)."""
        if not docs:
            return None
        table = pa.Table.from_pylist(docs, D.arrow_schema(spec))
        with _registered(cur, table) as view:
            cur.execute(D.insert_sql(spec, view))
        return table

    def facet_counts(self, kind: str, requests: list[tuple[str, object]], size: int) -> dict[str, FacetCounts]:
        spec, result = self.flattening.specs[kind], {}
        counted = self._columns.facets(kind, requests) if self._columns is not None else {}
        for field, where in requests:
            rows = counted.get(field)
            if rows is None:
                rows = self._sql_facet(spec, field, where)
            rows.sort(key=lambda r: (-r[1], r[0]))
            result[field] = FacetCounts([(v, c) for v, c in rows[:size]], sum(c for _, c in rows[size:]))
        return result

    def sharing(self):
        return self._columns.sharing() if self._columns is not None else super().sharing()

    def _sql_facet(self, spec, field: str, where) -> list[tuple[str, int]]:
        where_sql, params = to_sql(where)
        return [(D.MISSING if v is None else D.bucket(v), c)
                for v, c in self._cursor().execute(D.facet_sql(spec, field, where_sql), params).fetchall()]

    def count(self, kind: str, where) -> int:
        if self._columns is not None:
            try:
                return self._columns.count(kind, where)
            except Unsupported:
                pass
        where_sql, params = to_sql(where)
        return self._cursor().execute(f"SELECT count(*) FROM {D.table(kind)} WHERE {where_sql}", params).fetchone()[0]

    def cell_counts(self, kind: str, fields: list[str], where) -> dict[tuple, int]:
        if not fields:
            return {(): n} if (n := self.count(kind, where)) else {}
        spec, (where_sql, params) = self.flattening.specs[kind], to_sql(where)
        rows = self._cursor().execute(D.cells_sql(spec, fields, where_sql), params).fetchall()
        return {tuple(D.MISSING if v is None else D.bucket(v) for v in row[:-1]): row[-1] for row in rows}

    def numeric_stats(self, kind: str, field: str, where, bins: int, bin_width: float) -> NumericSummary:
        if self._columns is not None:
            try:
                count, missing, low, high, mean, total, values = self._columns.stats(kind, field, where)
            except Unsupported:
                pass
            else:
                summary = NumericSummary(count, missing, low, high, mean, total)
                if count:
                    edges = histogram_edges(float(low), float(high), bins, bin_width)
                    summary.bins = _histogram(values, edges)
                return summary
        spec, (where_sql, params) = self.flattening.specs[kind], to_sql(where)
        count, missing, low, high, mean, total = self._cursor().execute(
            D.stats_sql(spec, field, where_sql), params).fetchone()
        summary = NumericSummary(count, missing, low, high, mean, total)
        if count:
            edges = histogram_edges(float(low), float(high), bins, bin_width)
            last, width = len(edges) - 2, edges[1] - edges[0]
            counts = dict(self._cursor().execute(D.histogram_sql(spec, field, where_sql),
                                                 [edges, edges, last, edges[0], width] + params).fetchall())
            summary.bins = [(edges[i], edges[i + 1], counts.get(i, 0)) for i in range(last + 1)]
        return summary

    def hits(self, kind: str, where, sort: list[tuple[str, bool]], limit: int, offset: int) -> tuple[int, list[dict]]:
        spec, (where_sql, params) = self.flattening.specs[kind], to_sql(where)
        cur = self._cursor().execute(D.hits_sql(spec, where_sql, sort), params + [limit, offset])
        columns = [c[0] for c in cur.description]
        docs = [D.document(columns, row) for row in cur.fetchall()]  # before count() reuses the cursor
        return self.count(kind, where), docs

    def manifest(self, kind: str, where, limit: int, cursor: str = "") -> tuple[int, list[dict], str]:
        manifest = self.flattening.manifest
        where_sql, params = to_sql(where)
        if kind != manifest.document:
            if kind not in manifest.joins:
                raise ValueError(f"kind: no manifest from {kind!r} documents")
            join = manifest.joins[kind]
            where_sql = f"{quote_ident(join)} IN (SELECT id FROM {D.table(kind)} WHERE {where_sql})"
        spec = self.flattening.specs[manifest.document]
        total = self._cursor().execute(f"SELECT count(*) FROM {D.table(spec.kind)} WHERE {where_sql}",
                                       params).fetchone()[0]
        after = decode_id_cursor(cursor) or ""
        rows = self._cursor().execute(D.manifest_sql(spec, manifest.fields, where_sql),
                                      params + [after, limit + 1]).fetchall()
        entries = [D.document(list(manifest.fields), row) for row in rows[:limit]]
        return total, entries, encode_id_cursor(entries[-1]["id"]) if len(rows) > limit else ""

    def all_edges(self) -> list[EdgeRow]:
        """Every row of the edges table (migrate checks it against the nodes' links)."""
        rows = self._cursor().execute(f"SELECT {', '.join(EDGE_COLUMNS)} FROM edges").fetchall()
        return [EdgeRow(*row) for row in rows]

    def counts(self) -> dict[str, int]:
        rows = self._cursor().execute("SELECT type, count(*) FROM nodes GROUP BY type").fetchall()
        return dict(rows)

    def close(self) -> None:
        """Checkpoint so the next start replays no log, save the columnar copy so the next
        start need not rebuild it, then close."""
        with self._write_lock:
            try:
                if not self.read_only:
                    self._db.execute("CHECKPOINT")
            except duckdb.Error as error:  # a full disk: the next start replays the log instead
                log.warning("no checkpoint at close: %s", error)
            self._save_columns()
            self._db.close()

    def run_stats(self, window: "S.StatsWindow") -> dict[str, list]:
        """The dashboard's aggregates over the window's runs, grouped in SQL over the runs' facts
        (run_stats_sql.py), refreshed first from the runs written since."""
        cur = self._cursor()
        if not self.read_only:
            self._refresh_run_facts(cur)
        return {"buckets": [S.bucket_row(r) for r in cur.execute(*S.buckets_sql(window)).fetchall()],
                "qc": [dict(zip(("project_id", "instrument", "runs", "passed"), r))
                       for r in cur.execute(*S.qc_sql(window)).fetchall()],
                "steps": [dict(zip(("template", "step", "runs", "failed", "p50_s", "max_s"), r))
                          for r in cur.execute(*S.steps_sql(window)).fetchall()],
                "queue": list(cur.execute(*S.queue_sql(window)).fetchone())}

    def recent_runs(self, last: int) -> list[tuple[str, int, int]]:
        """(template, runs, failed) over each template's `last` ended runs, newest first (alerts)."""
        cur = self._cursor()
        if not self.read_only:
            self._refresh_run_facts(cur)
        return [tuple(row) for row in cur.execute(*S.recent_sql(last)).fetchall()]

    def _refresh_run_facts(self, cur) -> None:
        """Bring the runs' facts up to date: only the runs written since the last refresh are read
        (the newest stamp is remembered, so finding them costs no scan of the facts)."""
        if not getattr(self, "_facts_ready", False):
            with self._writing():
                cur.execute(S.FACTS_SCHEMA)
            self._facts_ready, self._facts_stamp = True, None
        since = cur.execute(*S.since_sql(self._facts_stamp)).fetchone()[0]
        cur.execute(*S.changed_sql(since))
        count, newest = cur.execute("SELECT count(*), max(updated_at) FROM changed").fetchone()
        if count:
            with self._writing(), _transaction(cur):
                for statement in S.refresh_sql():
                    cur.execute(statement)
        self._facts_stamp = max(filter(None, (self._facts_stamp, newest)), default=None)

    def _save_columns(self) -> None:
        if self.read_only or self._columns is None or self.flattening is None:
            return
        try:
            self._columns.save(self._saved_copy, self.flattening.signature())
        except OSError as error:  # a full disk: the next start builds the copy from DuckDB
            log.warning("the columnar copy was not saved: %s", error)


def _histogram(values, edges: list[float]) -> list[tuple[float, float, int]]:
    """Bin i holds edges[i] <= v < edges[i+1]; values below the first edge count in the first bin and
    values from the last inner edge up in the last, as D.histogram_sql clamps them."""
    last = len(edges) - 2
    if last < CUMULATIVE_BINS:  # how many lie below each inner edge: one compare-and-count pass each
        below = [np.count_nonzero(values < edge) for edge in edges[1:-1]]
        counts = np.diff(np.array([0] + below + [len(values)]))
    else:  # the arithmetic guess, corrected against the edges themselves
        at_edges = np.asarray(edges, np.float64)
        at = ((values - at_edges[0]) / (at_edges[1] - at_edges[0])).astype(np.intp)  # >= 0: truncation is floor
        np.clip(at, 0, last, out=at)
        at -= values < at_edges.take(at)
        np.clip(at, 0, last, out=at)
        at += (values >= at_edges.take(at + 1)) & (at < last)
        counts = np.bincount(at, minlength=last + 1)
    return [(edges[i], edges[i + 1], int(counts[i])) for i in range(last + 1)]


class _Reader:
    """The graph as this transaction sees it (its own writes included), for the flattener. A node
    is read from DuckDB at most once per write: the write tells the reader the nodes it wrote and
    removed, so a batch's refresh reads only the stored nodes it did not bring (its documents are
    refreshed in one pass over what the batch touched, not a read per path)."""

    def __init__(self, cur):
        self.cur = cur
        self._known: dict[str, StoredNode | None] = {}  # None: no such node

    def nodes(self, ids) -> dict[str, StoredNode]:
        wanted = list(dict.fromkeys(ids))
        missing = [i for i in wanted if i not in self._known]
        if missing:
            found = _nodes(self.cur, missing)
            self._known.update({i: found.get(i) for i in missing})
        return {i: node for i in wanted if (node := self._known[i]) is not None}

    def wrote(self, nodes) -> None:
        """These nodes are now stored as given (created or updated by this transaction)."""
        self._known.update({n.id: n for n in nodes})

    def removed(self, ids) -> None:
        self._known.update({i: None for i in ids})

    def children(self, parent_ids, child_type: str, link_name: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        if not parent_ids:
            return found
        rows = self.cur.execute(f"SELECT parent_id, child_id FROM edges WHERE parent_id IN {IDS} "
                                "AND child_type = ? AND link_name = ?", [list(parent_ids), child_type, link_name]).fetchall()
        for parent, child in rows:
            found.setdefault(parent, []).append(child)
        return found


def _select(cur, where: str, params: list) -> list[StoredNode]:
    rows = cur.execute(f"SELECT {COLUMNS} FROM nodes WHERE {where}", params).fetchall()
    return [_node(row) for row in rows]


def _nodes(cur, ids) -> dict[str, StoredNode]:
    ids = list(ids)
    if not ids:
        return {}
    if len(ids) == 1:
        return {n.id: n for n in _select(cur, "id = ?", ids)}
    return {n.id: n for n in _select(cur, f"id IN {IDS}", [ids])}


class _transaction:
    """BEGIN ... COMMIT, or ROLLBACK on any exception."""

    def __init__(self, cursor):
        self.cursor = cursor

    def __enter__(self):
        self.cursor.execute("BEGIN TRANSACTION")
        return self.cursor

    def __exit__(self, kind, exc, tb):
        self.cursor.execute("COMMIT" if kind is None else "ROLLBACK")
        return False


def _check_parents(parent_ids: set[str], reader: "_Reader") -> None:
    """Refuse a batch linking to a node deleted since it was planned. The parents are read whole:
    the documents' refresh reads most of them next (a sample's case), from the reader."""
    if not parent_ids:
        return
    found = reader.nodes(parent_ids)
    gone = sorted(set(parent_ids) - set(found))
    if gone:
        raise Clash(f"the batch links to {len(gone)} node(s) deleted meanwhile: {', '.join(gone[:10])}",
                    "parent_gone")


def _check_free(cur, creates: list[StoredNode]) -> None:
    """Refuse creates whose (project_id, submitter_id) or id is taken, in the store or twice in the
    batch (asked after the unique indexes refused a batch, to say which)."""
    if not creates:
        return
    keys = [(n.project_id, n.submitter_id) for n in creates]
    twice = sorted({k for k in keys if keys.count(k) > 1}) if len(set(keys)) < len(keys) else []
    taken = twice + cur.execute("SELECT n.project_id, n.submitter_id FROM nodes n JOIN (SELECT unnest(?::VARCHAR[]) "
                                "AS project_id, unnest(?::VARCHAR[]) AS submitter_id) k USING (project_id, submitter_id)",
                                [[p for p, _ in keys], [s for _, s in keys]]).fetchall()
    if taken:
        names = ", ".join(f"{sid} ({project})" for project, sid in taken[:10])
        raise Clash(f"created meanwhile by another submission: {names}; submit again to update them", "stale")
    ids = [n.id for n in creates]
    used = [r[0] for r in cur.execute(f"SELECT id FROM nodes WHERE id IN {IDS}", [ids]).fetchall()]
    if used or len(set(ids)) < len(ids):
        raise Clash(f"node id(s) already in use: {', '.join(used[:10]) or 'named twice in the batch'}", "stale")


def _page_rows(cur, checked, matches: int, earliest: int, latest: int) -> list[tuple]:
    """A page's rows and one more, read within a window of dates widened until it holds them
    (metadata/store/records_sql.py says why)."""
    widen = 1
    while True:
        bound = R.window(checked, matches, earliest, latest, widen)
        rows = cur.execute(*R.page_sql(checked, COLUMNS, bound)).fetchall()
        if len(rows) > checked.limit or bound is None:
            return rows
        widen *= 4


def _use_records(db) -> None:
    """Make each declared type's side table, filling it from the nodes, when it is missing or was
    made for another declaration (a database file from before, or a changed record_index)."""
    db.execute(R.META)
    stored = dict(db.execute("SELECT type, signature FROM records_meta").fetchall())
    stale = [t for t in INDEXES if stored.get(t) != SIGNATURE]
    tallied = {r[0] for r in db.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    for type_name in set(INDEXES) - set(stale):
        for statement in R.unused_indexes(type_name) + (
                [] if R.tally(type_name).strip('"') in tallied else R.tally_statements(type_name, INDEXES[type_name])):
            db.execute(statement)
    if not stale:
        return
    with _transaction(db.cursor()) as cur:
        for type_name in stale:
            log.info("indexing the %s records", type_name)
            for statement in R.create_statements(type_name, INDEXES[type_name], RECORD_COLUMNS):
                cur.execute(statement)
            _backfill(cur, type_name)
            for statement in R.tally_statements(type_name, INDEXES[type_name]):
                cur.execute(statement)
            cur.execute("INSERT OR REPLACE INTO records_meta VALUES (?, ?)", [type_name, SIGNATURE])


def _backfill(cur, type_name: str) -> None:
    """Index every stored node of a type, a chunk at a time."""
    after = ("", "")  # in creation order, as live writes lay them down: a page's rows then lie together
    while nodes := _select(cur, "type = ? AND (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?",
                           [type_name, *after, BACKFILL_CHUNK]):
        _insert_records(cur, type_name, nodes)  # the tally is made from the side table after
        after = (nodes[-1].created_at, nodes[-1].id)


def _insert_records(cur, type_name: str, nodes: list[StoredNode]) -> pa.Table:
    """Add the nodes' records to the type's side table; the rows added."""
    index = INDEXES[type_name]
    added = R.rows(index, nodes, NODE_COLUMNS, _row)
    with _registered(cur, added) as view:
        cur.execute(R.insert_sql(type_name, index, view, NODE_COLUMNS))
    return added


def _remove_records(cur, type_name: str, ids: list[str]) -> list[tuple]:
    """Take these nodes' records out of the type's side table; their tally keys and dates."""
    return cur.execute(R.delete_sql(type_name, INDEXES[type_name], IDS), [ids]).fetchall() if ids else []


def _count(cur, type_name: str, added: pa.Table | None, removed: list[tuple]) -> None:
    """Bring the type's tally up to date with a write's records: a few combinations (a batch's audit
    entry, a run's new status) each by an update of its row, new ones by an insert; many (a bulk
    load) as an Arrow view."""
    index = INDEXES[type_name]
    changes = R.tally_changes(index, added, removed)
    if len(changes) > TALLY_PARAMETERS:
        with _registered(cur, _table(("combination",) + R.tally_keys(index) + ("n", "lo", "hi"), changes)) as view:
            cur.execute(R.count_in_sql(type_name, view))
        return
    new = [c for c in changes if not cur.execute(R.bump_sql(type_name), [*c[-3:], c[0]]).fetchone()[0]]
    if new:
        cur.execute(R.count_in_sql(type_name, R.values(len(new), len(new[0]))), [v for c in new for v in c])


def _index_records(cur, writes: list[Write]) -> None:
    """Keep the side tables and their tallies current with the batch: updated records replaced,
    created ones added."""
    by_type: dict[str, list[Write]] = {}
    for write in writes:
        if write.node.type in INDEXES:
            by_type.setdefault(write.node.type, []).append(write)
    for type_name, typed in by_type.items():
        removed = _remove_records(cur, type_name, [w.node.id for w in typed if w.expected_version is not None])
        _count(cur, type_name, _insert_records(cur, type_name, [w.node for w in typed]), removed)


def _unindex_records(cur, values: str) -> None:
    """Remove the side-table rows of the nodes a delete removes (before the nodes go)."""
    rows = cur.execute(f"SELECT type, id FROM nodes WHERE id IN (SELECT v FROM {values})").fetchall()
    for type_name in {t for t, _ in rows} & set(INDEXES):
        _count(cur, type_name, None, _remove_records(cur, type_name, [i for t, i in rows if t == type_name]))


def _update(cur, writes: list[Write]) -> None:
    """Compare-and-set every updated node on its version, in one statement."""
    if not writes:
        return
    names = ("id", "expected", "version", "props", "links", "updated_at", "updated_by")
    rows = [(w.node.id, w.expected_version, w.node.version, json.dumps(w.node.props), w.node.links_json(),
             w.node.updated_at, w.node.updated_by) for w in writes]
    with _registered(cur, _table(names, rows)) as view:
        changed = {r[0] for r in cur.execute(
            f"UPDATE nodes SET version = b.version, props = b.props, links = b.links, "
            f"updated_at = b.updated_at, updated_by = b.updated_by FROM {view} b "
            f"WHERE nodes.id = b.id AND nodes.version = b.expected RETURNING nodes.id").fetchall()}
    stale = [w for w in writes if w.node.id not in changed]
    if stale:
        node, expected = stale[0].node, stale[0].expected_version
        raise Clash(f"{node.type} {node.submitter_id!r} was changed by someone else since version "
                    f"{expected}; fetch it again and resubmit", "stale")


def _replace_edges(cur, nodes: list[StoredNode], updated: list[str]) -> None:
    """The nodes' edges as their links say; only updated nodes had edges before (a created one's id
    was checked free)."""
    if updated:
        cur.execute(f"DELETE FROM edges WHERE child_id IN {IDS}", [updated])
    _insert_rows(cur, "edges", EDGE_COLUMNS, [(e.child_id, e.child_type, e.link_name, e.parent_id, e.parent_type)
                                   for n in nodes for e in edges_of(n)])


def _insert_rows(cur, table: str, names: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert rows in one statement from an Arrow table."""
    if not rows:
        return
    with _registered(cur, _table(names, rows)) as view:
        cur.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(names)} FROM {view}")


def _table(names: tuple[str, ...], rows: list[tuple]) -> pa.Table:
    return pa.table({name: list(column) for name, column in zip(names, zip(*rows))})


def _values(cur, values) -> "_registered":
    """A one-column (v) view of a list of strings, for a statement that names it several times
    (one that names a list once binds it as one parameter: IDS)."""
    return _registered(cur, pa.table({"v": pa.array(list(values), pa.string())}))


class _registered:
    """Register an Arrow table under a fresh name for the duration of a with-block."""
    _names = itertools.count()  # next() on a count is atomic, so threads never share a name

    def __init__(self, cur, table: pa.Table):
        self.cur, self.table, self.name = cur, table, f"arrow_{next(self._names)}"

    def __enter__(self) -> str:
        self.cur.register(self.name, self.table)
        return self.name

    def __exit__(self, *exc):
        self.cur.unregister(self.name)
        return False


def _row(node: StoredNode) -> tuple:
    return (node.id, node.type, node.project_id, node.submitter_id, node.version,
            json.dumps(node.props), node.links_json(), node.created_at, node.updated_at,
            node.created_by, node.updated_by)


def _node(row) -> StoredNode:
    (id_, type_, project_id, submitter_id, version, props, links,
     created_at, updated_at, created_by, updated_by) = row
    return StoredNode(id_, type_, project_id, submitter_id, version, json.loads(props),
                      StoredNode.parse_links(links), created_at, updated_at, created_by, updated_by)
