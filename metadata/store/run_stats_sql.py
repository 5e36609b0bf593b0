"""The workflows dashboard's aggregates as DuckDB SQL over the stored runs (pure builders; the
embedded store runs them, the Elasticsearch store has its own in elastic_stats.py).

Every query reads the `workflow_run` nodes created in the window [since, before) of the projects
given (None: all), optionally of one template, and groups in the database: per (template, day or
week) outcomes, duration and queue-time percentiles and retried steps; per (project, instrument)
QC verdicts (the instrument of the measurement whose files the run used); per (template, step
template) counts, failures and durations of the leaf steps.
"""
from __future__ import annotations

from dataclasses import dataclass

BUCKETS = ("day", "week")
RUN_TYPE = "workflow_run"


@dataclass(frozen=True)
class StatsWindow:
    """Which runs: created in [since, before) (ISO 8601 texts), of these projects and template."""
    since: str
    before: str
    bucket: str = "day"
    projects: tuple[str, ...] | None = None
    template: str = ""


def _runs(window: StatsWindow) -> tuple[str, list]:
    """The CTE selecting the window's runs, their fields pulled out of the JSON once."""
    where, params = ["type = ?", "created_at >= ?", "created_at < ?"], [RUN_TYPE, window.since, window.before]
    if window.projects is not None:
        where.append("list_contains(?, project_id)")
        params.append(list(window.projects))
    if window.template:
        where.append("(props->>'template') = ?")
        params.append(window.template)
    sql = ("runs AS (SELECT id, project_id, created_at, props->>'template' AS template, props->>'status' AS status, "
           "props->>'outcome' AS outcome, props->>'started_at' AS started_at, props->>'finished_at' AS finished_at, "
           f"props->>'steps_json' AS steps FROM nodes WHERE {' AND '.join(where)})")
    return sql, params


def _seconds(later: str, earlier: str) -> str:
    return f"(epoch(CAST({later} AS TIMESTAMP)) - epoch(CAST({earlier} AS TIMESTAMP)))"


def buckets_sql(window: StatsWindow) -> tuple[str, list]:
    """Rows: template, bucket, runs, succeeded, failed, qc_failed, cancelled, open, durations[3], queued[2], retried."""
    runs, params = _runs(window)
    ended = "status IN ('succeeded', 'failed') AND started_at IS NOT NULL AND finished_at IS NOT NULL"
    sql = f"""WITH {runs}
SELECT template, strftime(date_trunc(?, CAST(created_at AS TIMESTAMP)), '%Y-%m-%d') AS bucket, count(*),
  count(*) FILTER (status = 'succeeded' AND outcome IS DISTINCT FROM 'failed'),
  count(*) FILTER (status = 'failed'),
  count(*) FILTER (status = 'succeeded' AND outcome = 'failed'),
  count(*) FILTER (status = 'cancelled'),
  count(*) FILTER (status IN ('queued', 'running')),
  quantile_cont({_seconds('finished_at', 'started_at')}, [0.5, 0.9, 0.99]) FILTER ({ended}),
  quantile_cont({_seconds('started_at', 'created_at')}, [0.5, 0.9]) FILTER (started_at IS NOT NULL),
  coalesce(sum(len(list_filter(CAST(json_extract(steps, '$[*].attempts') AS INT[]), a -> a > 1))), 0)
FROM runs GROUP BY ALL ORDER BY template, bucket"""
    return sql, params + [window.bucket]


def qc_sql(window: StatsWindow) -> tuple[str, list]:
    """Rows: project_id, instrument, runs with a verdict, passed."""
    runs, params = _runs(window)
    sql = f"""WITH {runs},
judged AS (SELECT id, project_id, outcome FROM runs WHERE status = 'succeeded' AND outcome IS NOT NULL),
instrument AS (SELECT DISTINCT j.id, m.props->>'instrument' AS instrument
  FROM judged j JOIN edges used ON used.child_id = j.id AND used.link_name = 'input_files'
  JOIN edges raw ON raw.child_id = used.parent_id AND raw.link_name = 'measurements'
  JOIN nodes m ON m.id = raw.parent_id)
SELECT j.project_id, coalesce(i.instrument, ''), count(DISTINCT j.id),
  count(DISTINCT j.id) FILTER (j.outcome = 'passed')
FROM judged j LEFT JOIN instrument i ON i.id = j.id GROUP BY ALL ORDER BY 1, 2"""
    return sql, params


STEP_SHAPE = '[{"template": "VARCHAR", "phase": "VARCHAR", "started_at": "VARCHAR", "finished_at": "VARCHAR", "children": "VARCHAR[]"}]'


def steps_sql(window: StatsWindow) -> tuple[str, list]:
    """Rows: template, step template, runs of it, failed, median and longest seconds (leaf steps only)."""
    runs, params = _runs(window)
    duration = _seconds("s.finished_at", "s.started_at")
    sql = f"""WITH {runs},
steps AS (SELECT template, unnest(from_json(steps, '{STEP_SHAPE}')) AS s FROM runs WHERE steps IS NOT NULL)
SELECT template, s.template, count(*), count(*) FILTER (s.phase IN ('Failed', 'Error')),
  quantile_cont({duration}, 0.5) FILTER (s.started_at <> '' AND s.finished_at <> ''),
  max({duration}) FILTER (s.started_at <> '' AND s.finished_at <> '')
FROM steps WHERE len(coalesce(s.children, [])) = 0 AND coalesce(s.template, '') <> ''
GROUP BY ALL ORDER BY 1, 2"""
    return sql, params


def bucket_row(row: tuple) -> dict:
    """A buckets_sql row as the store contract's dict."""
    template, bucket, runs, succeeded, failed, qc_failed, cancelled, open_, durations, queued, retried = row
    return {"template": template or "", "bucket": bucket, "runs": runs, "succeeded": succeeded, "failed": failed,
            "qc_failed": qc_failed, "cancelled": cancelled, "open": open_,
            "duration_s": list(durations) if durations else [], "queued_s": list(queued) if queued else [],
            "steps_retried": int(retried)}
