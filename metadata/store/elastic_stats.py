"""The workflows dashboard's aggregates as one Elasticsearch search over the nodes index (pure
builders; ElasticStore.run_stats sends the body).

A run's properties are kept in the nodes index but not indexed (`props` is a disabled object), so
the fields grouped on are runtime fields read from _source (runtime_mappings in the request):
correct on any index, at the price of reading every run of the window; an indexed run-record
index would make it cheaper. Per (template, day or week): outcomes, duration and queue-time
percentiles, as the DuckDB queries give (run_stats_sql.py). What this store does not give: retried
steps, the step table and QC per instrument (they need the steps' JSON and the graph's joins,
which a search cannot do); those come back as 0 and empty lists.
"""
from __future__ import annotations

from metadata.store.run_stats_sql import RUN_TYPE, StatsWindow

TEMPLATES_MAX = 1000
OUTCOMES = ("succeeded", "failed", "cancelled", "queued", "running")


def _keyword(prop: str) -> dict:
    return {"type": "keyword", "script": {"source": (
        f"def p = params._source.props; if (p != null && p.{prop} != null) {{ emit(p.{prop}.toString()); }}")}}


def _seconds(later: str, earlier: str, earlier_from_props: bool = True) -> dict:
    """Seconds between two instants of a run (ISO 8601 texts), when both are set."""
    first = f"p.{earlier}" if earlier_from_props else f"params._source.{earlier}"
    return {"type": "double", "script": {"source": (
        f"def p = params._source.props; if (p != null && p.{later} != null && {first} != null) {{ "
        f"emit((ZonedDateTime.parse(p.{later}).toInstant().toEpochMilli() - "
        f"ZonedDateTime.parse({first}).toInstant().toEpochMilli()) / 1000.0); }}")}}


def runtime_mappings() -> dict:
    return {"run_template": _keyword("template"), "run_status": _keyword("status"), "run_outcome": _keyword("outcome"),
            "run_created": {"type": "date", "script": {"source": (
                "emit(ZonedDateTime.parse(params._source.created_at).toInstant().toEpochMilli());")}},
            "run_duration_s": _seconds("finished_at", "started_at"),
            "run_queued_s": _seconds("started_at", "created_at", earlier_from_props=False)}


def stats_body(window: StatsWindow) -> dict:
    """The search: the window's runs, by template, by day or week, with their outcomes and times."""
    where = [{"term": {"type": RUN_TYPE}}, {"range": {"created_at": {"gte": window.since, "lt": window.before}}}]
    if window.projects is not None:
        where.append({"terms": {"project_id": list(window.projects)}})
    if window.template:
        where.append({"term": {"run_template": window.template}})
    ended = {"terms": {"run_status": ["succeeded", "failed"]}}
    per_bucket = {
        "status": {"terms": {"field": "run_status", "size": len(OUTCOMES)}},
        "qc_failed": {"filter": {"bool": {"filter": [{"term": {"run_status": "succeeded"}},
                                                     {"term": {"run_outcome": "failed"}}]}}},
        "ended": {"filter": ended, "aggs": {"duration": {"percentiles": {"field": "run_duration_s",
                                                                         "percents": [50, 90, 99]}}}},
        "queued": {"percentiles": {"field": "run_queued_s", "percents": [50, 90]}}}
    return {"size": 0, "track_total_hits": False, "query": {"bool": {"filter": where}},
            "runtime_mappings": runtime_mappings(),
            "aggs": {"templates": {"terms": {"field": "run_template", "size": TEMPLATES_MAX, "order": {"_key": "asc"}},
                                   "aggs": {"buckets": {"date_histogram": {
                                       "field": "run_created", "calendar_interval": "1d" if window.bucket == "day" else "1w",
                                       "format": "yyyy-MM-dd", "min_doc_count": 1}, "aggs": per_bucket}}}}}


def queue_body(window: StatsWindow) -> dict:
    """The runs of the window's projects (and template) queued now, and the oldest launch."""
    where = [{"term": {"type": RUN_TYPE}}, {"term": {"run_status": "queued"}}]
    if window.projects is not None:
        where.append({"terms": {"project_id": list(window.projects)}})
    if window.template:
        where.append({"term": {"run_template": window.template}})
    return {"size": 0, "track_total_hits": True, "query": {"bool": {"filter": where}},
            "runtime_mappings": runtime_mappings(), "aggs": {"oldest": {"min": {"field": "run_created"}}}}


def queue_from(answer: dict) -> list:
    """[queued runs, the oldest one's created_at or None] from queue_body's answer."""
    oldest = answer["aggregations"]["oldest"]
    return [answer["hits"]["total"]["value"], oldest.get("value_as_string")]


def rows_from(aggregations: dict) -> list[dict]:
    """The search's aggregations as the store contract's bucket rows (run_stats_sql.bucket_row's shape)."""
    rows = []
    for template in aggregations["templates"]["buckets"]:
        for bucket in template["buckets"]["buckets"]:
            rows.append(_row(template["key"], bucket))
    return rows


def _row(template: str, bucket: dict) -> dict:
    status = {b["key"]: b["doc_count"] for b in bucket["status"]["buckets"]}
    qc_failed = bucket["qc_failed"]["doc_count"]
    return {"template": template, "bucket": bucket["key_as_string"], "runs": bucket["doc_count"],
            "succeeded": status.get("succeeded", 0) - qc_failed, "failed": status.get("failed", 0),
            "qc_failed": qc_failed, "cancelled": status.get("cancelled", 0),
            "open": status.get("queued", 0) + status.get("running", 0),
            "duration_s": _percentiles(bucket["ended"]["duration"], ("50.0", "90.0", "99.0")),
            "queued_s": _percentiles(bucket["queued"], ("50.0", "90.0")), "steps_retried": 0}


def _percentiles(agg: dict, keys: tuple[str, ...]) -> list:
    values = agg.get("values") or {}
    found = [values.get(k) for k in keys]
    return [] if any(v is None for v in found) else found


def recent_body(last: int) -> dict:
    """Each template's `last` ended runs, newest first (top_hits: `last` may be at most 100)."""
    ended = [{"term": {"type": RUN_TYPE}}, {"terms": {"run_status": ["succeeded", "failed"]}}]
    return {"size": 0, "track_total_hits": False, "query": {"bool": {"filter": ended}},
            "runtime_mappings": runtime_mappings(),
            "aggs": {"templates": {"terms": {"field": "run_template", "size": TEMPLATES_MAX, "order": {"_key": "asc"}},
                                   "aggs": {"last": {"top_hits": {"size": last, "sort": [{"created_at": "desc"}],
                                                                  "_source": ["props.status"]}}}}}}


def recent_from(aggregations: dict) -> list[tuple[str, int, int]]:
    """(template, runs, failed) from recent_body's answer."""
    found = []
    for bucket in aggregations["templates"]["buckets"]:
        statuses = [hit["_source"]["props"]["status"] for hit in bucket["last"]["hits"]["hits"]]
        found.append((bucket["key"], len(statuses), statuses.count("failed")))
    return found
