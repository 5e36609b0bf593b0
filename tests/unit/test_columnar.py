"""The columnar facet path (metadata/store/columnar.py) against DuckDB on the same table: 400 random
filters from test_filters' generator, each facet with its own-facet exclusion, counts and numeric
stats; then again after rows are rewritten, deleted and added (the write path's notifications)."""
from __future__ import annotations

import json
import random
from datetime import date
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest

from metadata.filters import Field, parse, to_sql, without_field
from metadata.store import documents_sql as D
from metadata.store.base import histogram_edges
from metadata.store.columnar import ColumnCache, Delta, Unsupported, _lookup
from metadata.store.embedded import _histogram
from tests.unit.test_filters import FIELDS, GUPPY_ALIASES, POOLS, random_clause
from tests.unit.test_filters import db as filters_db  # noqa: F401 (a fixture)

SPEC = SimpleNamespace(kind="t", fields=FIELDS, enums={})
FACETS = ["organ", "alive", "code", "tags", "sites", "age_years"]
ORGANS = ["liver", "kidney", "brain", "heart"]


def random_row(rng: random.Random, i: int) -> tuple:
    def maybe(value):
        return None if rng.random() < 0.15 else value

    def some(pool):
        return maybe([rng.choice(pool + [None]) for _ in range(rng.randint(0, 3))])

    return (str(i), maybe(rng.choice(ORGANS)), maybe(rng.choice(POOLS["age_years"])),
            maybe(rng.choice(POOLS["weight"])), maybe(rng.choice([True, False])),
            maybe(date.fromisoformat(rng.choice(POOLS["visit"]))), maybe(rng.choice(["hippo x", "cortex"])),
            maybe(rng.choice(POOLS["code"] + ["A_B", "a\\b"])), some(POOLS["tags"]), some(POOLS["scores"]),
            some(POOLS["sites"]), None)


@pytest.fixture
def db(filters_db):
    """test_filters' rows in the column types the embedded store makes, and 300 random rows more."""
    con = filters_db.cursor()
    con.execute("""CREATE OR REPLACE TABLE doc_t AS SELECT CAST(id AS VARCHAR) AS id, organ,
        CAST(age_years AS BIGINT) AS age_years, weight, alive, visit, tissue, code, tags,
        CAST(scores AS BIGINT[]) AS scores, CAST(sites AS VARCHAR[]) AS sites, samples FROM docs""")
    rng = random.Random(7)
    con.executemany(f"INSERT INTO doc_t VALUES ({', '.join('?' * 12)})", [random_row(rng, i) for i in range(100, 400)])
    yield con
    con.close()


def sql_facet(db, field, where) -> list:
    where_sql, params = to_sql(where)
    return sorted((D.MISSING if v is None else D.bucket(v), c)
                  for v, c in db.execute(D.facet_sql(SPEC, field, where_sql), params).fetchall())


def sql_stats(db, field, where) -> tuple:
    where_sql, params = to_sql(where)
    return db.execute(D.stats_sql(SPEC, field, where_sql), params).fetchone()


def check(db, cache, node) -> int:
    """Compare every answer the columnar path gives with DuckDB's; how many it gave."""
    answered = 0
    requests = [(f, without_field(node, f)) for f in FACETS]
    counted = cache.facets("t", requests)
    for field, where in requests:
        if field in counted:
            answered += 1
            assert sorted(counted[field]) == sql_facet(db, field, where), (node, field)
    try:
        total = cache.count("t", node)
    except Unsupported:
        return answered
    where_sql, params = to_sql(node)
    assert total == db.execute(f"SELECT count(*) FROM doc_t WHERE {where_sql}", params).fetchone()[0], node
    for field in ("age_years", "weight"):
        count, missing, low, high, mean, total, _ = cache.stats("t", field, node)
        expected = sql_stats(db, field, node)
        assert (count, missing, low, high) == expected[:4], (node, field)
        assert (mean, total) == (pytest.approx(expected[4]), pytest.approx(expected[5])), (node, field)
    return answered + 1


def notify(db, cache, roots: set[str]) -> None:
    """What the store's write path hands the cache after a commit (metadata/store/embedded.py, _delta);
    the written rows as the store sends them: plain strings, no ENUM dictionary."""
    roots = sorted(roots)
    table = db.execute("SELECT * REPLACE (CAST(organ AS VARCHAR) AS organ) FROM doc_t WHERE id IN "
                       "(SELECT unnest(?::VARCHAR[])) ORDER BY id", [roots]).to_arrow_table()
    hashes = dict(db.execute("SELECT v, hash(v) FROM (SELECT unnest(?::VARCHAR[]) AS v)", [roots]).fetchall())
    total = db.execute("SELECT count(*) FROM doc_t").fetchone()[0]
    cache.changed("t", Delta(np.array([hashes[r] for r in roots], np.uint64), table,
                             np.array([hashes[i] for i in table.column("id").to_pylist()], np.uint64), total))


def random_nodes(seed: int, n: int):
    rng = random.Random(seed)
    return [parse(random_clause(rng, FIELDS), FIELDS) for _ in range(n)]


def test_the_columnar_path_agrees_with_duckdb_on_random_filters(db):
    cache = ColumnCache(lambda: db)
    cache.reset({"t": SPEC})
    answered = sum(check(db, cache, node) for node in [None] + random_nodes(20240131, 400))
    assert answered > 1000  # most filters and facets take the columnar path, not the fallback


def test_filters_in_guppys_words_count_exactly_on_both_paths(db):
    """Guppy's operator names and a search field given as a string: the columnar copy and DuckDB
    agree on every facet, count and statistic, and with the filter written in this language's names."""
    cache = ColumnCache(lambda: db)
    cache.reset({"t": SPEC})
    for alias, operator_, field, value in GUPPY_ALIASES:
        guppy = parse({"AND": [{alias: {field: value}}, {"in": {"code": POOLS["code"]}}]}, FIELDS)
        assert check(db, cache, guppy) > 0
        ours = parse({"AND": [{operator_: {field: value}}, {"IN": {"code": POOLS["code"]}}]}, FIELDS)
        assert cache.count("t", guppy) == cache.count("t", ours)
    search = parse({"search": {"keyword": "hippo", "fields": "tissue"}}, FIELDS)
    where_sql, params = to_sql(search)
    assert db.execute(f"SELECT count(*) FROM doc_t WHERE {where_sql}", params).fetchone()[0] > 0
    check(db, cache, search)


def test_a_record_field_facet_is_left_to_duckdb_which_counts_documents_once_per_value(db):
    cache = ColumnCache(lambda: db)
    cache.reset({"t": SPEC})
    assert cache.facets("t", [("samples.organ", None)]) == {}
    expected = {}
    for (records,) in db.execute("SELECT samples FROM doc_t").fetchall():
        values = {r["organ"] for r in records or [] if r and r["organ"] is not None} or {D.MISSING}
        for value in values:
            expected[value] = expected.get(value, 0) + 1
    assert dict(sql_facet(db, "samples.organ", None)) == expected
    assert expected["liver"] == 4 and expected[D.MISSING] > 300  # rows 1, 4, 6, 9; every random row


def test_facets_counted_on_several_threads_agree_with_duckdb(db, monkeypatch):
    from metadata.store import columnar
    monkeypatch.setattr(columnar, "PARALLEL_ROWS", 0)  # as for a large table
    cache = ColumnCache(lambda: db)
    cache.reset({"t": SPEC})
    assert sum(check(db, cache, node) for node in random_nodes(4242, 100)) > 200


def test_the_columnar_path_follows_rewritten_deleted_and_added_rows(db):
    cache = ColumnCache(lambda: db)
    cache.reset({"t": SPEC})
    nodes = random_nodes(99, 60)
    for node in nodes[:20]:
        check(db, cache, node)
    rng = random.Random(5)
    for step in range(6):
        ids = [str(i) for i in rng.sample(range(100, 400), 8)] + [str(step + 1)]
        db.execute("DELETE FROM doc_t WHERE id IN (SELECT unnest(?::VARCHAR[]))", [ids])
        rows = [(i,) + random_row(rng, 0)[1:] for i in ids[:5]] + [random_row(rng, 1000 + step * 10 + k)
                                                                    for k in range(3)]
        db.executemany(f"INSERT INTO doc_t VALUES ({', '.join('?' * 12)})", rows)
        notify(db, cache, set(ids) | {r[0] for r in rows})
        for node in nodes[step * 6:(step + 1) * 6] + [None]:
            check(db, cache, node)
    for round_ in range(3):  # several writes before the next read, touching one row each time
        ids = [str(i) for i in rng.sample(range(100, 400), 5)] + ["1"]
        db.execute("UPDATE doc_t SET code = ? WHERE id IN (SELECT unnest(?::VARCHAR[]))", [f"r{round_}", ids])
        notify(db, cache, set(ids))
    for node in nodes[36:] + [None]:
        check(db, cache, node)
    assert cache._snapshots["t"].dead > 0  # kept current by deltas, not rebuilt


def test_a_saved_copy_is_taken_up_as_it_was_and_follows_later_writes(db, tmp_path):
    cache = ColumnCache(lambda: db)
    cache.reset({"t": SPEC})
    nodes = random_nodes(31, 40)
    check(db, cache, nodes[0])
    db.execute("DELETE FROM doc_t WHERE id IN ('101', '102')")  # saved with dead rows and a queued write
    notify(db, cache, {"101", "102"})
    assert cache.save(tmp_path / "copy", "sig") == ["t"]
    mark = json.loads((tmp_path / "copy" / "current.json").read_text())
    assert ColumnCache(lambda: db).restore(mark, tmp_path / "copy", "other flattening") == []
    restored = ColumnCache(lambda: db)
    restored.reset({"t": SPEC})
    assert restored.restore(mark, tmp_path / "copy", "sig") == ["t"]
    assert isinstance(restored._snapshots["t"].idhash, np.memmap)  # mapped, not read from DuckDB
    for node in nodes[:20]:
        check(db, restored, node)
    db.execute("UPDATE doc_t SET organ = 'liver' WHERE id IN ('103', '104')")
    notify(db, restored, {"103", "104"})
    for node in nodes[20:]:
        check(db, restored, node)


def test_a_requests_facets_and_total_share_their_masks(db, monkeypatch):
    from metadata.store import columnar
    cache = ColumnCache(lambda: db)
    cache.reset({"t": SPEC})
    node = parse({"AND": [{"IN": {"organ": ["liver", "brain"]}}, {">=": {"age_years": 30}}]}, FIELDS)
    evaluated, original = [], columnar._Masks._mask
    monkeypatch.setattr(columnar._Masks, "_mask", lambda self, n: evaluated.append(n) or original(self, n))
    with cache.sharing():
        cache.facets("t", [(f, without_field(node, f)) for f in FACETS])
        before = len(evaluated)
        total = cache.count("t", node)
    assert len(evaluated) == before and node in evaluated  # the total's filter was the facets'
    assert cache.count("t", node) == total and len(evaluated) > before  # outside: evaluated afresh
    check(db, cache, node)


def test_a_new_value_of_a_varchar_column_after_a_write_is_counted(db):
    cache = ColumnCache(lambda: db)
    cache.reset({"t": SPEC})
    assert dict(cache.facets("t", [("code", None)])["code"]).get("brand-new") is None
    db.execute("UPDATE doc_t SET code = 'brand-new', tags = ['brand-new', 'brand-new'] WHERE id IN ('1', '2')")
    notify(db, cache, {"1", "2"})
    node = parse({"=": {"tags": "brand-new"}}, FIELDS)
    assert dict(cache.facets("t", [("code", node)])["code"]) == {"brand-new": 2}
    assert check(db, cache, node) > 0


def test_lookup_agrees_with_a_gather_for_every_table():
    codes = np.random.default_rng(3).integers(0, 9, 5000).astype(np.uint8)
    for bits in range(2 ** 9):
        lut = np.array([bool(bits >> i & 1) for i in range(9)])
        assert np.array_equal(_lookup(codes, lut), lut.take(codes)), lut


@pytest.mark.parametrize("bins", [1, 3, 20, 40, 150])
def test_both_ways_of_binning_agree_with_duckdb(db, bins):
    values = np.concatenate([np.random.default_rng(bins).lognormal(3, 1, 3000), [0.3, 0.6, 0.9, 3.0]])
    low, high = float(values.min()), float(values.max())
    for edges in (histogram_edges(low, high, bins, 0), histogram_edges(low, high, 0, 0.3)):
        db.execute("CREATE OR REPLACE TABLE doc_h (v DOUBLE)")
        db.execute("INSERT INTO doc_h SELECT unnest(?::DOUBLE[])", [values.tolist()])
        last = len(edges) - 2
        sql = D.histogram_sql(SimpleNamespace(kind="h", fields={"v": Field("v", "number")}), "v", "TRUE")
        expected = dict(db.execute(sql, [edges, edges, last, edges[0], edges[1] - edges[0]]).fetchall())
        assert [c for _, _, c in _histogram(values, edges)] == [expected.get(i, 0) for i in range(last + 1)]


def test_the_store_saves_its_copy_at_close_and_takes_it_up_at_start_until_a_write(tmp_path):
    from metadata import flatten
    from metadata.dictionary import Dictionary
    from metadata.store.base import StoredNode, Write
    from metadata.store.embedded import EmbeddedStore

    flattening, path = flatten.load(Dictionary.load()), tmp_path / "metadata.duckdb"
    saved = tmp_path / "metadata.duckdb.columnar" / "current.json"
    store = EmbeddedStore(path)
    store.use_documents(flattening)
    rows = [{"id": f"f{i}", "project_id": "p", "submitter_id": f"f{i}", "species": ["human", "mouse"][i % 2]}
            for i in range(10)]
    store.load_documents("file", pa.Table.from_pylist(rows, D.arrow_schema(flattening.specs["file"])))
    counts = store.facet_counts("file", [("species", None)], 10)
    store.close()
    assert saved.exists()
    again = EmbeddedStore(path)
    again.use_documents(flattening)
    assert "file" in again._columns._snapshots  # taken up at start, before any query
    assert again.facet_counts("file", [("species", None)], 10) == counts
    node = StoredNode("c1", "case", "p", "c1", 1, {}, [], "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "t", "t")
    again.apply([Write(node, None)], set())
    assert not saved.exists()  # a crash from here on must not leave a copy that looks current
    again._db.close()  # as a crash would: no save
    third = EmbeddedStore(path)
    third.use_documents(flattening)
    assert third._columns._snapshots == {}
    assert third.facet_counts("file", [("species", None)], 10) == counts
    third.close()
