"""Tiered access attacked by differencing, through a real metadata service on loopback.

The issue's attack: with the limit at 50, comparing total(diagnosis != v) with
total(diagnosis != v AND submitter_id != X) for every diagnosis v (20 calls) tells which v
holds case X in a project the caller cannot read (the one v where the totals agree). Each test
runs an attack in two worlds that differ only in which of two hidden cases holds which
diagnosis; every count of the commons is the same in both, so whatever the attacker sees must
be too: a transcript that differs would single out the case. The old rule fails that at once.
"""
import pytest

from metadata.idl import metadata_thrift as T
from tests.conftest import PROGRAM

OPEN, VAULT = "open-proj", "vault"
DIAGNOSES = ["healthy", "clear cell renal cell carcinoma", "chronic kidney disease", "hepatocellular carcinoma",
             "non-alcoholic fatty liver disease", "Alzheimer's disease model", "ischaemic stroke model",
             "drug-induced liver injury", "drug-induced kidney injury", "other"]
TARGET, TWIN = "v-victim", "v-twin"  # the case the attacker hunts, and the one it swaps diagnoses with


def project(admin, name):
    admin.submit(name, [{"type": "project", "submitter_id": name, "programs": {"submitter_id": PROGRAM}}])


def case(sid, diagnosis, age, sex="male"):
    return {"type": "case", "submitter_id": sid, "species": "human", "sex": sex, "diagnosis": diagnosis,
            "age_years": age}


@pytest.fixture
def commons(admin):
    """vault (unreadable to the attacker): 180 men in three diagnoses, the victim (a woman,
    hepatocellular carcinoma, age 61) and its twin (a woman, healthy, 62); open-proj: 5 cases the
    attacker may read."""
    admin.submit(PROGRAM, [{"type": "program", "submitter_id": PROGRAM}])
    project(admin, VAULT)
    project(admin, OPEN)
    crowd = [case(f"v-{i:03}", DIAGNOSES[i % 3], 30 + i % 20) for i in range(180)]  # 3 cells of 60 men
    admin.submit(VAULT, crowd + [case(TARGET, DIAGNOSES[3], 61, "female"), case(TWIN, DIAGNOSES[0], 62, "female")])
    admin.submit(OPEN, [case(f"o-{i}", DIAGNOSES[i], 40) for i in range(5)])
    admin.set_tier_access_limit(50)  # as in the issue; granularity: the default, 10
    return admin


@pytest.fixture
def attacker(client_for):
    return client_for("mallory", grants={OPEN: "read"})


def swap(admin):
    """The other world: the victim and its twin exchange diagnoses; every aggregate stays the same."""
    admin.submit(VAULT, [case(TARGET, DIAGNOSES[0], 61, "female"), case(TWIN, DIAGNOSES[3], 62, "female")])


def seen(result: T.FacetResult) -> tuple:
    """Everything an answer tells: totals, markers, and every bucket."""
    return (result.total, result.readable_total, result.total_withheld_below, result.tier_withheld,
            tuple((f.field, f.other_count, tuple((b.value, b.count, b.withheld_below) for b in f.buckets))
                  for f in result.facets))


def differencing(client, isolate: dict) -> list[tuple]:
    """The issue's attack: for every diagnosis v, the view without v, then the same view without the victim too."""
    transcript = []
    for v in DIAGNOSES:
        without_v = {"!=": {"diagnosis": v}}
        transcript.append(seen(client.facets("case", ["diagnosis"], without_v)))
        transcript.append(seen(client.facets("case", ["diagnosis"], {"AND": [without_v, isolate]})))
    return transcript


def in_both_worlds(admin, attack) -> tuple[list, list]:
    first = attack()
    swap(admin)
    return first, attack()


ISOLATING = {  # ways to take the victim out of a view; none of these fields is tier-visible
    "submitter_id": {"!=": {"submitter_id": TARGET}},
    "submitter_id IN": {"IN": {"submitter_id": [TARGET, "o-1"]}},
    "age_years": {"!=": {"age_years": 61}},
    "age range": {"<": {"age_years": 61}},
    "text search": {"search": {"keyword": "victim", "fields": ["submitter_id"]}},
    "project_id": {"IN": {"project_id": [OPEN, VAULT]}},
}


@pytest.mark.parametrize("granularity", [10, 1])
@pytest.mark.parametrize("isolate", list(ISOLATING))
def test_differencing_by_a_field_that_is_not_tier_visible_recovers_nothing(commons, attacker, isolate, granularity):
    commons.set_tier_access(50, granularity=granularity)  # even with no rounding, the field rule holds
    first, second = in_both_worlds(commons, lambda: differencing(attacker, ISOLATING[isolate]))
    assert len(first) == 2 * len(DIAGNOSES)
    assert first == second  # the attacker cannot tell which world it is in
    isolated = first[1::2]
    assert all("not tier-visible" in answer[3] for answer in isolated)
    assert all(answer[0] == answer[1] for answer in isolated)  # readable counts only
    assert all(sum(b[1] for f in answer[4] for b in f[2]) <= 5 for answer in isolated)  # open-proj's 5 cases


def test_facets_on_identifying_fields_name_no_hidden_case(commons, attacker):
    commons.set_tier_access(1, granularity=1)
    result = attacker.facets("case", ["submitter_id", "age_years", "diagnosis"], size=1000)
    facets = {f.field: f for f in result.facets}
    assert {b.value for b in facets["submitter_id"].buckets} == {f"o-{i}" for i in range(5)}
    assert sum(b.count for b in facets["age_years"].buckets) == 5
    assert facets["submitter_id"].tier_withheld and facets["age_years"].tier_withheld


def test_admins_cannot_make_identifying_fields_tier_visible(commons, attacker):
    for name in ("submitter_id", "id"):
        with pytest.raises(T.ValidationError, match=f"visible_fields: {name} names single records"):
            commons.set_tier_access(50, granularity=1, visible_fields=["diagnosis", name])
    assert commons.tier_access().default_fields
    first, second = in_both_worlds(commons, lambda: differencing(attacker, ISOLATING["submitter_id"]))
    assert first == second


@pytest.mark.parametrize("granularity", [10, 1])
def test_differencing_by_a_tier_visible_quasi_identifier_recovers_nothing(commons, attacker, granularity):
    """sex is tier-visible, and the victim is one of two women: sex != female takes it out of a view
    the attacker may narrow by tier-visible fields alone. Counted by cells (the documents sharing
    every tier-visible value), the two women sit in cells of one and count nowhere, so the views
    with and without them read the same, in both worlds, even without rounding."""
    commons.set_tier_access(50, granularity=granularity)
    first, second = in_both_worlds(commons, lambda: differencing(attacker, {"!=": {"sex": "female"}}))
    assert first == second
    assert not any(answer[3] for answer in first)  # tier-visible: the unreadable share is counted
    assert first[0::2] == first[1::2]  # the women never counted, so taking them out changes nothing
    assert any(answer[0] > answer[1] for answer in first)  # and the crowd's share does show


def test_one_record_never_shows_as_a_difference_of_one(commons, attacker):
    """Adding hidden cases one at a time: the total moves in steps of the granularity, never by one."""
    totals = []
    for i in range(12):
        commons.submit(VAULT, [case(f"v-new-{i}", DIAGNOSES[1], 40)])
        totals.append(attacker.facets("case", ["diagnosis"]).total)
    steps = {b - a for a, b in zip(totals, totals[1:])}
    assert steps <= {0, 10} and 10 in steps
