"""Tiered access through the service: facet counts from projects the caller cannot read appear
only where they reach the admin's limit, and never as rows, manifest entries or histograms.
Runs on each store (see tests/contract/conftest.py)."""
import pytest

from metadata.idl import metadata_thrift as T
from metadata.tiering import TierSetting, merge_buckets, tiered
from metadata.store.base import FacetCounts
from tests.conftest import PROGRAM
from tests.contract.test_service_exploration import graph
from tests.stored import folder_url

OPEN = "open-proj"


@pytest.fixture
def commons(admin, server, project):
    """test-proj (hidden from rita): 2 human cases, 1 mouse case, files; open-proj: 1 mouse case."""
    admin.submit(project, graph(folder_url(server.settings, project)))
    admin.submit(OPEN, [{"type": "project", "submitter_id": OPEN, "programs": {"submitter_id": PROGRAM}}])
    admin.submit(OPEN, [{"type": "case", "submitter_id": "o-1", "species": "mouse", "age_years": 70}])
    return admin


@pytest.fixture
def rita(client_for):
    return client_for("rita", grants={OPEN: "read"})


def species(result):
    facet = next(f for f in result.facets if f.field == "species")
    return {b.value: (b.count, b.withheld_below) for b in facet.buckets}


def test_off_by_default_hides_unreadable_projects_entirely(commons, rita):
    result = rita.facets("case", ["species"])
    assert rita.tier_access_limit() == 0
    assert (result.total, result.readable_total, result.tier_access_limit) == (1, 1, 0)
    assert species(result) == {"mouse": (1, 0)}


def test_counts_reaching_the_limit_include_unreadable_projects(commons, rita):
    assert commons.set_tier_access_limit(2) == 2
    result = rita.facets("case", ["species"])
    assert (result.total, result.readable_total, result.tier_access_limit) == (4, 1, 2)
    # 2 human cases in test-proj reach the limit; its 1 mouse case does not, so it is withheld
    assert species(result) == {"human": (2, 0), "mouse": (1, 2)}


def test_counts_under_the_limit_are_shown_as_fewer_than(commons, rita):
    commons.set_tier_access_limit(5)
    result = rita.facets("case", ["species"])
    assert (result.total, result.total_withheld_below) == (1, 5)
    assert species(result) == {"human": (0, 5), "mouse": (1, 5)}


def test_own_facet_exclusion_applies_to_both_sides(commons, rita):
    commons.set_tier_access_limit(2)
    result = rita.facets("case", ["species"], {"IN": {"species": ["human"]}})
    assert species(result) == {"human": (2, 0), "mouse": (1, 2)}
    assert (result.total, result.readable_total) == (2, 0)


def test_unreadable_documents_never_become_rows_files_or_histograms(commons, rita):
    commons.set_tier_access_limit(1)
    total, rows = rita.hits("case")
    assert (total, [r["submitter_id"] for r in rows]) == (1, ["o-1"])
    assert list(rita.manifest("case")) == [] and list(rita.manifest("file")) == []
    stats = rita.histogram("case", "age_years")
    assert (stats.count, stats.min, stats.max) == (1, 70.0, 70.0)
    with pytest.raises(T.Forbidden):
        rita.find(commons.find("test-proj", "c-1")["project_id"], "c-1")


def test_admins_see_everything_whatever_the_limit(commons):
    commons.set_tier_access_limit(10)
    result = commons.facets("case", ["species"])
    assert (result.total, result.tier_access_limit) == (4, 0)
    assert species(result) == {"human": (2, 0), "mouse": (2, 0)}


def test_only_admins_set_the_limit_and_bad_limits_are_refused(commons, rita, server):
    with pytest.raises(T.Forbidden, match="admin role"):
        rita.set_tier_access_limit(3)
    with pytest.raises(T.ValidationError, match="limit: -1 is out of range"):
        commons.set_tier_access_limit(-1)
    commons.set_tier_access_limit(7)
    assert TierSetting(server.store).limit == 7  # kept by the store, so it survives a restart
    assert commons.set_tier_access_limit(0) == 0 and rita.tier_access_limit() == 0
    entries = commons.audit(action="set_tier_access_limit").entries
    assert [(e.target, e.outcome) for e in entries] == [("0", "ok"), ("7", "ok"), ("-1", "invalid"), ("3", "forbidden")]


def test_merge_never_reveals_a_share_under_the_limit():
    readable = FacetCounts([("a", 3), ("b", 1)], other=0)
    unreadable = FacetCounts([("a", 1), ("c", 9), ("d", 2)], other=1)
    buckets, other = merge_buckets(readable, unreadable, limit=3, size=3)
    assert buckets == [("c", 9, 0), ("a", 3, 3), ("b", 1, 0)]
    assert other == 0 + 0  # d (2) and the unreadable other (1) are both under the limit
    assert tiered(0, 0, 3) == (0, 0) and tiered(4, 3, 3) == (7, 0) and tiered(4, 2, 3) == (4, 3)
