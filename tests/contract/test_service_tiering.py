"""Tiered access through the service: facet counts from projects the caller cannot read appear
only where they reach the admin's limit, rounded down to the granularity, filtered by
tier-visible fields only, and never as rows, manifest entries or histograms.
Runs on each store (see tests/contract/conftest.py); the differencing attack through a real
server is tests/security/test_tiering.py."""
import pytest

from metadata.idl import metadata_thrift as T
from metadata.tiering import Tier, TierSetting, merge_buckets
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


def exact(admin, limit):
    """Tiered access with no rounding, so the tests below can count single documents."""
    return admin.set_tier_access(limit, granularity=1)


def test_counts_reaching_the_limit_include_unreadable_projects(commons, rita):
    exact(commons, 2)
    result = rita.facets("case", ["species"])
    assert (result.total, result.readable_total, result.tier_access_limit) == (1 + 2, 1, 2)
    # 2 human cases in test-proj reach the limit; its 1 mouse case does not, so it is withheld,
    # from the total too: it is alone in its cell (species, sex, diagnosis: mouse, none, none)
    assert species(result) == {"human": (2, 0), "mouse": (1, 2)}


def test_counts_under_the_limit_are_shown_as_fewer_than(commons, rita):
    exact(commons, 5)
    result = rita.facets("case", ["species"])
    assert (result.total, result.total_withheld_below) == (1, 5)
    # human occurs only in the unreadable project, under the limit: not even its name shows
    assert species(result) == {"mouse": (1, 5)}


def test_unreadable_shares_are_rounded_down_to_the_granularity(commons, rita):
    commons.set_tier_access(2, granularity=2)
    result = rita.facets("case", ["species"])
    # unreadable: 3 cases in all -> 2 shown; 2 human -> 2; 1 mouse -> none
    assert (result.total, result.total_withheld_below, result.tier_granularity) == (1 + 2, 2, 2)
    assert species(result) == {"human": (2, 2), "mouse": (1, 2)}
    commons.set_tier_access(1, granularity=10)  # the default: nothing here reaches 10
    result = rita.facets("case", ["species"])
    assert (result.total, result.total_withheld_below) == (1, 10)
    assert species(result) == {"mouse": (1, 10)}


@pytest.mark.parametrize("query", [{"!=": {"submitter_id": "c-1"}}, {"search": {"keyword": "c-"}},
                                   {">=": {"age_years": 0}}, {"IN": {"project_id": ["test-proj", OPEN]}}])
def test_a_filter_on_a_field_that_is_not_tier_visible_gets_readable_counts_only(commons, rita, query):
    exact(commons, 1)
    result = rita.facets("case", ["species"], query)
    assert result.total == result.readable_total <= 1
    assert "not tier-visible" in result.tier_withheld
    assert all(b.withheld_below == 0 for b in result.facets[0].buckets)
    assert "human" not in species(result)


def test_a_facet_on_a_field_that_is_not_tier_visible_counts_readable_projects_only(commons, rita):
    exact(commons, 1)
    result = rita.facets("case", ["species", "submitter_id", "age_years"])
    facets = {f.field: f for f in result.facets}
    assert {b.value for b in facets["submitter_id"].buckets} == {"o-1"}
    assert [b.count for b in facets["age_years"].buckets] == [1]  # o-1 (70) alone
    assert facets["submitter_id"].tier_withheld and not facets["species"].tier_withheld
    assert result.total == 4 and species(result) == {"human": (2, 0), "mouse": (2, 0)}


def test_admins_choose_the_tier_visible_fields_but_never_identifying_ones(commons, rita):
    default = commons.tier_access()
    assert default.default_fields and "species" in default.visible_fields
    assert "submitter_id" not in default.visible_fields
    chosen = commons.set_tier_access(1, granularity=1, visible_fields=["species", "age_years"])
    assert (chosen.visible_fields, chosen.default_fields) == (["species", "age_years"], False)
    assert rita.facets("case", ["species"], {">=": {"age_years": 0}}).total == 1 + 2  # c-3 has no age
    assert rita.facets("case", ["species"], {"=": {"sex": "female"}}).tier_withheld  # no longer visible
    for name in ("submitter_id", "id", "case", "case_id", "sample", "md5sum", "samples.organ", "organs", "no_such"):
        with pytest.raises(T.ValidationError, match=f"visible_fields: .*{name}"):
            commons.set_tier_access(1, visible_fields=[name])
    assert commons.tier_access().visible_fields == ["species", "age_years"]
    with pytest.raises(T.ValidationError, match="9 are fields of file documents .*; choose at most 8 per kind"):
        commons.set_tier_access(1, visible_fields=["project_id", "data_format", "data_category", "organ", "species",
                                                   "ionisation", "instrument", "diagnosis", "file_size"])
    with pytest.raises(T.ValidationError, match="granularity: 0 is out of range"):
        commons.set_tier_access(1, granularity=0)
    with pytest.raises(T.Forbidden, match="admin role"):
        rita.set_tier_access(1, granularity=1, visible_fields=["submitter_id"])
    assert commons.set_tier_access(0).default_fields and rita.tier_access().limit == 0


def test_unreadable_documents_count_only_in_cells_of_at_least_the_limit(commons, rita, admin):
    """A cell: the documents sharing every tier-visible value. No view over tier-visible fields can
    split one, so a document in a small cell counts nowhere, and one in a large cell never alone."""
    admin.submit("test-proj", [{"type": "case", "submitter_id": f"h-{i}", "species": "human", "sex": "female",
                                "diagnosis": "healthy"} for i in range(3)]
                 + [{"type": "case", "submitter_id": "lone", "species": "human", "sex": "male", "diagnosis": "healthy"}])
    exact(commons, 3)
    result = rita.facets("case", ["species", "sex", "diagnosis"])
    assert result.total == 1 + 3  # the 3 healthy women; c-1, c-2 (2), c-3 and lone (1 each) are in small cells
    facets = {f.field: {b.value: b.count for b in f.buckets} for f in result.facets}
    assert facets["sex"] == {"female": 3, "__missing__": 1} and facets["diagnosis"] == {"healthy": 3, "__missing__": 1}
    assert rita.facets("case", ["species"], {"=": {"sex": "male"}}).total == 0  # lone does not show
    assert rita.facets("case", ["species"], {"!=": {"sex": "male"}}).total == 1 + 3


def test_own_facet_exclusion_applies_to_both_sides(commons, rita):
    exact(commons, 2)
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
    with pytest.raises(T.NotFound):
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


def test_merge_never_reveals_a_share_under_the_floor():
    readable = FacetCounts([("a", 3), ("b", 1)], other=0)
    unreadable = FacetCounts([("a", 1), ("c", 9), ("d", 2), ("e", 25)], other=1)
    buckets, other = merge_buckets(readable, unreadable, Tier(limit=3, granularity=1), size=3)
    assert buckets == [("e", 25, 0), ("c", 9, 0), ("a", 3, 3)]
    assert other == 1  # b; d (2) and the unreadable other (1) are under the limit, so d is not even named
    tier = Tier(limit=3, granularity=10)
    assert merge_buckets(readable, unreadable, tier, size=5)[0] == [("e", 20, 10), ("a", 3, 10), ("b", 1, 10)]
    assert [tier.count(4, u) for u in (0, 1, 9, 10, 19, 20)] == [(4, 10)] * 3 + [(14, 10)] * 2 + [(24, 10)]
