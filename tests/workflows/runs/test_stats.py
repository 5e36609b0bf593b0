"""run_stats through the service: real runs of the local engine, grouped by the store, scoped to
what the caller may read; the queue, the workers and the storage use the worker reports."""
import json

import pytest

from metadata.idl import metadata_thrift as T
from tests.workflows.runs.test_worker import run_until, worker  # noqa: F401 (worker: a fixture)


def test_the_dashboard_counts_real_runs_for_those_who_may_read_them(admin, client_for, worker, measurement, project,
                                                                    cli):
    ok = admin.launch("size-report", [measurement]).run
    bad = admin.launch("size-report", [measurement], {"mode": "fail"}).run
    run_until(worker, admin, ok.id)
    run_until(worker, admin, bad.id)
    waiting = admin.launch("size-report", [measurement], {"mode": "qc-pass"}).run

    analyst = client_for("ann", roles=["analyst"], grants={project: "read"})
    stats = analyst.run_stats()
    [row] = stats.rows
    assert (row.template, row.runs, row.succeeded, row.failed, row.open) == ("size-report", 3, 1, 1, 1)
    assert row.success_rate == 0.5 and row.duration_p50_s >= 0 and row.queued_p50_s >= 0
    assert [(s.template, s.step, s.runs, s.failed) for s in stats.failing_steps] == [("size-report", "measure", 2, 1)]
    assert stats.queued == 1 and stats.oldest_queued_s >= 0 and [w.worker for w in stats.workers] == ["w-test"]
    assert stats.qc == []   # no run with a verdict yet
    assert admin.cancel_run(waiting.id).status == "cancelled"

    shown = cli("stats", "-o", "json")
    assert shown.exit_code == 0, shown.output
    found = json.loads(shown.stdout)
    assert [(r["template"], r["runs"], r["cancelled"], r["success"]) for r in found["rows"]] == [("size-report", 3, 1, "50%")]
    assert found["failing_steps"] == [{"template": "size-report", "step": "measure", "runs": 2, "failed": 1}]
    table = cli("stats", "--week", "--template", "size-report")
    assert table.exit_code == 0 and "most failing steps" in table.output and "0 queued" in table.output
    refused = cli("stats", "--since", "yesterday")
    assert refused.exit_code == 1 and "since: 'yesterday' is not an ISO 8601" in refused.output

    outsider = client_for("olaf", roles=["analyst"], grants={"other-project": "read"})
    assert outsider.run_stats().rows == [] and outsider.run_stats().queued == 0
    with pytest.raises(T.Forbidden):
        outsider.run_stats(project_id=project)
    with pytest.raises(T.Forbidden, match="analyst role"):
        client_for("tess", roles=["technician"], grants={project: "write"}).run_stats()
    with pytest.raises(T.ValidationError, match="bucket: 'month' is not a bucket; choose from day, week"):
        analyst.run_stats(bucket="month")
    with pytest.raises(T.ValidationError, match="since: 'yesterday' is not an ISO 8601"):
        analyst.run_stats(since="yesterday")


def test_storage_use_is_shown_to_the_readers_of_its_project(admin, client_for, project, worker):
    worker.client.report_storage([T.StorageUse(project_id=project, bytes=2048, quota_bytes=1024),
                                  T.StorageUse(project_id="other-project", bytes=99)])
    worker.client.report_storage([T.StorageUse(project_id=project, bytes=4096, quota_bytes=1024)])
    analyst = client_for("ann", roles=["analyst"], grants={project: "read"})
    [use] = analyst.run_stats().storage
    assert (use.project_id, use.bytes, use.quota_bytes) == (project, 4096, 1024) and use.measured_at
    assert {u.project_id for u in admin.run_stats().storage} == {project, "other-project"}
    with pytest.raises(T.ValidationError, match=r"uses\[0\]"):
        worker.client.report_storage([T.StorageUse(project_id="", bytes=1)])
