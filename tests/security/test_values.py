"""Values that would break exploration or fill the store, sent to a real metadata service.

One NaN used to pass validation (JSON `NaN`, TSV `nan`), after which `histogram` answered NaN
statistics (with `bin_width`, a dropped connection) and the explorer showed no facets; a 10 MB
property and a 1 MB submitter_id were stored; `Infinity` passed wherever no maximum was set.
Each attack below is refused with the entity (or TSV row) and the field named, stores nothing,
and leaves exploration working. A NaN already in a store (written before these checks) is
read as no value.
"""
import json
import math

import pytest

from metadata.idl import metadata_thrift as T
from metadata.store.base import StoredNode, Write
from tests.conftest import PROJECT
from tests.portal.conftest import app, dash_call, portal, sign_in  # noqa: F401 (fixtures)

CASES = [{"type": "case", "submitter_id": f"c-{i}", "species": "human", "age_years": 30 + i} for i in range(3)]
NON_FINITE_JSON = ["NaN", "Infinity", "-Infinity", "1e999"]


@pytest.fixture
def commons(admin, project):
    admin.submit(project, CASES)
    return admin


def refused(call) -> T.ValidationError:
    with pytest.raises(T.ValidationError) as caught:
        call()
    return caught.value


def still_explorable(client, cases=3):
    """Facets and histograms answer, finite, over the cases that were there before."""
    result = client.facets("case", ["species", "age_years"])
    assert result.total == cases and {b.value for b in result.facets[0].buckets} == {"human"}
    stats = client.histogram("case", "age_years", bin_width=5)
    assert stats.count == cases and all(math.isfinite(v) for v in (stats.min, stats.max, stats.mean, stats.sum))
    assert sum(b.count for b in stats.bins) == cases


def stored(client) -> set[str]:
    return {node["submitter_id"] for node in client.nodes("case", PROJECT)}


@pytest.mark.parametrize("literal", NON_FINITE_JSON)
def test_non_finite_numbers_in_json_are_refused_with_entity_and_field(commons, literal):
    body = ('[{"type": "case", "submitter_id": "ok", "species": "mouse"}, '
            f'{{"type": "case", "submitter_id": "bad", "species": "human", "age_years": {literal}}}]')
    error = refused(lambda: commons.submit(PROJECT, body=body))
    (issue,) = error.issues
    assert (issue.index, issue.field) == (1, "age_years") and "not a number" in issue.message
    assert "entity 1" in error.message and "age_years" in error.message
    assert stored(commons) == {"c-0", "c-1", "c-2"}
    still_explorable(commons)


def test_infinity_is_refused_where_the_dictionary_sets_no_maximum(commons):
    sample = {"type": "sample", "submitter_id": "s-1", "organ": "liver", "preparation": "FFPE",
              "cases": {"submitter_id": "c-0"}, "weight_mg": 0}
    body = json.dumps([sample]).replace('"weight_mg": 0', '"weight_mg": Infinity')
    (issue,) = refused(lambda: commons.submit(PROJECT, body=body)).issues
    assert (issue.index, issue.field) == (0, "weight_mg") and "Infinity" in issue.message
    assert list(commons.nodes("sample", PROJECT)) == []


@pytest.mark.parametrize("cell", ["nan", "NaN", "inf", "-Infinity"])
def test_non_finite_numbers_in_tsv_are_refused_with_row_and_field(commons, cell):
    body = f"type\tsubmitter_id\tspecies\tage_years\ncase\tt-1\tmouse\t40\ncase\tt-2\thuman\t{cell}\n"
    error = refused(lambda: commons.submit(PROJECT, body=body, fmt="tsv"))
    (issue,) = error.issues
    assert (issue.row, issue.field) == (3, "age_years") and "row 3" in error.message
    assert stored(commons) == {"c-0", "c-1", "c-2"}
    still_explorable(commons)


def test_a_10_mb_property_is_refused_naming_the_field_and_the_limit(commons):
    big = {"type": "case", "submitter_id": "big", "species": "human", "genotype": "A" * 10_000_000}
    error = refused(lambda: commons.submit(PROJECT, [CASES[0], big]))
    (issue,) = error.issues
    assert (issue.index, issue.field) == (1, "genotype")
    assert "10,000,002 bytes" in issue.message and "65,536" in issue.message
    assert stored(commons) == {"c-0", "c-1", "c-2"}


@pytest.mark.parametrize("fmt", ["json", "tsv"])
def test_a_1_mb_submitter_id_is_refused_naming_the_limit(commons, fmt):
    sid = "x" * 1_000_000
    body = (json.dumps([{"type": "case", "submitter_id": sid, "species": "human"}]) if fmt == "json"
            else f"type\tsubmitter_id\tspecies\ncase\t{sid}\thuman\n")
    (issue,) = refused(lambda: commons.submit(PROJECT, body=body, fmt=fmt)).issues
    assert issue.field == "submitter_id" and "1,000,000 characters" in issue.message and "256" in issue.message
    assert (issue.row if fmt == "tsv" else issue.index) == (2 if fmt == "tsv" else 0)
    assert stored(commons) == {"c-0", "c-1", "c-2"}
    commons.submit(PROJECT, [{"type": "case", "submitter_id": "y" * 256, "species": "human"}])  # at the limit


@pytest.mark.parametrize("literal", NON_FINITE_JSON)
def test_a_non_finite_literal_in_a_filter_is_refused_naming_the_clause(commons, literal):
    text = f'{{"AND": [{{"=": {{"species": "human"}}}}, {{">=": {{"age_years": {literal}}}}}]}}'
    for call in (lambda: commons._call("facets", T.FacetRequest(kind="case", filter_json=text, fields=["species"])),
                 lambda: commons._call("hits", T.HitsRequest(kind="case", filter_json=text)),
                 lambda: commons._call("histogram", T.HistogramRequest(kind="case", field="age_years",
                                                                       filter_json=text)),
                 lambda: commons._call("save_cohort", T.Cohort(name="c", kind="case", filter_json=text))):
        error = refused(call)
        assert "filter.AND[1].>=.age_years" in error.message and "finite" in error.message
    text = f'{{"IN": {{"species": ["human", {literal}]}}}}'
    assert "filter.IN.species[1]" in refused(lambda: commons._call(
        "facets", T.FacetRequest(kind="case", filter_json=text, fields=["species"]))).message
    still_explorable(commons)


@pytest.mark.parametrize("width", [math.nan, math.inf, -math.inf, 1e-300])
def test_a_bad_bin_width_is_refused_and_the_connection_stays(commons, width):
    error = refused(lambda: commons.histogram("case", "age_years", bin_width=width))
    assert error.message.startswith("bin_width:")
    still_explorable(commons)  # the same connection answers on


def test_launch_parameters_and_parameter_sets_refuse_non_finite_numbers(commons, client_for):
    tom = client_for("tom", roles=["technician", "analyst"], grants={PROJECT: "write"})
    for value in ("nan", "NaN", "inf", "-Infinity", "1e999"):
        error = refused(lambda: tom.launch("ims-qc", [], {"min-median-tic": value}))
        assert "parameters.min-median-tic" in error.message
        error = refused(lambda: tom.save_parameter_set("ims-qc", "s", {"min-median-tic": value}, project_id=PROJECT))
        assert "parameters.min-median-tic" in error.message


@pytest.fixture
def poisoned(commons, server):
    """A case whose age is NaN, written straight into the store as an older version could have."""
    node = StoredNode(id="00000000-0000-4000-8000-00000000000a", type="case", project_id=PROJECT,
                      submitter_id="c-nan", version=1, props={"species": "human", "age_years": math.nan},
                      created_at="2026-01-01T00:00:00.000+00:00", updated_at="2026-01-01T00:00:00.000+00:00",
                      created_by="old", updated_by="old")
    project = commons.find(PROJECT, PROJECT)
    server.store.apply([Write(node, None)], {project["id"]})
    return commons


def test_a_nan_already_in_the_store_is_read_as_no_value(poisoned):
    stats = poisoned.histogram("case", "age_years", bin_width=5)
    assert (stats.count, stats.missing, stats.min, stats.max) == (3, 1, 30.0, 32.0)
    assert all(math.isfinite(b.low) and math.isfinite(b.high) for b in stats.bins)
    assert poisoned.histogram("case", "age_years").count == 3
    assert poisoned.facets("case", ["species"]).total == 4


def test_the_explorer_shows_its_facets_over_a_stored_nan(poisoned, portal, sign_in, dash_call):  # noqa: F811
    sign_in(portal, "ada")
    answer = json.dumps(dash_call(portal, "explore-facets.children",
                                  [{"id": "explore-state", "property": "data", "value": {"kind": "case"}}]))
    assert "explore-facet-species" in answer and "explore-facet-age_years" in answer
    assert "NaN" not in answer
