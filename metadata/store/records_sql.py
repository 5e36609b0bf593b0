"""DuckDB SQL for the records index (metadata/store/record_index.py): pure builders, one side table
per declared type (`rec_<type>`: a copy of the node's row; `sort_ms`, its date as epoch
milliseconds; `seq`, the order rows were written in, which breaks ties; one VARCHAR column per
key), and the query.

Beside each side table, a tally (`tally_rec_<type>`): per project and combination of key values,
how many records, their earliest and latest dates; kept in the same write as the records.

Why this shape (measured at 1,000,000 runs on the shared 2-core machine): DuckDB has no index that
yields rows in date order, and reading the newest first still scans every row group of the
type (it cannot stop early: zone maps skip a row group only against a bound). So a page is read
within a window of dates: the tally says how many records match and over which span, hence how
far back a page (twice over) would reach were they spread evenly; the scan then skips every row
group outside the window (rows lie in write order, which is nearly date order), and a window that
holds too few is widened fourfold until it holds the page or every date. The total is the
tally's sum, not a count (a count reads every row of the type); only a time range (since,
before) still counts. Ordering by the ISO text and the id cost 30 to 50 ms, most of it
decompressing the id column of every vector holding a match; fetching rows from `nodes` by id
costs a scan of every id (DuckDB answers an IN list with a hash join, not its index). The cursor
of this store carries (date, seq), Elasticsearch's (date, id).
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Callable

import pyarrow as pa

from metadata.filters import quote_ident
from metadata.store.record_index import Checked, RecordIndex, date_of, keys_of, millis

META = "CREATE TABLE IF NOT EXISTS records_meta (type VARCHAR PRIMARY KEY, signature VARCHAR NOT NULL)"


def table(type_name: str) -> str:
    return quote_ident("rec_" + re.sub(r"[^A-Za-z0-9]", "_", type_name).strip("_"))


SEQUENCE = "records_seq"


def key_columns(index: RecordIndex) -> tuple[str, ...]:
    return ("sort_ms",) + tuple(f"k_{name}" for name in index.names())


def create_statements(type_name: str, index: RecordIndex, node_columns: str) -> list[str]:
    """Drop and make the type's side table (the nodes table's columns, typed as `node_columns`
    says, and the keys) and its index on id (for updates and deletes)."""
    name, keys = table(type_name), ", ".join(f"{quote_ident(c)} VARCHAR NOT NULL" for c in key_columns(index)[1:])
    return [f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}", f"DROP TABLE IF EXISTS {name}",
            f"CREATE TABLE {name} ({node_columns}, sort_ms BIGINT NOT NULL, "
            f"seq BIGINT NOT NULL DEFAULT nextval('{SEQUENCE}'), {keys})",
            f"CREATE INDEX {quote_ident(name.strip(chr(34)) + '_id')} ON {name} (id)"]


def unused_indexes(type_name: str) -> list[str]:
    """Drop what files indexed before kept and no query reads now (an index costs every insert)."""
    return [f"DROP INDEX IF EXISTS {quote_ident(table(type_name).strip(chr(34)) + '_seq')}"]


def rows(index: RecordIndex, nodes, names: tuple[str, ...], row: Callable) -> pa.Table:
    """The side-table rows of these nodes as an Arrow table: `row(node)` gives the columns `names`."""
    data = {c: [] for c in names + key_columns(index)}
    for node in nodes:
        for column, value in zip(names, row(node)):
            data[column].append(value)
        data["sort_ms"].append(millis(date_of(index, node)))
        for name, value in keys_of(index, node).items():
            data[f"k_{name}"].append(value)
    return pa.table(data)


def insert_sql(type_name: str, index: RecordIndex, view: str, node_names: tuple[str, ...]) -> str:
    names = ", ".join(quote_ident(c) for c in node_names + key_columns(index))
    return f"INSERT INTO {table(type_name)} ({names}) SELECT {names} FROM {view}"


def where_sql(query: Checked, keyset: bool) -> tuple[str, list]:
    """The WHERE clause of a query (with the cursor's keyset condition when `keyset`) and its parameters."""
    clauses, params = ["TRUE"], []
    keys = [("project_id", query.projects)] if query.projects is not None else []
    for column, values in keys + [(f"k_{name}", values) for name, values in query.where]:
        # one value compares as equality, which DuckDB pushes into the scan; several, as a list
        clauses.append(f"{quote_ident(column)} = ?" if len(values) == 1 else f"list_contains(?, {quote_ident(column)})")
        params.append(values[0] if len(values) == 1 else list(values))
    for bound, operator in ((query.since, ">="), (query.before, "<")):
        if bound:
            clauses.append(f"sort_ms {operator} ?")
            params.append(millis(bound))
    if keyset and query.after:
        # (sort_ms, seq) < (?, ?), spelt so that the bound on sort_ms alone reaches the scan's zone maps
        at, seq, op = millis(query.after[0]), int(query.after[1]), "<" if query.newest_first else ">"
        clauses.append(f"sort_ms {op}= ? AND (sort_ms {op} ? OR seq {op} ?)")
        params.extend([at, at, seq])
    return " AND ".join(clauses), params


def tally_sql(query: Checked) -> tuple[str, list]:
    """(matches, earliest, latest) of a query's keys and projects, from the type's tally: its exact
    count when it has no time range; with the span, where a page's window starts."""
    where, params = where_sql(replace(query, since="", before="", after=None), keyset=False)
    return f"SELECT sum(n), min(lo), max(hi) FROM {tally(query.type)} WHERE {where}", params


def window(query: Checked, matches: int, earliest: int, latest: int, widen: int) -> int | None:
    """The date bound of a page's window: the span where, were matches spread evenly, twice the page
    would lie (times `widen`); None when the window would hold every match anyway."""
    start, end = (latest, earliest) if query.newest_first else (earliest, latest)
    if query.after:
        start = millis(query.after[0])
    width = (latest - earliest + 1) * (query.limit + 1) * 2 * widen // max(matches, 1) + 1
    bound = start - width if query.newest_first else start + width
    return None if (bound <= end if query.newest_first else bound >= end) else bound


def page_sql(query: Checked, node_columns: str, bound: int | None) -> tuple[str, list]:
    """(seq, sort_ms, the node's columns) of one page and one more row, to tell whether another
    follows; `bound` limits the dates read (the scan skips row groups outside it: rows lie in the
    order they were written, which is nearly date order)."""
    where, params = where_sql(query, keyset=True)
    order = "DESC" if query.newest_first else "ASC"
    if bound is not None:
        where += f" AND sort_ms {'>=' if query.newest_first else '<='} ?"
        params.append(bound)
    return (f"SELECT seq, sort_ms, {node_columns} FROM {table(query.type)} WHERE {where} "
            f"ORDER BY sort_ms {order}, seq {order} LIMIT ?", params + [query.limit + 1])


def count_sql(query: Checked) -> tuple[str, list]:
    where, params = where_sql(query, keyset=False)
    return f"SELECT count(*) FROM {table(query.type)} WHERE {where}", params


# -- the tally: matches per combination of keys, kept in the write that changes a record ----------

def tally(type_name: str) -> str:
    return quote_ident("tally_" + table(type_name).strip('"'))


def tally_keys(index: RecordIndex) -> tuple[str, ...]:
    return ("project_id",) + key_columns(index)[1:]


def combination(keys) -> str:
    """A tally row's one-column key: its key values joined (a one-column index is one DuckDB looks
    rows up by; it does not look up by a compound one)."""
    return "\x1f".join(keys)


def tally_statements(type_name: str, index: RecordIndex) -> list[str]:
    """Drop and make the type's tally (per project and combination of key values: how many records,
    their earliest and latest dates), filled from its side table."""
    keys = ", ".join(quote_ident(c) for c in tally_keys(index))
    return [f"DROP TABLE IF EXISTS {tally(type_name)}",
            f"CREATE TABLE {tally(type_name)} AS SELECT concat_ws(chr(31), {keys}) AS combination, {keys}, "
            f"count(*) AS n, min(sort_ms) AS lo, max(sort_ms) AS hi FROM {table(type_name)} GROUP BY ALL",
            f"CREATE UNIQUE INDEX {quote_ident(tally(type_name).strip(chr(34)) + '_keys')} ON {tally(type_name)} (combination)"]


def delete_sql(type_name: str, index: RecordIndex, ids: str) -> str:
    """Delete the records of the ids (`ids`: an IN operand), returning their tally keys and date."""
    returned = ", ".join(quote_ident(c) for c in tally_keys(index) + ("sort_ms",))
    return f"DELETE FROM {table(type_name)} WHERE id IN {ids} RETURNING {returned}"


def tally_changes(index: RecordIndex, added: pa.Table | None, removed: list[tuple]) -> list[tuple]:
    """(combination, keys..., records added less removed, earliest, latest) per combination a write
    touches, from the rows added (as `rows` made them) and those removed (as `delete_sql` returned them)."""
    names = tally_keys(index) + ("sort_ms",)
    adding = zip(*(added.column(name).to_pylist() for name in names)) if added is not None else ()
    change: dict[tuple, tuple[int, int, int]] = {}
    for sign, rows in ((1, adding), (-1, removed)):
        for *keys, at in rows:
            n, lo, hi = change.get(tuple(keys), (0, at, at))
            change[tuple(keys)] = (n + sign, min(lo, at), max(hi, at))
    return [(combination(keys), *keys, n, lo, hi) for keys, (n, lo, hi) in change.items()]


def bump_sql(type_name: str) -> str:
    """Add to one combination's row, found by its index (params: n, earliest, latest, combination);
    a combination's date span only ever widens. Cheaper than an insert or an upsert by a few times."""
    return (f"UPDATE {tally(type_name)} SET n = n + ?, lo = least(lo, ?), hi = greatest(hi, ?) "
            "WHERE combination = ?")


def count_in_sql(type_name: str, source: str) -> str:
    """Add the changes `source` gives (a VALUES list or a view of tally rows) to the tally."""
    return (f"INSERT INTO {tally(type_name)} SELECT * FROM {source} ON CONFLICT DO UPDATE SET n = n + excluded.n, "
            "lo = least(lo, excluded.lo), hi = greatest(hi, excluded.hi)")


def values(rows: int, width: int) -> str:
    """A VALUES list of `rows` rows of `width` parameters, as a FROM operand."""
    row = "(" + ", ".join("?" * width) + ")"
    return f"(VALUES {', '.join([row] * rows)})"
