"""The store contract (metadata/store/base.py), checked on every store through the Store API alone."""
from __future__ import annotations

import dataclasses

import pytest

from metadata.errors import Clash
from metadata.store.base import LinkRef, StoredNode, Write

NOW, LATER = "2025-01-01T00:00:00.000+00:00", "2025-02-01T00:00:00.000+00:00"


def node(sid: str, project: str = "p1", type_: str = "case", links=(), **props) -> StoredNode:
    return StoredNode(id=f"id-{project}-{sid}", type=type_, project_id=project, submitter_id=sid, version=1,
                      props=props, links=[LinkRef(name, t.id, t.type, t.submitter_id) for name, t in links],
                      created_at=NOW, updated_at=NOW, created_by="alice", updated_by="alice")


def create(store, *nodes: StoredNode, parents: set[str] = frozenset()) -> None:
    store.apply([Write(n, None) for n in nodes], set(parents))


def changed(old: StoredNode, **props) -> StoredNode:
    """The next version of a node, as the planner makes it."""
    return dataclasses.replace(old, version=old.version + 1, props=props, updated_at=LATER, updated_by="bob",
                               links=list(old.links))


def sids(page) -> list[tuple[str, str]]:
    return [(n.project_id, n.submitter_id) for n in page.nodes]


@pytest.fixture
def family(store):
    """A project, a case in it, and a sample of the case, stored."""
    project = node("p1", type_="project")
    case = node("case-1", links=[("projects", project)], age=41, tags=["a", "b"], nested={"x.y": [1, {"z": None}]})
    sample = node("sample-1", type_="sample", links=[("cases", case)])
    create(store, project, case, sample)
    return project, case, sample


# -- reads ------------------------------------------------------------------------------

def test_get_many_returns_stored_nodes_whole_and_omits_unknown_ids(store, family):
    project, case, sample = family
    got = store.get_many([case.id, sample.id, "id-nope"])
    assert got == {case.id: case, sample.id: sample}
    assert store.get(project.id) == project
    assert store.get("id-nope") is None
    assert store.get_many([]) == {}


def test_find_looks_up_submitter_ids_within_one_project(store):
    create(store, node("s1", "p1"), node("s2", "p1"), node("s1", "p2"))
    found = store.find("p1", ["s1", "s2", "missing"])
    assert {sid: n.id for sid, n in found.items()} == {"s1": "id-p1-s1", "s2": "id-p1-s2"}
    assert store.find("p2", ["s1", "s2"])["s1"].id == "id-p2-s1" and "s2" not in store.find("p2", ["s2"])
    assert store.find("p1", []) == {}


def test_nodes_by_id_prefix_in_id_order_within_types_and_projects(store):
    create(store, node("a2", "p1"), node("a1", "p1"), node("a1", "p2"), node("b1", "p1"), node("a3", "p1", "sample"))
    ids = lambda nodes: [n.id for n in nodes]  # noqa: E731
    assert ids(store.with_id_prefix("id-p1-a", ["case"], None, 10)) == ["id-p1-a1", "id-p1-a2"]
    assert ids(store.with_id_prefix("id-p", ["case", "sample"], ["p1"], 3)) == ["id-p1-a1", "id-p1-a2", "id-p1-a3"]
    assert ids(store.with_id_prefix("id-p", ["case"], ["p2"], 10)) == ["id-p2-a1"]
    assert store.with_id_prefix("id-p", ["case"], [], 10) == [] == store.with_id_prefix("id-p", [], None, 10)
    assert store.with_id_prefix("id-x", ["case"], None, 10) == []


def test_list_orders_by_project_then_submitter_id(store):
    create(store, *[node(s, p) for p, s in [("p2", "b"), ("p1", "c"), ("p2", "a"), ("p1", "a"), ("p1", "B")]],
           node("other", "p1", type_="sample"))
    page = store.list("case", None, 10)
    assert sids(page) == [("p1", "B"), ("p1", "a"), ("p1", "c"), ("p2", "a"), ("p2", "b")]
    assert page.total == 5 and page.next_cursor == ""


def test_list_pages_with_the_cursor_and_an_exact_total(store):
    create(store, *[node(f"s{i:02d}", p) for p in ("p1", "p2", "p3") for i in range(5)])
    seen, cursor, pages = [], "", 0
    while True:
        page = store.list("case", None, 4, cursor)
        assert page.total == 15 and len(page.nodes) <= 4
        seen += sids(page)
        pages += 1
        if not (cursor := page.next_cursor):
            break
    assert pages == 4
    assert seen == sorted((p, f"s{i:02d}") for p in ("p1", "p2", "p3") for i in range(5))


def test_list_last_full_page_has_no_cursor(store):
    create(store, *[node(f"s{i}") for i in range(4)])
    first = store.list("case", None, 2)
    second = store.list("case", None, 2, first.next_cursor)
    assert first.next_cursor and sids(second) == [("p1", "s2"), ("p1", "s3")] and second.next_cursor == ""


def test_list_filters_by_projects(store):
    create(store, node("a", "p1"), node("b", "p2"), node("c", "p3"))
    assert sids(store.list("case", ["p1", "p3", "p-none"], 10)) == [("p1", "a"), ("p3", "c")]
    assert store.list("case", ["p1", "p3"], 10).total == 2
    empty = store.list("case", [], 10)
    assert empty.nodes == [] and empty.total == 0 and empty.next_cursor == ""
    assert store.list("case", None, 10).total == 3
    assert store.list("sample", None, 10).total == 0


def test_list_refuses_a_cursor_it_did_not_make(store):
    with pytest.raises(ValueError, match="not a cursor"):
        store.list("case", None, 10, "not-a-cursor!")


def test_edges_go_both_ways(store, family):
    project, case, sample = family
    into_case = ("sample", sample.id, "cases", case.id, "case")
    out_of_case = ("case", case.id, "projects", project.id, "project")
    assert sorted(map(_edge, store.edges(case.id))) == sorted([into_case, out_of_case])
    assert [_edge(e) for e in store.edges(project.id)] == [out_of_case]
    assert [_edge(e) for e in store.edges(sample.id)] == [into_case]
    assert store.edges("id-nope") == []


def test_children_of_a_page_of_parents_in_one_call(store, family):
    project, case, sample = family
    other = node("case-2", links=[("projects", project)])
    create(store, other, parents={project.id})
    assert store.children([project.id, case.id, "nope"], "case") == {project.id: sorted([case.id, other.id])}
    assert store.children([case.id], "sample") == {case.id: [sample.id]} and store.children([], "case") == {}


def test_edges_are_ordered_by_child_type_then_id(store, family):
    project, case, _ = family
    create(store, node("a-case", links=[("projects", project)]), node("f1", type_="file", links=[("cases", case)]))
    children = [(e.child_type, e.child_id) for e in store.edges(project.id)]
    assert children == sorted(children) == [("case", "id-p1-a-case"), ("case", case.id)]


def _edge(e) -> tuple:
    return (e.child_type, e.child_id, e.link_name, e.parent_id, e.parent_type)


# -- apply ------------------------------------------------------------------------------

def test_apply_updates_on_the_expected_version_and_leaves_others_unchanged(store, family):
    project, case, sample = family
    new_case = changed(case, age=42)
    store.apply([Write(new_case, 1)], {project.id})
    stored = store.get(case.id)
    assert (stored.version, stored.props, stored.updated_by, stored.updated_at) == (2, {"age": 42}, "bob", LATER)
    assert (stored.created_at, stored.created_by, stored.submitter_id) == (NOW, "alice", case.submitter_id)
    assert store.get(sample.id) == sample and store.get(project.id).version == 1
    store.apply([Write(changed(new_case, age=43), 2)], {project.id})
    assert store.get(case.id).version == 3 and store.find("p1", [case.submitter_id])[case.submitter_id].version == 3


def test_apply_replaces_a_nodes_edges(store, family):
    project, case, sample = family
    other = node("case-2", links=[("projects", project)])
    create(store, other, parents={project.id})
    moved = dataclasses.replace(changed(sample), links=[LinkRef("cases", other.id, "case", other.submitter_id)])
    store.apply([Write(moved, 1)], {other.id})
    assert [e.child_id for e in store.edges(case.id) if e.parent_id == case.id] == []
    assert [e.child_id for e in store.edges(other.id) if e.parent_id == other.id] == [sample.id]


def test_stale_version_writes_nothing_of_the_batch(store, family):
    project, case, sample = family
    fresh = node("case-new", links=[("projects", project)])
    batch = [Write(fresh, None), Write(changed(sample, note="x"), 1), Write(changed(case, age=99), 7)]
    with pytest.raises(Clash) as clash:
        store.apply(batch, {project.id})
    assert clash.value.code == "stale" and "case-1" in clash.value.message
    _assert_untouched(store, family, fresh)


def test_update_of_a_node_deleted_meanwhile_is_stale(store):
    create(store, node("x"))
    gone = store.get("id-p1-x")
    store.delete([gone.id])
    with pytest.raises(Clash) as clash:
        store.apply([Write(changed(gone, a=1), 1)], set())
    assert clash.value.code == "stale" and store.get(gone.id) is None


def test_create_of_a_taken_submitter_id_clashes_and_writes_nothing(store, family):
    project, case, sample = family
    fresh = node("case-new", links=[("projects", project)])
    twin = dataclasses.replace(node("case-1"), id="id-another")
    with pytest.raises(Clash) as clash:
        store.apply([Write(fresh, None), Write(twin, None)], {project.id})
    assert clash.value.code == "stale" and "case-1" in clash.value.message
    _assert_untouched(store, family, fresh)
    assert store.get("id-another") is None
    create(store, node("case-1", "p2"))  # the same submitter_id is free in another project
    assert store.find("p2", ["case-1"])["case-1"].id == "id-p2-case-1"


def test_taken_submitter_id_in_a_batch_spanning_projects_clashes(store):
    create(store, node("x", "p2"))
    with pytest.raises(Clash) as clash:
        store.apply([Write(node("y", "p1"), None), Write(dataclasses.replace(node("x", "p2"), id="id-other"), None)],
                    set())
    assert clash.value.code == "stale"
    assert store.get_many(["id-p1-y", "id-other"]) == {} and store.find("p2", ["x"])["x"].id == "id-p2-x"


def test_two_creates_of_one_submitter_id_in_a_batch_clash(store):
    with pytest.raises(Clash) as clash:
        create(store, node("x"), dataclasses.replace(node("x"), id="id-other"))
    assert clash.value.code == "stale"
    assert store.get_many(["id-p1-x", "id-other"]) == {} and store.find("p1", ["x"]) == {}


def test_a_parent_deleted_meanwhile_clashes_and_writes_nothing(store, family):
    project, case, sample = family
    fresh = node("case-new", links=[("projects", project)])
    with pytest.raises(Clash) as clash:
        store.apply([Write(fresh, None), Write(changed(case, age=1), 1)], {project.id, "id-gone"})
    assert clash.value.code == "parent_gone" and "id-gone" in clash.value.message
    _assert_untouched(store, family, fresh)


def test_a_refused_batch_leaves_the_keys_free(store, family):
    project, case, _ = family
    fresh = node("case-new", links=[("projects", project)])
    with pytest.raises(Clash):
        store.apply([Write(fresh, None), Write(changed(case), 9)], {project.id})
    create(store, fresh, parents={project.id})
    assert store.find("p1", ["case-new"])["case-new"] == fresh


def _assert_untouched(store, family, fresh: StoredNode) -> None:
    """Nothing of a refused batch is visible, through any read."""
    assert store.get(fresh.id) is None and store.find("p1", [fresh.submitter_id]) == {}
    assert store.get_many([n.id for n in family]) == {n.id: n for n in family}
    assert sids(store.list("case", None, 10)) == [("p1", "case-1")]
    assert store.counts() == {"project": 1, "case": 1, "sample": 1}
    assert fresh.id not in {e.child_id for e in store.edges(family[0].id)}


# -- delete -----------------------------------------------------------------------------

def test_delete_refuses_while_children_link_and_names_them(store, family):
    project, case, sample = family
    with pytest.raises(Clash) as clash:
        store.delete([project.id])
    assert clash.value.code == "has_children"
    assert f"case {case.id}" in clash.value.message and "1 child node(s)" in clash.value.message
    with pytest.raises(Clash) as clash:
        store.delete([project.id, case.id])
    assert f"sample {sample.id}" in clash.value.message and case.id not in clash.value.message
    assert store.get_many([n.id for n in family]) == {n.id: n for n in family}


def test_delete_of_parents_with_their_children_removes_all(store, family):
    project, case, sample = family
    store.delete([case.id, sample.id])
    assert store.get_many([case.id, sample.id]) == {} and store.edges(project.id) == []
    assert store.find("p1", ["case-1", "sample-1"]) == {} and store.list("case", None, 10).total == 0
    assert store.counts() == {"project": 1}
    create(store, node("case-1"))  # its submitter_id is free again
    assert store.find("p1", ["case-1"])["case-1"].version == 1


def test_counts_per_type(store, family):
    create(store, node("case-2"), node("s-2", type_="sample"), node("s-3", "p2", type_="sample"))
    assert store.counts() == {"project": 1, "case": 2, "sample": 3}


# -- restart ----------------------------------------------------------------------------

def test_a_reopened_store_sees_everything(stores):
    store = stores.open()
    project = node("p1", type_="project")
    case = node("case-1", links=[("projects", project)], age=3)
    create(store, project, case)
    store.apply([Write(changed(case, age=4), 1)], {project.id})
    create(store, node("tmp"))
    store.delete(["id-p1-tmp"])
    store = stores.reopen()
    assert store.get(case.id).props == {"age": 4} and store.get("id-p1-tmp") is None
    assert store.find("p1", ["case-1"])["case-1"].version == 2
    assert sids(store.list("case", ["p1"], 10)) == [("p1", "case-1")]
    assert [e.child_id for e in store.edges(project.id)] == [case.id]
    assert store.counts() == {"project": 1, "case": 1}
    with pytest.raises(Clash):
        create(store, dataclasses.replace(node("case-1"), id="id-other"))


# -- Elasticsearch: writes cut short ----------------------------------------------------

class _Crash(BaseException):
    """The process dying in the middle of a write."""


def _on_node_bulk(store, monkeypatch, before=lambda: None, crash=False):
    """Run `before` ahead of the first bulk request writing node documents; crash after it if asked."""
    real, calls = store._bulk, []

    def bulk(ops, refresh=True):
        first = not calls and any(meta["_index"].endswith("-nodes") for op in ops for meta in op[0].values())
        if first:
            calls.append(before())
        failed = real(ops, refresh)
        if first and crash:
            raise _Crash()
        return failed
    monkeypatch.setattr(store, "_bulk", bulk)


@pytest.mark.parametrize("stores", ["elasticsearch"], indirect=True)
def test_an_apply_cut_short_by_a_crash_is_rolled_back_at_the_next_start(stores, monkeypatch):
    store = stores.open()
    project, case = node("p1", type_="project"), node("case-1", age=1)
    create(store, project, case)
    fresh = node("case-new", links=[("projects", project)])
    _on_node_bulk(store, monkeypatch, crash=True)
    with pytest.raises(_Crash):
        store.apply([Write(fresh, None), Write(changed(case, age=2), 1)], {project.id})
    assert store.get(fresh.id) is not None  # visible until the next start: no isolation
    restarted = stores.open()
    assert restarted.get(fresh.id) is None and restarted.get(case.id) == case
    assert restarted.counts() == {"project": 1, "case": 1} and restarted.edges(project.id) == []
    create(restarted, fresh, parents={project.id})  # its key was freed
    assert restarted.find("p1", ["case-new"])["case-new"] == fresh


@pytest.mark.parametrize("stores", ["elasticsearch"], indirect=True)
def test_a_delete_cut_short_by_a_crash_is_rolled_back_at_the_next_start(stores, monkeypatch):
    store = stores.open()
    project = node("p1", type_="project")
    case = node("case-1", links=[("projects", project)])
    create(store, project, case)
    _on_node_bulk(store, monkeypatch, crash=True)
    with pytest.raises(_Crash):
        store.delete([case.id])
    restarted = stores.open()
    assert restarted.get(case.id) == case and restarted.find("p1", ["case-1"])["case-1"] == case
    assert [e.child_id for e in restarted.edges(project.id)] == [case.id]
    with pytest.raises(Clash):
        create(restarted, dataclasses.replace(case, id="id-other"))


@pytest.mark.parametrize("stores", ["elasticsearch"], indirect=True)
def test_another_writers_change_mid_apply_clashes_and_survives_the_rollback(stores, monkeypatch):
    store, other = stores.open(), stores.open()
    project, case = node("p1", type_="project"), node("case-1", age=1)
    create(store, project, case)
    theirs = changed(case, age=100)
    _on_node_bulk(store, monkeypatch, before=lambda: other.apply([Write(theirs, 1)], set()))
    fresh = node("case-new", links=[("projects", project)])
    with pytest.raises(Clash) as clash:
        store.apply([Write(fresh, None), Write(changed(case, age=2), 1)], {project.id})
    assert clash.value.code == "stale"
    assert store.get(fresh.id) is None and store.find("p1", ["case-new"]) == {}
    assert store.get(case.id).props == {"age": 100}


@pytest.mark.parametrize("stores", ["elasticsearch"], indirect=True)
def test_a_rollback_that_fails_is_retried_before_the_next_write(stores, monkeypatch):
    store = stores.open()
    fresh = node("case-new")
    real, calls = store._bulk, []

    def bulk(ops, refresh=True):  # the node write and the first rollback lose the connection
        calls.append(ops)
        if len(calls) in (2, 3):
            raise ConnectionError("connection lost")
        return real(ops, refresh)
    monkeypatch.setattr(store, "_bulk", bulk)
    with pytest.raises(ConnectionError):
        create(store, fresh)
    assert store.get(fresh.id) is None and store.find("p1", ["case-new"]) == {}
    create(store, fresh)  # would clash on the key claimed above, had the rollback not been retried
    assert store.find("p1", ["case-new"])["case-new"] == fresh


def test_a_create_with_an_id_in_use_clashes_and_writes_nothing(store):
    create(store, node("x"))
    with pytest.raises(Clash) as clash:
        store.apply([Write(node("y", "p1"), None), Write(dataclasses.replace(node("z"), id="id-p1-x"), None)], set())
    assert clash.value.code == "stale" and store.find("p1", ["y", "z"]) == {}
