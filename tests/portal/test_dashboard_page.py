"""The workflows dashboard: its figures as pure functions (titles, axes, units, a runs-list link on
every point), and the page in-process over real runs for an analyst, refused to a technician."""
from __future__ import annotations

from metadata.idl import metadata_thrift as T
from portal.workflows import dashboard as d
from tests.portal.test_workflow_pages import TEMPLATE, ana, measurement, open_page, post, settings, tom, worker  # noqa: F401
from tests.workflows.runs.test_worker import run_until

STATS = T.RunStats(
    rows=[T.RunStatsRow(template="ims-qc", bucket="2026-03-02", runs=4, succeeded=1, failed=1, qc_failed=1, cancelled=1,
                        open=0, success_rate=0.6667, duration_p50_s=60.0, duration_p90_s=90.0, duration_p99_s=99.0,
                        queued_p50_s=3.0, queued_p90_s=5.0, steps_retried=1)],
    qc=[T.QcStatsRow(project_id="p1", instrument="timsTOF", runs=2, passed=1, pass_rate=0.5)],
    slowest_steps=[T.StepStatsRow(template="ims-qc", step="convert", runs=3, failed=1, duration_p50_s=20.0, duration_max_s=40.0)],
    failing_steps=[], queued=2, oldest_queued_s=75.0, workers=[T.WorkerSeen(worker="w1", seconds_ago=2.0)],
    storage=[T.StorageUse(project_id="p1", bytes=3 * 1024 ** 3, quota_bytes=2 * 1024 ** 3)], since="a", before="b")


def test_every_figure_has_a_title_axes_with_units_and_points_that_open_their_runs():
    outcomes = d.outcomes(STATS, "ims-qc", "p1")
    assert outcomes.layout.title.text == "Runs by outcome per day" and outcomes.layout.yaxis.title.text == "runs"
    assert [t.name for t in outcomes.data] == ["succeeded", "QC failed", "failed", "cancelled"]
    assert outcomes.data[2].customdata[0] == \
        "/runs?status=failed&template=ims-qc&project=p1&since=2026-03-02&before=2026-03-03"  # that day's runs
    weekly = d.per_template(STATS, lambda r: r.runs, "Runs", "runs", bucket="week")
    assert weekly.data[0].customdata[0] == "/runs?template=ims-qc&since=2026-03-02&before=2026-03-09"
    success = d.per_template(STATS, lambda r: r.success_rate, "Success", "success (%)", percent=True)
    assert success.data[0].y[0] == 66.67 and success.layout.yaxis.title.text == "success (%)"
    storage = d.storage(STATS)
    assert storage.layout.yaxis.title.text == "GiB" and list(storage.data[0].y) == [3.0] and storage.data[1].name == "quota"
    assert d.qc_rates(STATS).layout.yaxis.title.text == "passed (%)"
    assert d.steps(STATS.slowest_steps, lambda s: s.duration_p50_s, "Slowest", "seconds").data[0].customdata[0] == \
        "/runs?template=ims-qc"
    assert d.href_of({"points": [{"customdata": "/runs?status=failed"}]}) == "/runs?status=failed"


def test_a_few_buckets_are_ticked_by_date_and_an_empty_chart_says_so():
    """One day of runs: its date under the bar, not plotly's 23:59:59.999 and 00:00:00.0005; a
    pass rate of 0 % still shows its "0/1"; no failing step: a sentence, not empty axes."""
    for figure in (d.outcomes(STATS), d.per_template(STATS, lambda r: r.runs, "Runs", "runs")):
        assert list(figure.layout.xaxis.ticktext) == ["Mar 2, 2026"] and figure.layout.xaxis.title.text == "day (UTC)"
    rates = d.qc_rates(STATS)
    assert rates.data[0].textposition == "outside" and rates.data[0].cliponaxis is False
    empty = d.steps([], lambda s: s.failed, "Most failing steps", "failed runs", "No step failed in this window.")
    assert empty.layout.title.text == "Most failing steps" and empty.layout.annotations[0].text == "No step failed in this window."
    assert empty.layout.xaxis.visible is False and not empty.data
    assert d.href_of({"points": [{"customdata": "javascript:alert(1)"}]}) is None


def test_the_page_shows_an_analyst_the_runs_of_readable_projects_and_a_click_opens_them(ana, tom, admin, measurement,
                                                                                       worker):
    run_until(worker, admin, admin.launch(TEMPLATE, [measurement]).run.id)
    run_until(worker, admin, admin.launch(TEMPLATE, [measurement], {"mode": "fail"}).run.id)
    page = open_page(ana, "/dashboard", "?bucket=week")
    assert "Workflows dashboard" in page and "Runs by outcome per week" in page and "Most failing steps" in page
    assert "w-test: last claim" in page and TEMPLATE in page
    click = {"points": [{"customdata": f"/runs?status=failed&template={TEMPLATE}"}]}
    answer = post(ana, "dashboard-url.href", None, [{"id": f"dashboard-{name}", "property": "clickData",
                                                     "value": click if name == "outcomes" else None}
                                                    for name in ("outcomes", "success", "duration", "queued", "qc",
                                                                 "slowest", "failing", "storage")],
                  [{"id": "dashboard-url", "property": "href", "value": "/dashboard"}],
                  changed="dashboard-outcomes.clickData")
    assert answer["dashboard-url"]["href"] == f"/runs?status=failed&template={TEMPLATE}"
    refused = open_page(tom, "/dashboard")
    assert "dashboard-problem" in refused and "analyst role" in refused
