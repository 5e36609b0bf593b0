"""Alerts: thresholds an admin sets on the workflows' health; crossing one tells every admin, in
the portal and by mail (metadata/notifications.py), once per episode.

The conditions, checked by the service every CHECK_SECONDS (and on demand: check_alerts):
- `success:<template>`: the template's success rate over its last N ended runs (the dashboard's
  definition: failed / (finished + failed); cancelled runs left out) is below the minimum;
- `queue`: a run has waited in the queue longer than the maximum;
- `worker:<name>`: a worker that claimed since the service started has not claimed for that long;
- `quota:<project>`: the project's storage, as the worker last measured it, passes the quota a
  lifecycle rule sets (metadata/lifecycle.py).
An episode begins when a condition first holds: the admins are told, and a reserved `_alert` node
records it as firing, so the next checks say nothing more; it ends at the first check where the
condition no longer holds (the node records that), and the next crossing is a new episode.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from metadata.errors import Invalid
from metadata.idl import metadata_thrift as T
from metadata.store.base import Store, StoredNode, Write, reserved_node, scan
from metadata.store.run_stats_sql import StatsWindow

log = logging.getLogger(__name__)
ALERT_TYPE, SETTINGS_TYPE, SCOPE, SETTINGS_KEY = "_alert", "_alert_settings", "~alerts", "thresholds"
CHECK_SECONDS = 60
MAX_ALERTS = 10_000
MAX_LAST_RUNS = 100
FIELDS = ("min_success_rate", "over_last_runs", "max_queued_seconds", "worker_silent_seconds")


class Alerts:
    def __init__(self, store: Store, stats, notifier, admins):
        """stats: run_stats.RunStats (workers, storage); admins: () -> the admins' user names."""
        self.store, self.stats, self.notifier, self.admins = store, stats, notifier, admins

    def settings(self) -> T.AlertSettings:
        node = self._settings_node()
        return T.AlertSettings(**{k: node.props[k] for k in FIELDS}) if node else T.AlertSettings()

    def set(self, user: str, settings: T.AlertSettings) -> T.AlertSettings:
        _check(settings)
        old = self._settings_node()
        props = {k: getattr(settings, k) for k in FIELDS}
        node = reserved_node(SETTINGS_TYPE, SCOPE, SETTINGS_KEY, props, old, user)
        self.store.apply([Write(node, old.version if old else None)], set())
        return self.settings()

    def check(self) -> list[str]:
        """Tell the admins of each condition that began holding since the last check; the
        conditions that began, as sentences."""
        holding = self.conditions(self.settings())
        states = {n.submitter_id: n for n in scan(self.store, ALERT_TYPE, [SCOPE], MAX_ALERTS)}
        began = [key for key in sorted(holding) if not _firing(states.get(key))]
        ended = [key for key, node in states.items() if _firing(node) and key not in holding]
        writes = [Write(_state(key, True, holding[key], states.get(key)), _version(states.get(key))) for key in began]
        writes += [Write(_state(key, False, states[key].props["message"], states[key]), _version(states[key]))
                   for key in ended]
        if writes:
            self.store.apply(writes, set())   # recorded before telling: a crash never tells twice
        for key in began:
            self._tell(holding[key])
        return [holding[key] for key in began]

    def conditions(self, settings: T.AlertSettings) -> dict[str, str]:
        """Each condition holding now: key -> what to tell."""
        found = {}
        if settings.min_success_rate:
            found.update(self._success(settings))
        if settings.max_queued_seconds:
            queued, oldest = self.store.run_stats(_now())["queue"]
            age = _age(oldest)
            if queued and age > settings.max_queued_seconds:
                found["queue"] = (f"{queued} run(s) queued; the oldest has waited {age:.0f} s "
                                  f"(the limit is {settings.max_queued_seconds} s): is a worker running?")
        if settings.worker_silent_seconds:
            found.update({f"worker:{w.worker}": f"worker {w.worker} has not claimed runs for {w.seconds_ago:.0f} s "
                                                f"(the limit is {settings.worker_silent_seconds} s)"
                          for w in self.stats.workers() if w.seconds_ago > settings.worker_silent_seconds})
        found.update({f"quota:{u.project_id}": f"project {u.project_id} uses {u.bytes / 1024 ** 3:.1f} GiB, more "
                                               f"than its quota of {u.quota_bytes / 1024 ** 3:.1f} GiB"
                      for u in self.stats.storage(None) if u.quota_bytes and u.bytes > u.quota_bytes})
        return found

    def _success(self, settings: T.AlertSettings) -> dict[str, str]:
        found = {}
        for template, runs, failed in self.store.recent_runs(settings.over_last_runs):
            rate = (runs - failed) / runs
            if runs >= settings.over_last_runs and rate < settings.min_success_rate:
                found[f"success:{template}"] = (f"{template}: {runs - failed} of its last {runs} runs succeeded "
                                                f"({rate:.0%}, below {settings.min_success_rate:.0%})")
        return found

    def _tell(self, message: str) -> None:
        admins = self.admins() if self.notifier is not None else []
        log.warning("alert: %s (telling %s)", message, ", ".join(admins) or "no admin account")
        for admin in admins:
            self.notifier.tell(admin, f"labcommons alert: {message}", f"{message}\n\nThe dashboard: /dashboard\n",
                               "/dashboard", "alert")

    def _settings_node(self) -> StoredNode | None:
        return self.store.find(SCOPE, [SETTINGS_KEY]).get(SETTINGS_KEY)


def watch(alerts: Alerts, stopping, every: float = CHECK_SECONDS) -> None:
    """Check the alerts every `every` seconds until `stopping` (a threading.Event) is set."""
    while not stopping.wait(every):
        try:
            alerts.check()
        except Exception:   # a check that fails must not end the watch: the next one may succeed
            log.exception("the alert check failed; trying again in %s s", every)


def _check(settings: T.AlertSettings) -> None:
    if not 0 <= settings.min_success_rate <= 1:
        raise Invalid(f"min_success_rate: {settings.min_success_rate} is not a rate; give 0 (off) to 1")
    if not 1 <= settings.over_last_runs <= MAX_LAST_RUNS:
        raise Invalid(f"over_last_runs: {settings.over_last_runs}; give 1 to {MAX_LAST_RUNS} runs")
    for name in ("max_queued_seconds", "worker_silent_seconds"):
        if getattr(settings, name) < 0:
            raise Invalid(f"{name}: {getattr(settings, name)} is negative; give 0 (off) or more seconds")


def _firing(node: StoredNode | None) -> bool:
    return bool(node and node.props.get("firing"))


def _state(key: str, firing: bool, message: str, old: StoredNode | None) -> StoredNode:
    moment = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    props = {"firing": firing, "message": message, "since": moment if firing else old.props.get("since", ""),
             **({} if firing else {"ended": moment})}
    return reserved_node(ALERT_TYPE, SCOPE, key, props, old, "service")


def _version(node: StoredNode | None):
    return node.version if node else None


def _now() -> StatsWindow:
    """A window of no runs: run_stats then costs only the queue, which is counted whenever launched."""
    moment = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    return StatsWindow(moment, moment)


def _age(instant: str | None) -> float:
    if not instant:
        return 0.0
    return time.time() - datetime.fromisoformat(instant).timestamp()
