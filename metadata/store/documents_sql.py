"""DuckDB tables and queries for flattened documents: pure builders of SQL and Arrow schemas.

One table per document kind, `doc_<kind>`, with one typed column per field: dictionary enums
become ENUM columns (dictionary-encoded, several times faster to facet than VARCHAR), lists
become LIST columns, lists of records LIST of STRUCT.
"""
from __future__ import annotations

import datetime as dt

import pyarrow as pa

from metadata.filters import Field, quote_ident
from metadata.flatten import DocumentSpec

MISSING = "__missing__"
SCALAR_SQL = {"keyword": "VARCHAR", "text": "VARCHAR", "integer": "BIGINT", "number": "DOUBLE",
              "boolean": "BOOLEAN", "date": "DATE"}
SCALAR_ARROW = {"keyword": pa.string(), "text": pa.string(), "integer": pa.int64(), "number": pa.float64(),
                "boolean": pa.bool_(), "date": pa.string()}


def table(kind: str) -> str:
    return quote_ident(f"doc_{kind}")


def enum_type(kind: str, field: str) -> str:
    return quote_ident(f"enum_{kind}_{field}")


def create_statements(spec: DocumentSpec) -> list[str]:
    """CREATE TYPE for each enum field, then CREATE TABLE for the kind."""
    statements = [f"CREATE TYPE {enum_type(spec.kind, name)} AS ENUM ({', '.join(_literal(v) for v in values)})"
                  for name, values in spec.enums.items()]
    columns = ", ".join(f"{quote_ident(name)} {column_type(spec, field)}" for name, field in spec.fields.items())
    statements.append(f"CREATE TABLE {table(spec.kind)} ({columns}, PRIMARY KEY (id))")
    return statements


def drop_statements(spec: DocumentSpec) -> list[str]:
    return [f"DROP TABLE IF EXISTS {table(spec.kind)}"] + [
        f"DROP TYPE IF EXISTS {enum_type(spec.kind, name)}" for name in spec.enums]


def column_type(spec: DocumentSpec, field: Field) -> str:
    if field.nested:
        members = ", ".join(f"{quote_ident(n)} {SCALAR_SQL[f.kind]}" for n, f in field.nested.items())
        return f"STRUCT({members})[]"
    base = enum_type(spec.kind, field.name) if field.name in spec.enums and not field.multi else SCALAR_SQL[field.kind]
    return f"{base}[]" if field.multi else base


def arrow_schema(spec: DocumentSpec) -> pa.Schema:
    """How documents travel into DuckDB: plain Arrow types, cast to the column types on insert."""
    return pa.schema([(name, _arrow_type(field)) for name, field in spec.fields.items()])


def _arrow_type(field: Field) -> pa.DataType:
    if field.nested:
        return pa.list_(pa.struct([(n, SCALAR_ARROW[f.kind]) for n, f in field.nested.items()]))
    scalar = SCALAR_ARROW[field.kind]
    return pa.list_(scalar) if field.multi else scalar


def insert_sql(spec: DocumentSpec, view: str) -> str:
    casts = ", ".join(f"CAST({quote_ident(n)} AS {column_type(spec, f)})" for n, f in spec.fields.items())
    return f"INSERT INTO {table(spec.kind)} SELECT {casts} FROM {view}"


def facet_sql(spec: DocumentSpec, field: str, where_sql: str) -> str:
    """(value, count) groups of one field (value NULL for no value); lists count once per distinct element,
    and a record field (samples.organ) counts each document once per distinct value among its records."""
    col = quote_ident(field)
    if field not in spec.fields:
        path, _, member = field.partition(".")
        return _list_facet(spec, f"list_transform({quote_ident(path)}, _r -> _r.{quote_ident(member)})", where_sql)
    if spec.fields[field].multi:
        return _list_facet(spec, col, where_sql)
    # group the raw column: casting an ENUM to text first would throw its dictionary encoding away
    return f"SELECT {col} AS v, count(*) AS c FROM {table(spec.kind)} WHERE {where_sql} GROUP BY 1"


def _list_facet(spec: DocumentSpec, values: str, where_sql: str) -> str:
    """(value, count) over a list expression: a document counts once per distinct value, NULL for none."""
    present = f"list_distinct(list_filter({values}, x -> x IS NOT NULL))"
    source = (f"SELECT unnest(CASE WHEN len(coalesce({present}, [])) = 0 THEN [NULL] "
              f"ELSE CAST({present} AS VARCHAR[]) END) AS v FROM {table(spec.kind)} WHERE {where_sql}")
    return f"SELECT v, count(*) AS c FROM ({source}) GROUP BY 1"


def cells_sql(spec: DocumentSpec, fields: list[str], where_sql: str) -> str:
    """(value, ..., count) per combination of the fields' values (NULL for no value)."""
    return (f"SELECT {', '.join(quote_ident(f) for f in fields)}, count(*) FROM {table(spec.kind)} "
            f"WHERE {where_sql} GROUP BY ALL")


def stats_sql(spec: DocumentSpec, field: str, where_sql: str) -> str:
    col = _finite(spec, field)
    return (f"SELECT count({col}), count(*) - count({col}), min({col}), max({col}), avg({col}), sum({col}) "
            f"FROM {table(spec.kind)} WHERE {where_sql}")


def _finite(spec: DocumentSpec, field: str) -> str:
    """A numeric column with NaN and ±Infinity read as no value: the service refuses them, but a
    store written before it did may hold one, and one would make every statistic NaN."""
    col = quote_ident(field)
    return f"(CASE WHEN isfinite({col}) THEN {col} END)" if spec.fields[field].kind == "number" else col


def histogram_sql(spec: DocumentSpec, field: str, where_sql: str) -> str:
    """Counts per bin index. Params: low, width, edges, edges, last index, then the where's.

    The arithmetic guess floor((v - low) / width) can land one bin off at an edge (0.3 / 0.1 is
    2.999...), so it is corrected against the edges themselves: bin i holds edges[i] <= v < edges[i+1],
    the last bin also its upper edge."""
    col = _finite(spec, field)
    guess = f"CAST(floor(({col} - ?) / ?) AS BIGINT)"
    return (f"SELECT least(greatest(g - CASE WHEN v < list_extract(?::DOUBLE[], g + 1) THEN 1 ELSE 0 END "
            f"+ CASE WHEN v >= list_extract(?::DOUBLE[], g + 2) THEN 1 ELSE 0 END, 0), ?) AS b, count(*) "
            f"FROM (SELECT {col} AS v, {guess} AS g FROM {table(spec.kind)} WHERE {where_sql} AND {col} IS NOT NULL) "
            f"GROUP BY 1")


def hits_sql(spec: DocumentSpec, where_sql: str, sort: list[tuple[str, bool]]) -> str:
    order = [f"{sort_key(spec, f)} {'DESC' if d else 'ASC'} NULLS LAST" for f, d in sort] + ["id ASC"]
    return f"SELECT * FROM {table(spec.kind)} WHERE {where_sql} ORDER BY {', '.join(order)} LIMIT ? OFFSET ?"


def sort_key(spec: DocumentSpec, field: str) -> str:
    """What a sort on a field orders by: an ENUM column as text, since an ENUM sorts in declaration
    order and a keyword sorts alphabetically (by code point, as Elasticsearch sorts it)."""
    col = quote_ident(field)
    return f"CAST({col} AS VARCHAR)" if field in spec.enums and not spec.fields[field].multi else col


def manifest_sql(manifest_spec: DocumentSpec, fields: tuple[str, ...], selection: str) -> str:
    """Manifest rows after a cursor id, in id order; `selection` restricts the manifest documents."""
    columns = ", ".join(quote_ident(f) for f in fields)
    return (f"SELECT {columns} FROM {table(manifest_spec.kind)} WHERE {selection} AND id > ? "
            f"ORDER BY id LIMIT ?")


def bucket(value) -> str:
    """A facet value as the text the service sends (numbers as Python prints them, dates ISO)."""
    return _plain(value) if isinstance(value, (dt.date, dt.datetime)) else str(value)


def document(columns: list[str], row: tuple) -> dict:
    """A result row as a JSON-ready document (dates as ISO text)."""
    return {name: _plain(value) for name, value in zip(columns, row)}


def _plain(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _literal(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"
