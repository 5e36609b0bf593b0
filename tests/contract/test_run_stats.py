"""Store.run_stats, the dashboard's aggregates grouped by the store, on every store; the parts only
the embedded store gives (retried steps, steps, QC per instrument) on it alone."""
from __future__ import annotations

import dataclasses
import json

import pytest

from metadata.store.run_stats_sql import StatsWindow
from metadata.store.base import Write
from tests.contract.test_store_contract import changed, create, node

DAY1, DAY2 = "2026-03-02T10:00:00.000+00:00", "2026-03-03T09:00:00.000+00:00"


def step(template: str, phase: str, seconds: int, attempts: int = 1) -> dict:
    return {"id": template, "name": template, "template": template, "phase": phase, "children": [],
            "started_at": "2026-03-02T10:00:10+00:00", "finished_at": f"2026-03-02T10:00:{10 + seconds}+00:00",
            "attempts": attempts}


def run(sid: str, created: str, status: str, outcome: str = "", seconds: int = 60, project: str = "p1",
        template: str = "ims-qc", steps=(), links=()):
    props = {"template": template, "status": status, "started_at": created.replace("00.000", "30.000"),
             "steps_json": json.dumps(list(steps))}
    if status in ("succeeded", "failed", "cancelled"):
        props["finished_at"] = created.replace(":00:00.000", f":{seconds // 60:02d}:30.000")
    if outcome:
        props["outcome"] = outcome
    made = node(sid, project, "workflow_run", links, **props)
    return dataclasses.replace(made, created_at=created)


@pytest.fixture
def runs(stores):
    store = stores.open()
    measurement = node("m", type_="measurement", instrument="timsTOF fleX")
    data_file = node("f", type_="data_file", links=[("measurements", measurement)])
    create(store, measurement)
    create(store, data_file, parents={measurement.id})
    used = [("input_files", data_file)]
    create(store,
           run("r1", DAY1, "succeeded", "passed", 60, links=used, steps=[step("convert", "Succeeded", 20, attempts=2)]),
           run("r2", DAY1, "succeeded", "failed", 120, links=used, steps=[step("convert", "Succeeded", 40)]),
           run("r3", DAY1, "failed", steps=[step("convert", "Failed", 5)]),
           run("r4", DAY1, "cancelled"),
           run("r5", DAY2, "queued"),
           run("r6", DAY1, "succeeded", project="p2"),
           run("r7", DAY1, "succeeded", template="ims-convert"),
           parents={data_file.id})
    return stores.kind, store


def window(**given) -> StatsWindow:
    return StatsWindow(**{"since": "2026-03-01T00:00:00.000+00:00", "before": "2026-03-08T00:00:00.000+00:00",
                          "projects": ("p1",), **given})


NO_PERCENTILES = pytest.mark.standin_differs("no percentiles aggregation (elastic_stats.py is also checked as a pure builder)")


@NO_PERCENTILES
def test_runs_are_grouped_by_template_and_day_with_their_outcomes(runs):
    _, store = runs
    rows = store.run_stats(window())["buckets"]
    by = {(r["template"], r["bucket"]): r for r in rows}
    assert set(by) == {("ims-convert", "2026-03-02"), ("ims-qc", "2026-03-02"), ("ims-qc", "2026-03-03")}
    day = by["ims-qc", "2026-03-02"]
    assert (day["runs"], day["succeeded"], day["qc_failed"], day["failed"], day["cancelled"], day["open"]) == (4, 1, 1, 1, 1, 0)
    assert by["ims-qc", "2026-03-03"]["open"] == 1
    assert day["duration_s"][0] == pytest.approx(60, abs=1) and day["queued_s"][0] == pytest.approx(30, abs=1)


@NO_PERCENTILES
def test_weeks_templates_and_projects_narrow_the_window(runs):
    _, store = runs
    [week] = store.run_stats(window(bucket="week", template="ims-qc"))["buckets"]
    assert (week["bucket"], week["runs"]) == ("2026-03-02", 5)   # a Monday: weeks start on Mondays
    assert store.run_stats(window(projects=()))["buckets"] == []
    assert sum(r["runs"] for r in store.run_stats(window(projects=None))["buckets"]) == 7
    assert store.run_stats(window(before="2026-03-02T00:00:00.000+00:00"))["buckets"] == []


@NO_PERCENTILES
def test_a_run_written_after_a_query_counts_in_the_next(runs):
    _, store = runs
    assert store.run_stats(window())["buckets"][-1]["open"] == 1
    assert store.run_stats(window())["queue"] == [1, DAY2]
    [queued] = store.get_many(["id-p1-r5"]).values()
    done = changed(queued, **{**queued.props, "status": "failed", "finished_at": "2026-03-03T09:05:00.000+00:00"})
    store.apply([Write(done, queued.version)], set())
    last = store.run_stats(window())["buckets"][-1]
    assert (last["open"], last["failed"]) == (0, 1) and store.run_stats(window())["queue"][0] == 0


@pytest.mark.parametrize("stores", ["embedded"], indirect=True)  # Elasticsearch gives no step or instrument aggregates
def test_the_embedded_store_groups_steps_retries_and_qc_per_instrument(runs):
    kind, store = runs
    found = store.run_stats(window())
    assert sum(r["steps_retried"] for r in found["buckets"]) == 1
    [convert] = found["steps"]
    assert (convert["template"], convert["step"], convert["runs"], convert["failed"]) == ("ims-qc", "convert", 3, 1)
    assert convert["max_s"] == 40
    assert found["qc"] == [{"project_id": "p1", "instrument": "timsTOF fleX", "runs": 2, "passed": 1}]
