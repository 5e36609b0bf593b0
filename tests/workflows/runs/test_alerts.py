"""Alerts on real runs: an admin sets thresholds; crossing one tells every admin in the portal and
by mail once per episode (not once per run or per check); an episode that ended can begin again."""
import time

import pytest

from metadata.idl import metadata_thrift as T
from tests.workflows.runs.test_worker import run_until, worker  # noqa: F401 (worker: a fixture)


def ran(worker, admin, measurement, mode: str, seq: int) -> None:
    run = admin.launch("size-report", [measurement], {"mode": mode}, force=True).run
    assert run_until(worker, admin, run.id).status == ("failed" if mode == "fail" else "succeeded"), seq


def test_a_falling_success_rate_tells_the_admins_once_per_episode(admin, client_for, worker, measurement, settings):
    admin.save_account("ada", "a long password 1", ["admin"])
    ada = client_for("ada", roles=["admin"])
    assert admin.set_alert_settings(T.AlertSettings(min_success_rate=0.9, over_last_runs=2)).min_success_rate == 0.9
    ran(worker, admin, measurement, "ok", 1)
    assert admin.check_alerts() == []   # one run: too few to judge
    ran(worker, admin, measurement, "fail", 2)
    assert admin.check_alerts() == ["size-report: 1 of its last 2 runs succeeded (50%, below 90%)"]
    ran(worker, admin, measurement, "fail", 3)
    assert admin.check_alerts() == []   # the same episode: nothing more is told
    [note] = ada.notifications()
    assert note.subject == "labcommons alert: size-report: 1 of its last 2 runs succeeded (50%, below 90%)"
    mails = [m for m in (settings.data_dir / "outbox").glob("*.eml") if b"labcommons alert" in m.read_bytes()]
    assert note.link == "/dashboard" and len(mails) == 1 and b"To: ada@localhost" in mails[0].read_bytes()

    ran(worker, admin, measurement, "ok", 4)
    ran(worker, admin, measurement, "ok", 5)
    assert admin.check_alerts() == []   # the episode ends
    ran(worker, admin, measurement, "fail", 6)
    ran(worker, admin, measurement, "fail", 7)
    assert admin.check_alerts() == ["size-report: 0 of its last 2 runs succeeded (0%, below 90%)"]
    assert len(ada.notifications()) == 2


def test_a_run_waiting_a_silent_worker_a_full_project_and_bad_thresholds(admin, measurement, project, cli):
    admin.set_alert_settings(T.AlertSettings(max_queued_seconds=1, worker_silent_seconds=1))
    admin.launch("size-report", [measurement])
    admin.claim_runs("w-quiet", 0)   # a worker that claims once, then falls silent
    admin.report_storage([T.StorageUse(project_id=project, bytes=3 * 1024 ** 3, quota_bytes=2 * 1024 ** 3)])
    assert admin.check_alerts() == [f"project {project} uses 3.0 GiB, more than its quota of 2.0 GiB"]
    time.sleep(1.5)
    queue, worker_ = admin.check_alerts()
    assert queue.startswith("1 run(s) queued; the oldest has waited") and "is a worker running?" in queue
    assert worker_.startswith("worker w-quiet has not claimed runs for")
    assert admin.check_alerts() == []
    shown = cli("alerts", "--min-success-rate", "0.8", "--check")
    assert shown.exit_code == 0 and "success rate below 80% over the last 20 runs; queued longer than 1 s" in shown.output
    assert "no new alert" in shown.output and admin.alert_settings().max_queued_seconds == 1
    assert "min_success_rate: 2.0 is not a rate" in cli("alerts", "--min-success-rate", "2").output
    for bad, field in ((T.AlertSettings(min_success_rate=1.5), "min_success_rate: 1.5 is not a rate"),
                       (T.AlertSettings(over_last_runs=0), "over_last_runs: 0; give 1 to 100"),
                       (T.AlertSettings(worker_silent_seconds=-1), "worker_silent_seconds: -1 is negative")):
        with pytest.raises(T.ValidationError, match=field):
            admin.set_alert_settings(bad)
