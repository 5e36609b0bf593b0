"""DuckDB SQL for the records index (metadata/store/record_index.py): pure builders, one side table
per declared type (`rec_<type>`: a copy of the node's row; `sort_ms`, its date as epoch
milliseconds; `seq`, the order rows were written in, which breaks ties; one VARCHAR column per
key), and the query.

Why this shape (measured at 300,000 runs on the shared 2-core machine): a page is found from a
few narrow columns (keys, `sort_ms`, `seq`: dictionary-compressed or bit-packed integers), then
its rows are read by `seq`. Ordering by the ISO text and the id instead cost 30 to 50 ms, most of
it decompressing the id column of every vector holding a match; fetching rows from `nodes` by id
costs a scan of every id (DuckDB answers an IN list with a hash join, not its index: 80 ms for 50
ids among 200,000 nodes). The cursor of this store carries (date, seq), Elasticsearch's (date, id).
"""
from __future__ import annotations

import re
from typing import Callable

import pyarrow as pa

from metadata.filters import quote_ident
from metadata.store.record_index import Checked, RecordIndex, date_of, keys_of, millis

META = "CREATE TABLE IF NOT EXISTS records_meta (type VARCHAR PRIMARY KEY, signature VARCHAR NOT NULL)"


def table(type_name: str) -> str:
    return quote_ident("rec_" + re.sub(r"[^A-Za-z0-9]", "_", type_name).strip("_"))


SEQUENCE = "records_seq"
POINT_READS = 200


def key_columns(index: RecordIndex) -> tuple[str, ...]:
    return ("sort_ms",) + tuple(f"k_{name}" for name in index.names())


def create_statements(type_name: str, index: RecordIndex, node_columns: str) -> list[str]:
    """Drop and make the type's side table (the nodes table's columns, typed as `node_columns`
    says, and the keys) and its index on id (for updates and deletes)."""
    name, keys = table(type_name), ", ".join(f"{quote_ident(c)} VARCHAR NOT NULL" for c in key_columns(index)[1:])
    return [f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}", f"DROP TABLE IF EXISTS {name}",
            f"CREATE TABLE {name} ({node_columns}, sort_ms BIGINT NOT NULL, "
            f"seq BIGINT NOT NULL DEFAULT nextval('{SEQUENCE}'), {keys})",
            f"CREATE INDEX {quote_ident(name.strip(chr(34)) + '_id')} ON {name} (id)"] + seq_index(type_name)


def seq_index(type_name: str) -> list[str]:
    """The index the page's rows are read by (made on open where missing: files indexed before it)."""
    name = table(type_name)
    return [f"CREATE INDEX IF NOT EXISTS {quote_ident(name.strip(chr(34)) + '_seq')} ON {name} (seq)"]


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


def page_sql(query: Checked) -> tuple[str, list]:
    """(seq, sort_ms) of one page and one more row, to tell whether another follows."""
    where, params = where_sql(query, keyset=True)
    order = "DESC" if query.newest_first else "ASC"
    return (f"SELECT seq, sort_ms FROM {table(query.type)} WHERE {where} ORDER BY sort_ms {order}, seq {order} "
            "LIMIT ?", params + [query.limit + 1])


def rows_sql(type_name: str, node_columns: str, count: int) -> str:
    """The node rows of `count` seqs (given as parameters), with their seq: up to POINT_READS as one
    index lookup each (an IN list makes DuckDB read every column of every row: 630 ms at 1,000,000
    runs, against 2 ms a lookup on the loaded machine), more (whole pages of 1,000) as an IN list."""
    name = table(type_name)
    if count > POINT_READS:
        return f"SELECT seq, {node_columns} FROM {name} WHERE seq IN ({', '.join('?' * count)})"
    return " UNION ALL ".join([f"SELECT seq, {node_columns} FROM {name} WHERE seq = ?"] * count)


def count_sql(query: Checked) -> tuple[str, list]:
    where, params = where_sql(query, keyset=False)
    return f"SELECT count(*) FROM {table(query.type)} WHERE {where}", params
