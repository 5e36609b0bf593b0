"""Exploration over flattened documents through the service: facets, stats, hits, manifests,
access restriction and cohorts. Runs on each store (see tests/contract/conftest.py)."""
import pytest

from metadata.idl import metadata_thrift as T
from tests.stored import folder_url

MD5 = "0" * 32


def graph(folder: str):
    """3 cases, 3 samples, 2 measurements, 3 files, 1 experiment; the files in `folder` (a project's
    folder URL: tests.stored.folder_url)."""
    cases = [{"type": "case", "submitter_id": "c-1", "species": "human", "age_years": 30},
             {"type": "case", "submitter_id": "c-2", "species": "human", "age_years": 50},
             {"type": "case", "submitter_id": "c-3", "species": "mouse"}]
    samples = [{"type": "sample", "submitter_id": s, "organ": o, "preparation": "FFPE", "cases": {"submitter_id": c}}
               for s, o, c in (("s-1", "liver", "c-1"), ("s-2", "kidney", "c-1"), ("s-3", "liver", "c-2"))]
    experiment = {"type": "experiment", "submitter_id": "e-1", "protocol": "MALDI imaging"}
    measurements = [{"type": "measurement", "submitter_id": m, "samples": {"submitter_id": s},
                     "instrument": "timsTOF fleX", "ionisation": "MALDI", "polarity": "positive",
                     "experiments": {"submitter_id": "e-1"}} for m, s in (("m-1", "s-1"), ("m-2", "s-3"))]
    files = [{"type": "data_file", "submitter_id": f, "file_name": f, "data_format": fmt, "file_size": size,
              "md5sum": MD5, "storage_url": f"{folder}/{f}", "measurements": {"submitter_id": m}}
             for f, fmt, size, m in (("f-1.imzML", "imzML", 100, "m-1"), ("f-1.ibd", "ibd", 900, "m-1"),
                                     ("f-2.imzML", "imzML", 300, "m-2"))]
    return cases + samples + [experiment] + measurements + files


@pytest.fixture
def explored(admin, server, project):
    admin.submit(project, graph(folder_url(server.settings, project)))
    return admin


def buckets(result, field):
    facet = next(f for f in result.facets if f.field == field)
    return {b.value: b.count for b in facet.buckets}


def test_documents_describe_the_kinds(explored):
    kinds = {k.kind: k for k in explored.documents()}
    assert kinds["case"].root_type == "case" and "species" in kinds["case"].facets
    species = next(f for f in kinds["case"].fields if f.name == "species")
    assert species.kind == "keyword" and "human" in species.enum_values
    age = next(f for f in kinds["case"].fields if f.name == "age_years")
    assert (age.title, age.unit) == ("", "years")  # the portal labels it "Age (years)"


def test_documents_copy_ancestors_and_aggregate_descendants(explored):
    _, files = explored.hits("file", sort=[("file_name", False)])
    assert [(f["file_name"], f["case"], f["organ"], f["species"], f["protocol"]) for f in files] == [
        ("f-1.ibd", "c-1", "liver", "human", "MALDI imaging"), ("f-1.imzML", "c-1", "liver", "human", "MALDI imaging"),
        ("f-2.imzML", "c-2", "liver", "human", "MALDI imaging")]
    _, cases = explored.hits("case", sort=[("submitter_id", False)])
    c1 = cases[0]
    assert (c1["sample_count"], c1["organs"], c1["file_count"], c1["total_file_size"]) == (2, ["kidney", "liver"], 2, 1000)
    assert {s["organ"] for s in c1["samples"]} == {"kidney", "liver"}
    assert (cases[2]["sample_count"], cases[2]["organs"], cases[2]["file_count"]) == (0, [], 0)


def test_a_facet_keeps_its_own_values_while_narrowing_the_others(explored):
    result = explored.facets("case", ["species", "organs", "age_years"], {"IN": {"species": ["human"]}})
    assert result.total == 2
    assert buckets(result, "species") == {"human": 2, "mouse": 1}
    assert buckets(result, "organs") == {"liver": 2, "kidney": 1}
    assert buckets(result, "age_years") == {"30.0": 1, "50.0": 1}


def test_the_no_value_bucket_counts_documents_without_a_value(explored):
    result = explored.facets("case", ["organs", "age_years"])
    assert buckets(result, "organs")["__missing__"] == 1 and buckets(result, "age_years")["__missing__"] == 1
    assert explored.facets("case", ["species"], {"IN": {"organs": ["__missing__"]}}).total == 1


def test_documents_follow_every_write(explored, project):
    explored.submit(project, [{"type": "case", "submitter_id": "c-1", "species": "mouse", "age_years": 30}])
    _, files = explored.hits("file", {"=": {"case": "c-1"}})
    assert {f["species"] for f in files} == {"mouse"}
    ibd = explored.find(project, "f-1.ibd")["id"]
    explored.delete(project, [ibd])
    _, cases = explored.hits("case", {"=": {"submitter_id": "c-1"}})
    assert (cases[0]["file_count"], cases[0]["total_file_size"]) == (1, 100)
    assert explored.hits("file")[0] == 2


def test_numeric_stats_and_histogram(explored):
    stats = explored.histogram("file", "file_size", bins=4)
    assert (stats.count, stats.missing, stats.min, stats.max, stats.sum) == (3, 0, 100, 900, 1300)
    assert [(b.low, b.high, b.count) for b in stats.bins] == [(100, 300, 1), (300, 500, 1), (500, 700, 0), (700, 900, 1)]
    width = explored.histogram("file", "file_size", bin_width=500)
    assert [(b.low, b.count) for b in width.bins] == [(0, 2), (500, 1)]


def test_hits_sort_and_page(explored):
    total, page = explored.hits("file", sort=[("file_size", True)], limit=2, offset=1)
    assert total == 3 and [f["file_size"] for f in page] == [300, 100]


def test_the_manifest_lists_the_files_behind_a_view(explored):
    from_files = list(explored.manifest("file", {"IN": {"data_format": ["imzML"]}}, page_size=1))
    assert sorted(f["file_name"] for f in from_files) == ["f-1.imzML", "f-2.imzML"]
    from_cases = list(explored.manifest("case", {"=": {"submitter_id": "c-1"}}, page_size=1))
    assert sorted(f["file_name"] for f in from_cases) == ["f-1.ibd", "f-1.imzML"]
    assert set(from_cases[0]) == {"id", "file_name", "data_format", "file_size", "md5sum", "storage_url",
                                  "project_id", "case", "sample", "measurement"}


def test_queries_see_only_readable_projects(explored, client_for, project):
    assert client_for("olga").facets("case", ["species"]).total == 0
    assert list(client_for("olga").manifest("file")) == []
    assert client_for("rita", grants={project: "read"}).facets("case", ["species"]).total == 3
    excluded = client_for("olga").facets("case", ["project_id"], {"IN": {"project_id": [project]}})
    assert excluded.total == 0 and buckets(excluded, "project_id") == {}


@pytest.mark.standin_differs("noida-db has no reverse_nested aggregation (the builders: test_elastic_documents.py)")
def test_a_record_field_is_a_facet_keeping_its_own_values(explored):
    """samples.organ, written as Gen3 users write it: Guppy's `in` inside `nested`."""
    chosen = {"nested": {"path": "samples", "in": {"organ": ["kidney"]}}}
    result = explored.facets("case", ["samples.organ", "species"], chosen)
    assert result.total == 1
    assert buckets(result, "samples.organ") == {"liver": 2, "kidney": 1, "__missing__": 1}
    assert buckets(result, "species") == {"human": 1}


@pytest.mark.parametrize("call, words", [
    (lambda c: c.facets("sample", ["organ"]), "kind: 'sample' is not a document kind"),
    (lambda c: c.facets("case", ["specie"]), "fields: 'specie' is not a field"),
    (lambda c: c.facets("case", ["samples.organs"]), "samples.organ, samples.tissue"),
    (lambda c: c.hits("case", sort=[("samples.organ", False)]), "'samples.organ' is not a field"),
    (lambda c: c.facets("case", ["species"], {"IN": {"specie": ["x"]}}), "specie"),
    (lambda c: c.facets("case", ["species"], {">=": {"age_years": "old"}}), "age_years"),
    (lambda c: c.facets("case", ["species"], "{broken"), "filter"),
    (lambda c: c.histogram("case", "species"), "not a numeric field"),
    (lambda c: c.hits("case", limit=0), "limit"),
    (lambda c: c.hits("case", sort=[("organs", False)]), "holds lists"),
    (lambda c: list(c.manifest("file", page_size=20_000)), "limit"),
    (lambda c: c._call("manifest", T.ManifestRequest(kind="file", cursor="%%%")), "cursor"),
])
def test_bad_queries_get_a_typed_error_naming_what_is_wrong(explored, call, words):
    with pytest.raises(T.ValidationError) as caught:
        call(explored)
    assert words in caught.value.message


def test_reindex_is_for_admins_and_rebuilds_the_same_documents(explored, client_for):
    before = explored.hits("case", sort=[("submitter_id", False)])
    assert explored.reindex() == {"case": 3, "file": 3}
    assert explored.hits("case", sort=[("submitter_id", False)]) == before
    with pytest.raises(T.Forbidden):
        client_for("rita").reindex()


def test_cohorts_are_private_unless_shared_with_a_project(explored, client_for, project):
    ana, rita = client_for("ana", grants={project: "read"}), client_for("rita", grants={project: "read"})
    mine = ana.save_cohort("humans", "case", {"IN": {"species": ["human"]}})
    assert (mine.owner, mine.shared) == ("ana", False) and [c.name for c in ana.cohorts()] == ["humans"]
    assert rita.cohorts() == []
    with pytest.raises(T.NotFound, match="no cohort with id"):  # another's private cohort is not there
        rita.cohort(mine.id)
    shared = ana.save_cohort("livers", "file", {"IN": {"organ": ["liver"]}}, project_id=project, shared=True)
    assert [c.name for c in rita.cohorts()] == ["livers"] and rita.cohort(shared.id).filter_json
    with pytest.raises(T.Forbidden, match="only its owner or an admin"):
        rita.delete_cohort(shared.id)
    with pytest.raises(T.Forbidden):
        client_for("olga").save_cohort("x", "case", None, project_id=project, shared=True)
    again = ana.save_cohort("humans", "case", {"IN": {"species": ["mouse"]}})
    assert again.id == mine.id and "mouse" in ana.cohort(mine.id).filter_json
    ana.delete_cohort(mine.id)
    assert [c.name for c in ana.cohorts()] == ["livers"]


@pytest.mark.parametrize("args, words", [
    (("", "case", None), "name"),
    (("x", "sample", None), "kind"),
    (("x", "case", {"IN": {"nope": [1]}}), "nope"),
])
def test_bad_cohorts_are_refused(explored, args, words):
    with pytest.raises(T.ValidationError, match=words):
        explored.save_cohort(*args)


def test_cohorts_are_not_reachable_through_the_node_api(explored, project):
    cohort = explored.save_cohort("mine", "case", None)
    with pytest.raises(T.NotFound):
        explored.get(cohort.id)
    with pytest.raises(T.NotFound):
        explored.edges(cohort.id)
    with pytest.raises(T.NotFound):
        explored.delete("~local-admin", [cohort.id])


def test_facets_can_count_under_the_whole_filter(explored):
    result = explored.facets("case", ["species"], {"IN": {"species": ["human"]}}, exclude_own=False)
    assert buckets(result, "species") == {"human": 2}
