"""The Elasticsearch body of the dashboard's aggregates, and how its answer becomes rows."""
from metadata.store.elastic_stats import queue_body, queue_from, rows_from, stats_body
from metadata.store.run_stats_sql import StatsWindow

WINDOW = StatsWindow("2026-03-01T00:00:00.000+00:00", "2026-03-08T00:00:00.000+00:00", "week", ("p1",), "ims-qc")


def test_the_body_filters_the_window_and_groups_by_template_then_week():
    body = stats_body(WINDOW)
    assert body["query"]["bool"]["filter"] == [
        {"term": {"type": "workflow_run"}},
        {"range": {"created_at": {"gte": WINDOW.since, "lt": WINDOW.before}}},
        {"terms": {"project_id": ["p1"]}}, {"term": {"run_template": "ims-qc"}}]
    templates = body["aggs"]["templates"]
    assert templates["terms"]["field"] == "run_template"
    histogram = templates["aggs"]["buckets"]["date_histogram"]
    assert (histogram["field"], histogram["calendar_interval"]) == ("run_created", "1w")
    assert set(body["runtime_mappings"]) == {"run_template", "run_status", "run_outcome", "run_created",
                                             "run_duration_s", "run_queued_s"}
    assert "params._source.props" in body["runtime_mappings"]["run_status"]["script"]["source"]
    assert body["size"] == 0


def test_every_project_leaves_the_project_filter_out():
    body = stats_body(StatsWindow("a", "b"))
    assert [f for f in body["query"]["bool"]["filter"] if "terms" in f] == []
    assert body["aggs"]["templates"]["aggs"]["buckets"]["date_histogram"]["calendar_interval"] == "1d"


def test_an_answer_becomes_the_contracts_rows():
    bucket = {"key_as_string": "2026-03-02", "doc_count": 5,
              "status": {"buckets": [{"key": "succeeded", "doc_count": 2}, {"key": "failed", "doc_count": 1},
                                     {"key": "cancelled", "doc_count": 1}, {"key": "queued", "doc_count": 1}]},
              "qc_failed": {"doc_count": 1},
              "ended": {"doc_count": 3, "duration": {"values": {"50.0": 60.0, "90.0": 108.0, "99.0": 118.8}}},
              "queued": {"values": {"50.0": 30.0, "90.0": None}}}
    answer = {"templates": {"buckets": [{"key": "ims-qc", "buckets": {"buckets": [bucket]}}]}}
    assert rows_from(answer) == [{"template": "ims-qc", "bucket": "2026-03-02", "runs": 5, "succeeded": 1, "failed": 1,
                                  "qc_failed": 1, "cancelled": 1, "open": 1, "duration_s": [60.0, 108.0, 118.8],
                                  "queued_s": [], "steps_retried": 0}]


def test_the_queue_is_counted_by_a_search_of_queued_runs():
    body = queue_body(WINDOW)
    assert {"term": {"run_status": "queued"}} in body["query"]["bool"]["filter"]
    assert body["aggs"] == {"oldest": {"min": {"field": "run_created"}}} and body["track_total_hits"] is True
    answer = {"hits": {"total": {"value": 3}}, "aggregations": {"oldest": {"value": 1.0, "value_as_string": "2026-03-02T10:00:00.000Z"}}}
    assert queue_from(answer) == [3, "2026-03-02T10:00:00.000Z"]


def test_each_templates_last_runs_are_asked_for_newest_first_and_counted():
    from metadata.store.elastic_stats import recent_body, recent_from
    last = recent_body(20)["aggs"]["templates"]["aggs"]["last"]["top_hits"]
    assert last == {"size": 20, "sort": [{"created_at": "desc"}], "_source": ["props.status"]}
    hits = [{"_source": {"props": {"status": s}}} for s in ("failed", "succeeded", "failed")]
    answer = {"templates": {"buckets": [{"key": "ims-qc", "last": {"hits": {"hits": hits}}}]}}
    assert recent_from(answer) == [("ims-qc", 3, 2)]
