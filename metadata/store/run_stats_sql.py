"""The workflows dashboard's aggregates as DuckDB SQL over the stored runs (pure builders; the
embedded store runs them, the Elasticsearch store has its own in elastic_stats.py).

A run's fields live in its JSON properties, and reading JSON is what costs: pulling six fields out
of 80,000 runs' properties takes longer than the dashboard may. So the store keeps a typed copy, the
facts (`run_facts`: one row per run, `step_facts`: one per leaf step), refreshed before each query
from the runs written since the last refresh (`updated_at`, re-read over a margin so that a write
committed late is not missed; a run whose facts carry its current `updated_at` is skipped), and
groups the facts: per (template, day or week) outcomes, duration and queue-time percentiles and
retried steps; per (project, instrument) QC verdicts (the instrument of the measurement whose
files the run used); per (template, step template) counts, failures and durations.
"""
from __future__ import annotations

from dataclasses import dataclass

BUCKETS = ("day", "week")
RUN_TYPE = "workflow_run"
MARGIN = "INTERVAL 10 MINUTE"   # writes stamped this long before the newest facts are read again


@dataclass(frozen=True)
class StatsWindow:
    """Which runs: created in [since, before) (ISO 8601 texts), of these projects and template."""
    since: str
    before: str
    bucket: str = "day"
    projects: tuple[str, ...] | None = None
    template: str = ""


FACTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS run_facts (id VARCHAR, project_id VARCHAR, created_at VARCHAR, day DATE, updated_at VARCHAR,
  template VARCHAR, status VARCHAR, outcome VARCHAR, duration_s DOUBLE, queued_s DOUBLE, retried INTEGER,
  instrument VARCHAR);
CREATE TABLE IF NOT EXISTS step_facts (run_id VARCHAR, project_id VARCHAR, created_at VARCHAR, day DATE, template VARCHAR,
  step VARCHAR, failed BOOLEAN, seconds DOUBLE);
"""
STEP_SHAPE = '[{"template": "VARCHAR", "phase": "VARCHAR", "started_at": "VARCHAR", "finished_at": "VARCHAR", "children": "VARCHAR[]"}]'


def _seconds(later: str, earlier: str) -> str:
    return f"(epoch(CAST({later} AS TIMESTAMP)) - epoch(CAST({earlier} AS TIMESTAMP)))"


def changed_sql(since: str) -> tuple[str, list]:
    """Into the temporary table `changed`: the runs written at or after `since` (the facts' newest
    stamp less the margin, see since_sql; "" the first time) whose facts are not of their current
    version, each JSON read once."""
    fields = "['template', 'status', 'outcome', 'started_at', 'finished_at', 'steps_json']"
    sql = f"""CREATE OR REPLACE TEMP TABLE changed AS
WITH recent AS (SELECT id, project_id, created_at, updated_at, json_extract_string(props, {fields}) AS f
  FROM nodes WHERE type = '{RUN_TYPE}' AND updated_at >= ?)
SELECT r.id, r.project_id, r.created_at, r.updated_at, f[1] AS template, f[2] AS status, f[3] AS outcome,
  f[4] AS started_at, f[5] AS finished_at, f[6] AS steps
FROM recent r LEFT JOIN (SELECT id, updated_at FROM run_facts WHERE updated_at >= ?) k
  ON k.id = r.id AND k.updated_at = r.updated_at WHERE k.id IS NULL"""
    return sql, [since, since]


def since_sql(stamp: str | None) -> tuple[str, list]:
    """One row: the stamp from which runs are read again (the newest facts' `stamp`, or the
    table's when None, less the margin; "" when there are no facts)."""
    newest = "?" if stamp is not None else "(SELECT max(updated_at) FROM run_facts)"
    sql = f"SELECT coalesce(strftime(CAST({newest} AS TIMESTAMP) - {MARGIN}, '%Y-%m-%dT%H:%M:%S'), '')"
    return sql, [stamp] if stamp is not None else []


def refresh_sql() -> list[str]:
    """After changed_sql: replace those runs' facts (run with the write lock held, in one transaction)."""
    ended = "status IN ('succeeded', 'failed') AND started_at IS NOT NULL AND finished_at IS NOT NULL"
    leaf = _seconds("s.finished_at", "s.started_at")
    return [
        "DELETE FROM run_facts WHERE id IN (SELECT id FROM changed)",
        "DELETE FROM step_facts WHERE run_id IN (SELECT id FROM changed)",
        f"""INSERT INTO run_facts SELECT c.id, c.project_id, c.created_at, CAST(CAST(c.created_at AS TIMESTAMP) AS DATE),
  c.updated_at, c.template, c.status, c.outcome,
  CASE WHEN {ended} THEN {_seconds('finished_at', 'started_at')} END,
  CASE WHEN started_at IS NOT NULL THEN {_seconds('started_at', 'c.created_at')} END,
  coalesce(len(list_filter(CAST(json_extract(steps, '$[*].attempts') AS INT[]), a -> a > 1)), 0), i.instrument
FROM changed c LEFT JOIN (
  SELECT used.child_id AS id, any_value(m.props->>'instrument') AS instrument FROM edges used
  JOIN edges raw ON raw.child_id = used.parent_id AND raw.link_name = 'measurements'
  JOIN nodes m ON m.id = raw.parent_id
  WHERE used.link_name = 'input_files' AND used.child_id IN (SELECT id FROM changed) GROUP BY 1) i ON i.id = c.id""",
        f"""INSERT INTO step_facts SELECT id, project_id, created_at, CAST(CAST(created_at AS TIMESTAMP) AS DATE), template, s.template, s.phase IN ('Failed', 'Error'),
  CASE WHEN s.started_at <> '' AND s.finished_at <> '' THEN {leaf} END
FROM (SELECT id, project_id, created_at, template, unnest(from_json(steps, '{STEP_SHAPE}')) AS s
      FROM changed WHERE steps IS NOT NULL AND steps <> '[]')
WHERE len(coalesce(s.children, [])) = 0 AND coalesce(s.template, '') <> ''"""]


def _where(window: StatsWindow) -> tuple[str, list]:
    """The window's facts: created in it, of its projects and template. The days first: a date's
    min/max per row group skip most of the table, where the texts' (alike in their first bytes) do not."""
    where = ["day BETWEEN CAST(CAST(? AS TIMESTAMP) AS DATE) AND CAST(CAST(? AS TIMESTAMP) AS DATE)",
             "created_at >= ?", "created_at < ?"]
    params = [window.since, window.before, window.since, window.before]
    scope, scoped = _scope(window)
    return " AND ".join(where + scope), params + scoped


def _scope(window: StatsWindow) -> tuple[list[str], list]:
    """The window's projects and template as conditions and their parameters."""
    where, params = [], []
    if window.projects is not None:
        where.append("list_contains(?, project_id)")
        params.append(list(window.projects))
    if window.template:
        where.append("template = ?")
        params.append(window.template)
    return where, params


def buckets_sql(window: StatsWindow) -> tuple[str, list]:
    """Rows: template, bucket, runs, succeeded, failed, qc_failed, cancelled, open, durations[3], queued[2], retried."""
    where, params = _where(window)
    sql = f"""SELECT template, strftime(date_trunc(?, day), '%Y-%m-%d') AS bucket, count(*),
  count(*) FILTER (status = 'succeeded' AND outcome IS DISTINCT FROM 'failed'),
  count(*) FILTER (status = 'failed'),
  count(*) FILTER (status = 'succeeded' AND outcome = 'failed'),
  count(*) FILTER (status = 'cancelled'),
  count(*) FILTER (status IN ('queued', 'running')),
  quantile_cont(duration_s, [0.5, 0.9, 0.99]), quantile_cont(queued_s, [0.5, 0.9]), sum(retried)
FROM run_facts WHERE {where} GROUP BY ALL ORDER BY template, bucket"""
    return sql, [window.bucket] + params


def qc_sql(window: StatsWindow) -> tuple[str, list]:
    """Rows: project_id, instrument, runs with a verdict, passed."""
    where, params = _where(window)
    sql = f"""SELECT project_id, coalesce(instrument, ''), count(*), count(*) FILTER (outcome = 'passed')
FROM run_facts WHERE {where} AND status = 'succeeded' AND outcome IS NOT NULL GROUP BY ALL ORDER BY 1, 2"""
    return sql, params


def steps_sql(window: StatsWindow) -> tuple[str, list]:
    """Rows: template, step template, runs of it, failed, median and longest seconds (leaf steps only)."""
    where, params = _where(window)
    sql = f"""SELECT template, step, count(*), count(*) FILTER (failed), quantile_cont(seconds, 0.5), max(seconds)
FROM step_facts WHERE {where} GROUP BY ALL ORDER BY 1, 2"""
    return sql, params


def queue_sql(window: StatsWindow) -> tuple[str, list]:
    """One row: the runs of the window's projects (and template) queued now, whenever launched,
    and the oldest one's launch instant."""
    scope, params = _scope(window)
    where = " AND ".join(["status = 'queued'"] + scope)
    return f"SELECT count(*), min(created_at) FROM run_facts WHERE {where}", params


def recent_sql(last: int) -> tuple[str, list]:
    """Rows: template, runs, failed among each template's `last` ended runs (cancelled left out)."""
    sql = """SELECT template, count(*), count(*) FILTER (status = 'failed') FROM (
  SELECT template, status, row_number() OVER (PARTITION BY template ORDER BY created_at DESC) AS rank
  FROM run_facts WHERE status IN ('succeeded', 'failed')) WHERE rank <= ? GROUP BY ALL ORDER BY 1"""
    return sql, [last]


def bucket_row(row: tuple) -> dict:
    """A buckets_sql row as the store contract's dict."""
    template, bucket, runs, succeeded, failed, qc_failed, cancelled, open_, durations, queued, retried = row
    return {"template": template or "", "bucket": bucket, "runs": runs, "succeeded": succeeded, "failed": failed,
            "qc_failed": qc_failed, "cancelled": cancelled, "open": open_,
            "duration_s": list(durations) if durations else [], "queued_s": list(queued) if queued else [],
            "steps_retried": int(retried)}
