"""The workflows dashboard: how the commons' runs are doing, computed by the service from the run
records (the store groups them: Store.run_stats), scoped to the projects the caller may read.

Per template and day or week: runs by outcome (succeeded, failed, QC failed, cancelled, still
open), the success rate, duration and queue-time percentiles, retried steps; QC pass rate per
project and instrument; the slowest and most failing steps; now: the queue, the workers' last
claims and each project's storage use as the worker last measured it (report_storage).

Success rate = runs the engine finished (succeeded, with or without a QC failure) / runs that
ended other than by a user's cancel: a QC failure is the data's verdict, not the workflow's.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from metadata import auth
from metadata.auth import Identity
from metadata.errors import Invalid
from metadata.idl import metadata_thrift as T
from metadata.store.base import Store, StoredNode, Write, reserved_node, scan
from metadata.store.run_stats_sql import BUCKETS, StatsWindow

STORAGE_TYPE, STORAGE_SCOPE = "_storage", "~storage"
DEFAULT_DAYS = 30
MAX_DAYS = 366 * 2
TOP_STEPS = 10
MAX_PROJECTS_REPORTED = 10_000


def window_of(who: Identity, query: T.RunStatsQuery, now: datetime) -> StatsWindow:
    """The runs a query covers, checked: Invalid naming the field."""
    if query.bucket not in BUCKETS:
        raise Invalid(f"bucket: {query.bucket!r} is not a bucket; choose from {', '.join(BUCKETS)}")
    before = _instant("before", query.before) if query.before else now
    since = _instant("since", query.since) if query.since else before - timedelta(days=DEFAULT_DAYS)
    if not since < before or before - since > timedelta(days=MAX_DAYS):
        raise Invalid(f"since: give an instant before `before`, at most {MAX_DAYS} days earlier")
    projects = auth.listing_projects(who, query.project_id)
    return StatsWindow(_text(since), _text(before), query.bucket,
                       None if projects is None else tuple(projects), query.template or "")


def _instant(field: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{field}: {text!r} is not an ISO 8601 date or instant (2026-12-01 or 2026-12-01T08:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _text(moment: datetime) -> str:
    """As run records write instants (runs.now), so that texts compare as instants do."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


class RunStats:
    def __init__(self, store: Store, registry):
        self.store, self.registry = store, registry
        self._storage: dict[str, StoredNode] | None = None   # project -> its use; this process is the only writer

    def compute(self, who: Identity, query: T.RunStatsQuery) -> T.RunStats:
        now = datetime.now(timezone.utc)
        window = window_of(who, query, now)
        found = self.store.run_stats(window)
        steps = [_step(s) for s in found["steps"]]
        queued, oldest = found["queue"]
        return T.RunStats(
            rows=[_row(b) for b in found["buckets"]], qc=[_qc(q) for q in found["qc"]],
            slowest_steps=sorted(steps, key=lambda s: -s.duration_p50_s)[:TOP_STEPS],
            failing_steps=sorted((s for s in steps if s.failed), key=lambda s: (-s.failed, -s.runs))[:TOP_STEPS],
            queued=queued, oldest_queued_s=_age(oldest, now), workers=self.workers(), storage=self.storage(window.projects),
            since=window.since, before=window.before)

    def workers(self) -> list[T.WorkerSeen]:
        """Each worker that claimed since the service started, and how long ago (the registry's
        in-memory record of claims: a worker is alive while it claims, every poll)."""
        seen = dict(self.registry._seen)   # noqa: SLF001 read only; the registry keeps it for requeuing
        return [T.WorkerSeen(worker=name, seconds_ago=round(time.monotonic() - at, 1))
                for name, at in sorted(seen.items())]

    # -- storage use ------------------------------------------------------------------------

    def report_storage(self, who: Identity, uses: list[T.StorageUse]) -> None:
        """Keep each project's storage use as the worker measured it (one record per project)."""
        if len(uses) > MAX_PROJECTS_REPORTED:
            raise Invalid(f"uses: {len(uses)} projects; give at most {MAX_PROJECTS_REPORTED}")
        for index, use in enumerate(uses):
            if not use.project_id or use.bytes < 0 or use.quota_bytes < 0:
                raise Invalid(f"uses[{index}]: give a project_id and bytes and quota_bytes of 0 or more")
        stored = self._stored()
        writes = [Write(reserved_node(STORAGE_TYPE, STORAGE_SCOPE, u.project_id,
                                      {"bytes": u.bytes, "quota_bytes": u.quota_bytes,
                                       "measured_at": u.measured_at or _text(datetime.now(timezone.utc))},
                                      stored.get(u.project_id), who.user),
                        stored[u.project_id].version if u.project_id in stored else None) for u in uses]
        self.store.apply(writes, set())
        stored.update({w.node.submitter_id: w.node for w in writes})

    def _stored(self) -> dict[str, StoredNode]:
        """The storage records, read once (the dashboard is asked often, the worker reports hourly)."""
        if self._storage is None:
            self._storage = {n.submitter_id: n for n in scan(self.store, STORAGE_TYPE, [STORAGE_SCOPE], MAX_PROJECTS_REPORTED)}
        return self._storage

    def storage(self, projects) -> list[T.StorageUse]:
        """The last measured use of each project the caller may read, largest first."""
        nodes = list(self._stored().values())
        uses = [T.StorageUse(project_id=n.submitter_id, bytes=int(n.props["bytes"]),
                             measured_at=n.props.get("measured_at", ""), quota_bytes=int(n.props.get("quota_bytes", 0)))
                for n in nodes if projects is None or n.submitter_id in projects]
        return sorted(uses, key=lambda u: -u.bytes)


def _age(instant: str | None, now: datetime) -> float:
    """Seconds since an instant (0 for none)."""
    return max(0.0, round((now - datetime.fromisoformat(instant)).total_seconds(), 1)) if instant else 0.0


def _row(b: dict) -> T.RunStatsRow:
    finished = b["succeeded"] + b["qc_failed"]
    judged = finished + b["failed"]
    durations, queued = (b["duration_s"] or [-1.0] * 3), (b["queued_s"] or [-1.0] * 2)
    return T.RunStatsRow(template=b["template"], bucket=b["bucket"], runs=b["runs"], succeeded=b["succeeded"],
                         failed=b["failed"], qc_failed=b["qc_failed"], cancelled=b["cancelled"], open=b["open"],
                         success_rate=round(finished / judged, 4) if judged else -1.0,
                         duration_p50_s=_round(durations[0]), duration_p90_s=_round(durations[1]),
                         duration_p99_s=_round(durations[2]), queued_p50_s=_round(queued[0]),
                         queued_p90_s=_round(queued[1]), steps_retried=b["steps_retried"])


def _qc(q: dict) -> T.QcStatsRow:
    return T.QcStatsRow(project_id=q["project_id"], instrument=q["instrument"], runs=q["runs"], passed=q["passed"],
                        pass_rate=round(q["passed"] / q["runs"], 4) if q["runs"] else -1.0)


def _step(s: dict) -> T.StepStatsRow:
    return T.StepStatsRow(template=s["template"] or "", step=s["step"], runs=s["runs"], failed=s["failed"],
                          duration_p50_s=_round(s["p50_s"]), duration_max_s=_round(s["max_s"]))


def _round(value) -> float:
    return -1.0 if value is None else round(float(value), 3)
