"""`labcommons stats`: the workflows dashboard in the terminal (the service's run_stats);
`labcommons alerts`: the thresholds that tell the admins when the workflows are unwell."""
from __future__ import annotations

import json

import click

from labcommons.cli import Context, main, out, reports_errors
from labcommons.cli_output import Column, emit, output_option
from metadata.idl import metadata_thrift as T

GIB = 1024 ** 3


def _seconds(value: float) -> str:
    return "" if value < 0 else f"{value:.0f}"


def _share(value: float) -> str:
    return "" if value < 0 else f"{value:.0%}"


SECTIONS = {
    "runs": ("rows", (
        Column("template", lambda r: r.template), Column("from", lambda r: r.bucket),
        Column("runs", lambda r: r.runs), Column("succeeded", lambda r: r.succeeded), Column("failed", lambda r: r.failed),
        Column("qc failed", lambda r: r.qc_failed), Column("cancelled", lambda r: r.cancelled),
        Column("open", lambda r: r.open, wide=True), Column("success", lambda r: _share(r.success_rate)),
        Column("p50 s", lambda r: _seconds(r.duration_p50_s)), Column("p90 s", lambda r: _seconds(r.duration_p90_s)),
        Column("p99 s", lambda r: _seconds(r.duration_p99_s), wide=True),
        Column("queued p50 s", lambda r: _seconds(r.queued_p50_s), drops=True),
        Column("queued p90 s", lambda r: _seconds(r.queued_p90_s), wide=True),
        Column("retried steps", lambda r: r.steps_retried, drops=True))),
    "qc": ("qc", (
        Column("project", lambda q: q.project_id), Column("instrument", lambda q: q.instrument or "(unknown)"),
        Column("runs", lambda q: q.runs), Column("passed", lambda q: q.passed), Column("pass rate", lambda q: _share(q.pass_rate)))),
    "slowest steps": ("slowest_steps", (
        Column("template", lambda s: s.template), Column("step", lambda s: s.step), Column("runs", lambda s: s.runs),
        Column("p50 s", lambda s: _seconds(s.duration_p50_s)), Column("max s", lambda s: _seconds(s.duration_max_s)))),
    "most failing steps": ("failing_steps", (
        Column("template", lambda s: s.template), Column("step", lambda s: s.step), Column("runs", lambda s: s.runs),
        Column("failed", lambda s: s.failed))),
    "storage": ("storage", (
        Column("project", lambda u: u.project_id), Column("GiB", lambda u: f"{u.bytes / GIB:.2f}"),
        Column("quota GiB", lambda u: f"{u.quota_bytes / GIB:.0f}" if u.quota_bytes else ""),
        Column("measured", lambda u: u.measured_at))),
}


@click.command()
@click.option("--project", default="", help="One project (default: every project you may read).")
@click.option("--template", default="", help="One workflow template (default: all).")
@click.option("--week", "bucket", flag_value="week", help="Group by week (Monday first) rather than by day.")
@click.option("--day", "bucket", flag_value="day", default=True, help="Group by day (the default).")
@click.option("--since", default="", help="From this date or instant (default: 30 days ago).")
@click.option("--before", default="", help="Until this date or instant (default: now).")
@output_option
@click.pass_obj
@reports_errors
def stats(obj: Context, project: str, template: str, bucket: str, since: str, before: str, output: str):
    """How the workflows are doing: runs by outcome per template and day (or week), success rate,
    durations, queue, workers, QC pass rates, slowest and most failing steps, storage use."""
    found = obj.client.run_stats(project, template, bucket, since, before)
    if output == "json":
        click.echo(json.dumps(_as_json(found), indent=2))
        return
    out.print(f"runs created {found.since} to {found.before}; now: {found.queued} queued"
              + (f" (the oldest for {found.oldest_queued_s:.0f} s)" if found.queued else "") + "; workers: "
              + (", ".join(f"{w.worker} ({w.seconds_ago:.0f} s ago)" for w in found.workers) or "none seen"),
              highlight=False, soft_wrap=True)
    for title, (field, columns) in SECTIONS.items():
        rows = getattr(found, field)
        if rows:
            out.rule(title)
            emit(out, rows, columns, output)


def _as_json(found) -> dict:
    """Every section, each row with every column, plus the queue and the workers."""
    sections = {field: [{c.header: c.value(r) for c in columns} for r in getattr(found, field)]
                for field, columns in SECTIONS.values()}
    return {"since": found.since, "before": found.before, "queued": found.queued,
            "oldest_queued_s": found.oldest_queued_s,
            "workers": [{"worker": w.worker, "seconds_ago": w.seconds_ago} for w in found.workers], **sections}


@click.command()
@click.option("--min-success-rate", type=float, help="Alert below this success rate (0 to 1; 0: off).")
@click.option("--over-last-runs", type=int, help="... over each template's last N ended runs.")
@click.option("--max-queued", type=int, help="Alert when a run has been queued longer than this many seconds (0: off).")
@click.option("--worker-silent", type=int, help="Alert when a worker has not claimed for this many seconds (0: off).")
@click.option("--check", is_flag=True, help="Check the thresholds now (the service does every minute).")
@click.pass_obj
@reports_errors
def alerts(obj: Context, min_success_rate, over_last_runs, max_queued, worker_silent, check: bool):
    """Show or set the alert thresholds (admin); crossing one tells every admin once per episode."""
    given = {"min_success_rate": min_success_rate, "over_last_runs": over_last_runs,
             "max_queued_seconds": max_queued, "worker_silent_seconds": worker_silent}
    current = obj.client.alert_settings()
    if any(v is not None for v in given.values()):
        current = obj.client.set_alert_settings(T.AlertSettings(**{
            k: getattr(current, k) if v is None else v for k, v in given.items()}))
    off = lambda value, text: text if value else "off"  # noqa: E731
    out.print(f"success rate below {off(current.min_success_rate, f'{current.min_success_rate:.0%}')} over the last "
              f"{current.over_last_runs} runs; queued longer than {off(current.max_queued_seconds, f'{current.max_queued_seconds} s')}; "
              f"worker silent for {off(current.worker_silent_seconds, f'{current.worker_silent_seconds} s')}",
              highlight=False, soft_wrap=True)
    if check:
        began = obj.client.check_alerts()
        out.print("\n".join(f"alert: {a}" for a in began) or "no new alert", highlight=False, soft_wrap=True)


main.add_command(stats)
main.add_command(alerts)
