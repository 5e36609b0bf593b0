"""The storage lifecycle on real runs of the local engine: a succeeded ims-qc run's shards are
deleted once the rule's age has passed, its registered outputs kept, the deletion recorded on the
run and in the audit log, and the same measurement runs again; a run whose registered output is gone
is kept; a deletion that stops half way is recorded as far as it went; the CLI shows and applies
the plan."""
import dataclasses
import datetime
import json

import pytest

from ground.storage import run_dir
from labcommons.demo import data_file_entity
from labcommons.demo.imzml import write_imzml_pair
from metadata import templates
from metadata.idl import metadata_thrift as T
from metadata.lifecycle import load_rules
from workflow_templates.janitor import Janitor
from workflow_templates.worker import Worker
from tests.workflows.runs.conftest import submit_measurement
from tests.workflows.runs.test_worker import describe, run_until

SHIPPED = templates.load()
LATER = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=31)


@pytest.fixture
def settings(settings):
    return dataclasses.replace(settings, templates_dir=None)   # ims-qc as it ships, no trigger


@pytest.fixture
def qc_run(admin, project, settings):
    """A succeeded ims-qc run of a small measurement: (worker, measurement id, run)."""
    files = [data_file_entity(meta, "m-life") for meta in
             write_imzml_pair(settings.storage_root / project, "m-life", 6, 5, seed=2)]
    submit_measurement(admin, project, "m-life", files)
    measurement = admin.find(project, "m-life")["id"]
    worker = Worker(admin, SHIPPED, settings.storage_root, name="w-life", capacity=2)
    run = admin.launch("ims-qc", [measurement], {"spectra-per-shard": "10"}).run
    done = run_until(worker, admin, run.id, seconds=240)
    assert done.status == "succeeded", describe(done)
    return worker, measurement, done


def janitor(admin, settings, when=LATER) -> Janitor:
    return Janitor(admin, SHIPPED, settings.storage_root, load_rules(None, SHIPPED), clock=lambda: when)


def test_a_succeeded_runs_shards_go_after_the_age_and_its_outputs_stay(admin, settings, qc_run):
    worker, measurement, run = qc_run
    folder = run_dir(settings.storage_root, run.project_id, run.id)
    shards = sorted(folder.glob("outputs/qc/shards/*.npz"))
    assert len(shards) == 3
    assert janitor(admin, settings, datetime.datetime.now(datetime.timezone.utc)).plan() == []  # too young
    [planned] = janitor(admin, settings).plan()   # a dry run deletes nothing
    assert (planned.rule, planned.action, planned.run_id) == ("ims-qc-intermediates", "delete", run.id)
    assert {"outputs/qc/index/index.npz", "outputs/qc/shards/0-10.npz"} <= {p for p, _ in planned.files}
    assert all(s.exists() for s in shards)

    worker.janitor = janitor(admin, settings)   # the worker sweeps between ticks, once per sweep_seconds
    worker.sweep()
    worker.sweep()
    assert not (folder / "outputs" / "qc" / "index").exists() and not (folder / "outputs" / "qc" / "shards").exists()
    assert (folder / "outputs" / "qc" / "report.json").exists() and (folder / "inputs" / "input.imzML").exists()
    assert all(admin.get(i) for i in run.output_ids)
    recorded = admin.run(run.id).deletions
    assert [(d.rule, d.files, d.bytes_freed, d.complete) for d in recorded] == [
        ("ims-qc-intermediates", len(planned.files), planned.bytes, True)]
    assert recorded[0].at and "outputs/qc/shards/0-10.npz" in recorded[0].paths
    [entry] = admin.audit(action="record_deletion").entries
    assert entry.target == run.id and json.loads(entry.detail_json)["bytes_freed"] == planned.bytes
    assert janitor(admin, settings).plan() == []   # nothing is left to delete
    [use] = admin.run_stats().storage   # each sweep reports the projects' storage use, after its deletions
    assert (use.project_id, use.bytes) == (run.project_id, janitor(admin, settings).usage()[run.project_id])

    again = admin.launch("ims-qc", [measurement], {"spectra-per-shard": "10"}, force=True).run
    assert run_until(worker, admin, again.id, seconds=240).status == "succeeded"


def test_a_run_whose_output_is_gone_is_kept_and_a_deletion_cut_short_is_recorded_as_far_as_it_went(
        admin, settings, qc_run, cli, tmp_path, monkeypatch):
    _, _, run = qc_run
    folder = run_dir(settings.storage_root, run.project_id, run.id)
    tic = folder / "outputs" / "qc" / "tic.png"
    tic.rename(tmp_path / "tic.png")
    [kept] = janitor(admin, settings).plan()
    assert kept.action == "keep" and "is not there" in kept.reason and janitor(admin, settings).apply() == []
    (tmp_path / "tic.png").rename(tic)

    [planned] = janitor(admin, settings).plan()
    blocked = folder / "outputs" / "qc" / "shards" / "10-20.npz"
    blocked.unlink()
    blocked.symlink_to(folder / "outputs" / "qc" / "report.json")   # a file swapped for a link since the plan
    [deletion] = janitor(admin, settings).apply([planned])
    assert not deletion.complete and "10-20.npz" in deletion.message
    gone = [p for p, _ in planned.files][:deletion.files]
    assert gone and all(not (folder / p).exists() for p in gone) and blocked.is_symlink()
    [recorded] = admin.run(run.id).deletions
    assert recorded.paths == gone and not recorded.complete and (folder / "outputs" / "qc" / "report.json").exists()
    for bad, message in ((T.RunDeletion(run_id=run.id, rule="Bad Rule"), "rule: name the lifecycle rule"),
                         (T.RunDeletion(run_id=run.id, rule="r", bytes_freed=-1), "bytes_freed: give the bytes")):
        with pytest.raises(T.ValidationError, match=message):
            admin.record_deletion(bad)

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "now.yaml").write_text("name: now\nwhen: {template: ims-qc, status: [succeeded], age_days: 0}\n"
                                    "delete: [outputs/qc/shards/*.npz]\n")
    monkeypatch.setenv("LABCOMMONS_LIFECYCLE_DIR", str(rules))
    shown = cli("lifecycle", "--dry-run", "-o", "json")
    assert shown.exit_code == 0, shown.output
    [row] = json.loads(shown.stdout)   # the link stays: links are never deleted
    assert (row["rule"], row["action"], row["run"], row["files"]) == ("now", "delete", run.id, 1)
    applied = cli("lifecycle")
    assert applied.exit_code == 0 and "deleted 1 file(s) of 1 run(s)" in applied.output
    assert [d.rule for d in admin.run(run.id).deletions] == ["ims-qc-intermediates", "now"]
    (rules / "now.yaml").write_text("name: now\nwhen: {status: [succeeded], age_days: -3}\ndelete: [x]\n")
    refused = cli("lifecycle", "--dry-run")
    assert refused.exit_code == 1 and "lifecycle rule now (now.yaml): when.age_days: -3 is negative" in refused.output
