"""Flattened documents in every store (metadata/store/base.py, "flattened documents"): kept current
inside each write, rebuilt by reindex and use_documents, and queried by facets, stats, hits and
manifests. Uses the default dictionary and flattening; runs on each store (see conftest.py)."""
from __future__ import annotations

import dataclasses
import threading

import pytest
import yaml
from elasticsearch import Elasticsearch

from metadata import flatten
from metadata.dictionary import Dictionary
from metadata.errors import Clash
from metadata.filters import parse, without_field
from metadata.flatten import DEFAULT_CONFIG
from metadata.store.base import FacetCounts, LinkRef, StoredNode, Write

NOW, LATER = "2025-01-01T00:00:00.000+00:00", "2025-02-01T00:00:00.000+00:00"
MD5 = "0" * 32
DICTIONARY = Dictionary.load()
FLATTENING = flatten.load(DICTIONARY)
LINKS = {"sample": "cases", "measurement": "samples", "data_file": "measurements"}


def node(type_: str, sid: str, parents=(), **props) -> StoredNode:
    """A node of project p1 with id "id-<sid>", linked to parents (nodes, or (link name, node) pairs)."""
    links = [LinkRef(*p[:1], p[1].id, p[1].type, p[1].submitter_id) if isinstance(p, tuple)
             else LinkRef(LINKS[type_], p.id, p.type, p.submitter_id) for p in parents]
    return StoredNode(f"id-{sid}", type_, "p1", sid, 1, props, links, NOW, NOW, "alice", "alice")


def changed(old: StoredNode, links=None, **props) -> StoredNode:
    """The next version of a node, as the planner makes it: props replaced, links kept unless given."""
    return dataclasses.replace(old, version=old.version + 1, props={**old.props, **props}, updated_at=LATER,
                               updated_by="bob", links=list(old.links if links is None else links))


def graph() -> dict[str, StoredNode]:
    """4 cases (c-4 with no samples), 4 samples, 1 experiment, 2 measurements, 3 files."""
    n = {}
    n["c-1"] = node("case", "c-1", species="human", sex="female", age_years=30)
    n["c-2"] = node("case", "c-2", species="human", sex="male", age_years=50)
    n["c-3"] = node("case", "c-3", species="mouse", age_years=2)
    n["c-4"] = node("case", "c-4", species="rat")
    for sid, organ, prep, case in (("s-1", "liver", "FFPE", "c-1"), ("s-2", "kidney", "fresh frozen", "c-1"),
                                   ("s-3", "liver", "FFPE", "c-2"), ("s-4", "liver", "fresh frozen", "c-3")):
        n[sid] = node("sample", sid, [n[case]], organ=organ, preparation=prep)
    n["e-1"] = node("experiment", "e-1", protocol="MALDI imaging")
    for sid, sample, ionisation in (("m-1", "s-1", "MALDI"), ("m-2", "s-3", "DESI")):
        n[sid] = node("measurement", sid, [n[sample], ("experiments", n["e-1"])], instrument="timsTOF fleX",
                      ionisation=ionisation, polarity="positive")
    for sid, fmt, size, measurement in (("f-1.imzML", "imzML", 100, "m-1"), ("f-1.ibd", "ibd", 900, "m-1"),
                                        ("f-2.imzML", "imzML", 300, "m-2")):
        n[sid] = node("data_file", sid, [n[measurement]], file_name=sid, data_format=fmt, file_size=size,
                      md5sum=MD5, storage_url=f"s3://bucket/{sid}")
    return n


def create(store, *nodes: StoredNode) -> None:
    store.apply([Write(n, None) for n in nodes], set())


def docs(store, kind: str) -> dict[str, dict]:
    """Every document of a kind, by submitter_id."""
    total, found = store.hits(kind, None, [], 100, 0)
    assert total == len(found)
    return {doc["submitter_id"]: doc for doc in found}


def where(kind: str, filter_json):
    return parse(filter_json, FLATTENING.specs[kind].fields)


@pytest.fixture(autouse=True)
def _drop_document_indices(request, stores):
    """conftest.py deletes a test's graph indices; the document indices go here."""
    yield
    opened = [s for s in stores.opened if s.name == "elasticsearch"]
    if opened:
        names = opened[0].indices
        with Elasticsearch(request.getfixturevalue("es_server").url) as es:
            es.indices.delete(index=",".join(names.documents(k) for k in FLATTENING.specs),
                              ignore_unavailable=True)


@pytest.fixture
def nodes(store) -> dict[str, StoredNode]:
    """The graph, written with documents on: every document comes from the writes themselves."""
    store.use_documents(FLATTENING)
    n = graph()
    create(store, *n.values())
    return n


# -- documents follow every write -------------------------------------------------------

def test_file_documents_copy_their_ancestors(store, nodes):
    files = docs(store, "file")
    assert sorted(files) == ["f-1.ibd", "f-1.imzML", "f-2.imzML"]
    f1 = files["f-1.imzML"]
    assert f1 == {**f1, "id": "id-f-1.imzML", "project_id": "p1", "file_name": "f-1.imzML", "data_format": "imzML",
                  "file_size": 100, "md5sum": MD5, "storage_url": "s3://bucket/f-1.imzML",
                  "measurement_id": "id-m-1", "measurement": "m-1", "instrument": "timsTOF fleX",
                  "ionisation": "MALDI", "polarity": "positive", "sample_id": "id-s-1", "sample": "s-1",
                  "organ": "liver", "preparation": "FFPE", "case_id": "id-c-1", "case": "c-1",
                  "species": "human", "sex": "female", "age_years": 30, "diagnosis": None,
                  "experiment": "e-1", "protocol": "MALDI imaging"}
    assert (files["f-2.imzML"]["case"], files["f-2.imzML"]["ionisation"]) == ("c-2", "DESI")


def test_case_documents_aggregate_their_descendants(store, nodes):
    cases = docs(store, "case")
    c1 = cases["c-1"]
    assert (c1["sample_count"], c1["organs"], c1["preparations"]) == (2, ["kidney", "liver"], ["FFPE", "fresh frozen"])
    assert (c1["measurement_count"], c1["ionisations"], c1["instruments"]) == (1, ["MALDI"], ["timsTOF fleX"])
    assert (c1["file_count"], c1["data_formats"], c1["total_file_size"]) == (2, ["ibd", "imzML"], 1000)
    assert c1["samples"] == [{"organ": "liver", "tissue": None, "preparation": "FFPE", "matrix": None},
                             {"organ": "kidney", "tissue": None, "preparation": "fresh frozen", "matrix": None}]
    c4 = cases["c-4"]
    assert (c4["sample_count"], c4["organs"], c4["samples"], c4["file_count"], c4["total_file_size"]) == (
        0, [], [], 0, None)


def test_updating_an_ancestor_updates_its_descendants_documents(store, nodes):
    store.apply([Write(changed(nodes["c-1"], species="mouse"), 1)], set())
    files = docs(store, "file")
    assert [files[f]["species"] for f in ("f-1.imzML", "f-1.ibd", "f-2.imzML")] == ["mouse", "mouse", "human"]
    assert docs(store, "case")["c-1"]["species"] == "mouse"


def test_reparenting_a_sample_moves_its_aggregations(store, nodes):
    moved = changed(nodes["s-1"], links=[LinkRef("cases", "id-c-4", "case", "c-4")])
    store.apply([Write(moved, 1)], {"id-c-4"})
    cases = docs(store, "case")
    assert (cases["c-1"]["sample_count"], cases["c-1"]["organs"], cases["c-1"]["file_count"],
            cases["c-1"]["total_file_size"], cases["c-1"]["ionisations"]) == (1, ["kidney"], 0, None, [])
    assert (cases["c-4"]["sample_count"], cases["c-4"]["organs"], cases["c-4"]["file_count"],
            cases["c-4"]["total_file_size"], cases["c-4"]["ionisations"]) == (1, ["liver"], 2, 1000, ["MALDI"])
    files = docs(store, "file")
    assert {(files[f]["case"], files[f]["species"]) for f in ("f-1.imzML", "f-1.ibd")} == {("c-4", "rat")}


def test_creating_and_deleting_a_file_updates_its_case(store, nodes):
    create(store, node("data_file", "f-3.tsv", [nodes["m-2"]], file_name="f-3.tsv", data_format="tsv",
                       file_size=5, md5sum=MD5, storage_url="s3://bucket/f-3.tsv"))
    c2 = docs(store, "case")["c-2"]
    assert (c2["file_count"], c2["data_formats"]) == (2, ["imzML", "tsv"])
    store.delete(["id-f-1.ibd"])
    c1 = docs(store, "case")["c-1"]
    assert (c1["file_count"], c1["data_formats"], c1["total_file_size"]) == (1, ["imzML"], 100)
    assert sorted(docs(store, "file")) == ["f-1.imzML", "f-2.imzML", "f-3.tsv"]


def test_deleting_a_subtree_removes_its_documents(store, nodes):
    store.delete(["id-s-4", "id-c-3"])
    assert sorted(docs(store, "case")) == ["c-1", "c-2", "c-4"]
    store.delete(["id-f-2.imzML", "id-m-2", "id-s-3"])
    c2 = docs(store, "case")["c-2"]
    assert (c2["sample_count"], c2["measurement_count"], c2["file_count"]) == (0, 0, 0)


def test_a_refused_batch_changes_no_document(store, nodes):
    before = {kind: docs(store, kind) for kind in FLATTENING.specs}
    fresh = node("data_file", "f-9.csv", [nodes["m-1"]], file_name="f-9.csv", data_format="csv", file_size=1,
                 md5sum=MD5, storage_url="s3://bucket/f-9.csv")
    with pytest.raises(Clash):
        store.apply([Write(fresh, None), Write(changed(nodes["c-1"], species="rat"), 7)], {"id-m-1"})
    with pytest.raises(Clash):
        store.delete(["id-s-1"])  # has a measurement
    assert {kind: docs(store, kind) for kind in FLATTENING.specs} == before


def test_reindex_reproduces_the_same_documents(store, nodes):
    store.apply([Write(changed(nodes["c-2"], diagnosis="healthy"), 1)], set())
    store.delete(["id-f-1.ibd"])
    before = {kind: docs(store, kind) for kind in FLATTENING.specs}
    assert store.reindex() == {"case": 4, "file": 2}
    assert {kind: docs(store, kind) for kind in FLATTENING.specs} == before


def test_use_documents_builds_the_documents_of_an_existing_graph(stores):
    store = stores.open()
    create(store, *graph().values())
    store.use_documents(FLATTENING)
    assert sorted(docs(store, "case")) == ["c-1", "c-2", "c-3", "c-4"] and len(docs(store, "file")) == 3
    before = docs(store, "case")
    store = stores.reopen()
    store.use_documents(FLATTENING)  # same shape: kept as it is
    assert docs(store, "case") == before


def test_use_documents_with_a_changed_flattening_rebuilds(stores, tmp_path):
    store = stores.open()
    store.use_documents(FLATTENING)
    create(store, *graph().values())
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["documents"]["case"]["aggregations"].append(
        {"field": "ionisation_modes", "path": ["samples", "measurements"], "property": "ionisation", "fn": "set"})
    (tmp_path / "flattening.yaml").write_text(yaml.safe_dump(config))
    changed_flattening = flatten.load(DICTIONARY, tmp_path / "flattening.yaml")
    assert changed_flattening.signature() != FLATTENING.signature()
    store = stores.reopen()
    store.use_documents(changed_flattening)
    cases = docs(store, "case")
    assert {sid: doc["ionisation_modes"] for sid, doc in cases.items()} == {
        "c-1": ["MALDI"], "c-2": ["DESI"], "c-3": [], "c-4": []}
    desi = parse({"=": {"ionisation_modes": "DESI"}}, changed_flattening.specs["case"].fields)
    assert store.count("case", desi) == 1


# -- queries ------------------------------------------------------------------------------

def test_facets_exclude_their_own_clauses_and_count_list_elements(store, nodes):
    selected = where("case", {"AND": [{"IN": {"species": ["human"]}}, {"IN": {"organs": ["liver"]}}]})
    fields = ["species", "organs", "sex", "age_years"]
    counts = store.facet_counts("case", [(f, without_field(selected, f)) for f in fields], 10)
    assert counts == {
        "species": FacetCounts([("human", 2), ("mouse", 1)]),  # organs=liver only: c-1, c-2, c-3
        "organs": FacetCounts([("liver", 2), ("kidney", 1)]),  # species=human only; c-1 counts in both
        "sex": FacetCounts([("female", 1), ("male", 1)]),
        "age_years": FacetCounts([("30.0", 1), ("50.0", 1)])}
    assert store.count("case", selected) == 2


def test_facets_count_documents_without_a_value_and_the_rest_as_other(store, nodes):
    counts = store.facet_counts("case", [("sex", None), ("organs", None), ("sample_count", None)], 10)
    assert counts["sex"] == FacetCounts([("__missing__", 2), ("female", 1), ("male", 1)])
    assert counts["organs"] == FacetCounts([("liver", 3), ("__missing__", 1), ("kidney", 1)])
    assert counts["sample_count"] == FacetCounts([("1", 2), ("0", 1), ("2", 1)])
    small = store.facet_counts("case", [("organs", None), ("sex", None)], 1)
    assert small == {"organs": FacetCounts([("liver", 3)], other=2), "sex": FacetCounts([("__missing__", 2)], other=2)}
    files = store.facet_counts("file", [("data_format", where("file", {"=": {"case": "c-1"}}))], 10)
    assert files == {"data_format": FacetCounts([("ibd", 1), ("imzML", 1)])}


@pytest.mark.standin_differs("noida-db has no reverse_nested aggregation (the builders: test_elastic_documents.py)")
def test_facets_on_a_record_field_count_documents_once_per_value(store, nodes):
    """samples.organ: a case counts once per organ among its samples (c-1 has two samples, one liver);
    no sample, or none with a value: __missing__."""
    counts = store.facet_counts("case", [("samples.organ", None), ("samples.preparation", None)], 10)
    assert counts == {"samples.organ": FacetCounts([("liver", 3), ("__missing__", 1), ("kidney", 1)]),
                      "samples.preparation": FacetCounts([("FFPE", 2), ("fresh frozen", 2), ("__missing__", 1)])}
    kidney = where("case", {"nested": {"path": "samples", "IN": {"organ": ["kidney"]}}})
    counts = store.facet_counts("case", [("samples.organ", without_field(kidney, "samples.organ")),
                                         ("samples.preparation", without_field(kidney, "samples.preparation"))], 1)
    assert counts == {"samples.organ": FacetCounts([("liver", 3)], other=2),  # its own selection set aside
                      "samples.preparation": FacetCounts([("FFPE", 1)], other=1)}  # c-1 alone


def test_cells_count_each_combination_of_values_once(store, nodes):
    """Tiered access's cells: documents per combination of single-valued fields, none for no value."""
    cells = store.cell_counts("case", ["sex", "species", "age_years"], None)
    assert cells == {("female", "human", "30.0"): 1, ("male", "human", "50.0"): 1,
                     ("__missing__", "mouse", "2.0"): 1, ("__missing__", "rat", "__missing__"): 1}
    assert store.cell_counts("case", ["species"], where("case", {"IN": {"organs": ["liver"]}})) == {
        ("human",): 2, ("mouse",): 1}
    assert store.cell_counts("case", [], None) == {(): 4}
    assert store.cell_counts("case", [], where("case", {"=": {"species": "dog"}})) == {}


def test_facets_counts_and_stats_follow_every_write(store, nodes):
    def view():
        counts = store.facet_counts("case", [("species", None), ("organs", None)], 10)
        return (counts["species"].buckets, counts["organs"].buckets,
                store.count("case", where("case", {"=": {"species": "human"}})),
                store.numeric_stats("file", "file_size", None, 2, 0).sum)

    assert view() == ([("human", 2), ("mouse", 1), ("rat", 1)], [("liver", 3), ("__missing__", 1), ("kidney", 1)],
                      2, 1300)
    store.apply([Write(changed(nodes["c-1"], species="mouse"), 1)], set())
    create(store, node("data_file", "f-3.tsv", [nodes["m-2"]], file_name="f-3.tsv", data_format="tsv",
                       file_size=5, md5sum=MD5, storage_url="s3://bucket/f-3.tsv"))
    assert view() == ([("mouse", 2), ("human", 1), ("rat", 1)], [("liver", 3), ("__missing__", 1), ("kidney", 1)],
                      1, 1305)
    store.delete(["id-s-4", "id-c-3"])
    after = ([("human", 1), ("mouse", 1), ("rat", 1)], [("liver", 2), ("__missing__", 1), ("kidney", 1)], 1, 1305)
    assert view() == after
    store.reindex()
    assert view() == after
    if store.name == "embedded":  # answered by the columnar copy (metadata/store/columnar.py), not DuckDB
        assert {"case", "file"} <= set(store._columns._snapshots)


@pytest.mark.parametrize("stores", ["embedded"], indirect=True)
def test_facets_read_while_writes_commit_see_whole_snapshots(store, nodes):
    """Readers racing a writer never see a case twice or not at all, and end where DuckDB does."""
    seen, stop = [], threading.Event()

    def read():
        while not stop.is_set():
            counts = store.facet_counts("case", [("species", None)], 10)["species"]
            seen.append(sum(c for _, c in counts.buckets))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    current = nodes["c-1"]
    for species in ["mouse", "rat", "human"] * 4:
        current = changed(current, species=species)
        store.apply([Write(current, current.version - 1)], set())
    stop.set()
    for thread in readers:
        thread.join()
    assert seen and set(seen) == {4}
    columnar = store.facet_counts("case", [("species", None)], 10)
    store._columns = None  # the same question to DuckDB
    assert store.facet_counts("case", [("species", None)], 10) == columnar


def test_filters_reach_lists_records_and_search(store, nodes):
    same_sample = {"nested": {"path": "samples", "AND": [{"=": {"organ": "liver"}},
                                                         {"=": {"preparation": "fresh frozen"}}]}}
    assert store.count("case", where("case", same_sample)) == 1  # c-3; c-1 has each, in different samples
    assert store.count("case", where("case", {"=": {"samples": "__missing__"}})) == 1
    assert store.count("case", where("case", {"!=": {"organs": "liver"}})) == 1
    assert store.count("file", where("file", {"search": {"keyword": "IMZ", "fields": ["file_name"]}})) == 2
    assert store.count("file", None) == 3


def test_numeric_stats_and_histograms(store, nodes):
    sizes = store.numeric_stats("file", "file_size", None, 4, 0)
    assert (sizes.count, sizes.missing, sizes.min, sizes.max, sizes.sum) == (3, 0, 100, 900, 1300)
    assert sizes.mean == pytest.approx(1300 / 3)
    assert sizes.bins == [(100, 300, 1), (300, 500, 1), (500, 700, 0), (700, 900, 1)]  # 300 starts its bin
    ages = store.numeric_stats("case", "age_years", None, 0, 20)
    assert (ages.count, ages.missing, ages.min, ages.max) == (3, 1, 2, 50)
    assert ages.bins == [(0, 20, 1), (20, 40, 1), (40, 60, 1)]
    mouse = store.numeric_stats("case", "age_years", where("case", {"=": {"species": "mouse"}}), 10, 0)
    assert (mouse.count, mouse.min, mouse.max, mouse.bins) == (1, 2, 2, [(2, 3, 1)])
    none = store.numeric_stats("case", "age_years", where("case", {"=": {"species": "rat"}}), 10, 0)
    assert (none.count, none.missing, none.min, none.bins) == (0, 1, None, [])


def test_a_value_on_a_bin_edge_counts_in_the_bin_it_starts(store):
    store.use_documents(FLATTENING)
    create(store, *[node("case", f"c-{age}", species="mouse", age_years=age) for age in (0.0, 0.3, 1.0)])
    ages = store.numeric_stats("case", "age_years", None, 10, 0)
    assert [count for _, _, count in ages.bins] == [1, 0, 0, 1, 0, 0, 0, 0, 0, 1]
    assert ages.bins[3][0] == 0.3


def test_hits_sort_page_and_count(store, nodes):
    total, page = store.hits("case", None, [("age_years", True)], 3, 0)
    assert total == 4 and [d["submitter_id"] for d in page] == ["c-2", "c-1", "c-3"]
    total, page = store.hits("case", None, [("age_years", True)], 3, 3)
    assert total == 4 and [d["submitter_id"] for d in page] == ["c-4"]  # no value: last
    _, page = store.hits("case", None, [("species", False)], 10, 0)
    assert [d["submitter_id"] for d in page] == ["c-1", "c-2", "c-3", "c-4"]  # ties by id
    _, page = store.hits("case", None, [("species", True), ("age_years", False)], 10, 0)
    assert [d["submitter_id"] for d in page] == ["c-4", "c-3", "c-1", "c-2"]
    _, page = store.hits("file", None, [("data_format", False)], 10, 0)  # declared imzML, ibd, ...: sorted as text
    assert [d["file_name"] for d in page] == ["f-1.ibd", "f-1.imzML", "f-2.imzML"]
    _, page = store.hits("file", None, [("data_format", True)], 10, 0)
    assert [d["file_name"] for d in page] == ["f-1.imzML", "f-2.imzML", "f-1.ibd"]
    total, page = store.hits("file", where("file", {"=": {"data_format": "imzML"}}), [("file_size", True)], 1, 1)
    assert total == 2 and [d["file_name"] for d in page] == ["f-1.imzML"]
    assert store.hits("file", None, [], 10, 50) == (3, [])


def _whole_manifest(store, kind: str, where_node, limit: int) -> tuple[set[int], list[dict], int]:
    totals, rows, pages, cursor = set(), [], 0, ""
    while True:
        total, page, cursor = store.manifest(kind, where_node, limit, cursor)
        totals.add(total)
        rows += page
        pages += 1
        if not cursor:
            return totals, rows, pages


def test_manifest_from_files_pages_through_every_row(store, nodes):
    totals, rows, pages = _whole_manifest(store, "file", None, 1)
    assert totals == {3} and pages == 3
    assert [r["id"] for r in rows] == sorted(f"id-{f}" for f in ("f-1.imzML", "f-1.ibd", "f-2.imzML"))
    assert rows[0] == {"id": "id-f-1.ibd", "file_name": "f-1.ibd", "data_format": "ibd", "file_size": 900,
                       "md5sum": MD5, "storage_url": "s3://bucket/f-1.ibd", "project_id": "p1", "case": "c-1",
                       "sample": "s-1", "measurement": "m-1"}
    total, imzml, cursor = store.manifest("file", where("file", {"=": {"data_format": "imzML"}}), 10, "")
    assert (total, len(imzml), cursor) == (2, 2, "")


def test_manifest_from_cases_lists_the_files_of_the_matching_cases(store, nodes):
    totals, rows, pages = _whole_manifest(store, "case", where("case", {"=": {"sex": "female"}}), 1)
    assert totals == {2} and pages == 2 and {r["file_name"] for r in rows} == {"f-1.imzML", "f-1.ibd"}
    totals, rows, pages = _whole_manifest(store, "case", where("case", {"IN": {"species": ["human"]}}), 2)
    assert totals == {3} and pages == 2 and len(rows) == 3
    assert store.manifest("case", where("case", {"=": {"species": "rat"}}), 10, "") == (0, [], "")


def test_manifest_refuses_a_cursor_it_did_not_make(store, nodes):
    with pytest.raises(ValueError, match="not a cursor"):
        store.manifest("file", None, 10, "not-a-cursor!")


# -- Elasticsearch: limits and writes cut short ---------------------------------------------

@pytest.mark.parametrize("stores", ["elasticsearch"], indirect=True)
def test_hits_past_the_result_window_are_refused_with_a_reason(store, nodes):
    with pytest.raises(ValueError, match="max_result_window"):
        store.hits("case", None, [], 50, 9_990)
    assert store.hits("case", None, [], 50, 9_950)[0] == 4


class _Crash(BaseException):
    """The process dying in the middle of a write."""


def _on_document_bulk(store, monkeypatch, error: BaseException) -> None:
    """Send the first bulk request writing documents, then fail as if the connection (or process) died."""
    real, calls = store._bulk, []

    def bulk(ops, refresh=True):
        failed = real(ops, refresh)
        if not calls and any("-doc-" in meta["_index"] for op in ops for meta in op[0].values()):
            calls.append(ops)
            raise error
        return failed
    monkeypatch.setattr(store, "_bulk", bulk)


@pytest.mark.parametrize("stores", ["elasticsearch"], indirect=True)
def test_a_write_failing_after_its_documents_puts_them_back(store, nodes, monkeypatch):
    before = {kind: docs(store, kind) for kind in FLATTENING.specs}
    _on_document_bulk(store, monkeypatch, ConnectionError("connection lost"))
    with pytest.raises(ConnectionError):
        store.apply([Write(changed(nodes["c-1"], species="rat"), 1)], set())
    assert {kind: docs(store, kind) for kind in FLATTENING.specs} == before
    assert store.get("id-c-1") == nodes["c-1"]


@pytest.mark.parametrize("stores", ["elasticsearch"], indirect=True)
def test_a_delete_cut_short_by_a_crash_gets_its_documents_back_at_the_next_start(stores, monkeypatch):
    store = stores.open()
    store.use_documents(FLATTENING)
    create(store, *graph().values())
    before = {kind: docs(store, kind) for kind in FLATTENING.specs}
    _on_document_bulk(store, monkeypatch, _Crash())
    with pytest.raises(_Crash):
        store.delete(["id-f-1.ibd"])
    restarted = stores.open()
    restarted.use_documents(FLATTENING)
    assert {kind: docs(restarted, kind) for kind in FLATTENING.specs} == before


@pytest.mark.parametrize("stores", ["elasticsearch"], indirect=True)
def test_a_rebuild_cut_short_is_done_again_at_the_next_start(stores, monkeypatch):
    store = stores.open()
    create(store, *graph().values())
    monkeypatch.setattr(store, "_bulk_or_fail", lambda ops: (_ for _ in ()).throw(_Crash()))
    with pytest.raises(_Crash):
        store.use_documents(FLATTENING)
    restarted = stores.open()
    restarted.use_documents(FLATTENING)
    assert len(docs(restarted, "case")) == 4 and len(docs(restarted, "file")) == 3


@pytest.mark.parametrize("stores", ["elasticsearch"], indirect=True)
def test_reindex_removes_documents_whose_root_is_gone(store, nodes, es_server):
    with Elasticsearch(es_server.url) as es:
        es.index(index=store.indices.documents("case"), id="id-gone", refresh=True,
                 document={"id": "id-gone", "submitter_id": "gone", "project_id": "p1"})
    assert store.count("case", None) == 5
    assert store.reindex() == {"case": 4, "file": 3}
    assert sorted(docs(store, "case")) == ["c-1", "c-2", "c-3", "c-4"]
