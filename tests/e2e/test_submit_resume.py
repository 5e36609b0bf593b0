"""`labcommons submit` of a large file, as a real process against a real service: killed midway and
run again, it continues after the last batch it wrote; no entity is lost or written twice."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

ROWS, BATCH = 6000, 200


def cases_tsv(path, rows: int) -> None:
    lines = ["type\tsubmitter_id\tspecies\tage_years"]
    lines += [f"case\tc-{i:05d}\tmouse\t{1 + i % 2}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")


def submit(server, file, project: str) -> subprocess.Popen:
    env = dict(os.environ, LABCOMMONS_DATA_DIR=str(server.settings.data_dir), LABCOMMONS_PORT=str(server.bound_port()))
    env.pop("LABCOMMONS_TOKEN", None)
    return subprocess.Popen([sys.executable, "-m", "labcommons.cli", "submit", str(file), "-p", project,
                             "--batch-size", str(BATCH)], env=env, cwd=file.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def written_before_kill(checkpoint, process: subprocess.Popen) -> int:
    """Kill the CLI (SIGKILL: no clean-up) once a few batches are in; the entities its checkpoint says."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            done = json.loads(checkpoint.read_text())["position"]["entities"]
        except (OSError, ValueError):
            done = 0
        if done >= 3 * BATCH:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return json.loads(checkpoint.read_text())["position"]["entities"]


def test_a_killed_submit_continues_where_it_stopped(server, project, admin, tmp_path):
    file, checkpoint = tmp_path / "cases.tsv", tmp_path / ".cases.tsv.labcommons-submit"
    cases_tsv(file, ROWS)
    done = written_before_kill(checkpoint, submit(server, file, project))
    assert 0 < done < ROWS, "the first run should die midway"
    assert server.guard.wait_idle(60)  # a batch the CLI sent before it died may still commit
    stored_before = admin.page("case", project, limit=1).total
    assert done <= stored_before <= done + BATCH  # at most the batch in flight went in unrecorded

    rerun = submit(server, file, project)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert f"continued after the {done:,} entities" in err
    created, updated, unchanged = map(int, re.search(r"(\d+) were created, (\d+) were updated, (\d+) unchanged", out).groups())
    assert created == ROWS - stored_before and updated == 0 and unchanged == stored_before - done
    sids = [node["submitter_id"] for node in admin.nodes("case", project)]
    assert sorted(sids) == [f"c-{i:05d}" for i in range(ROWS)]  # every row once: none lost, none twice
    assert not checkpoint.exists()  # finished: a third run would start over (and change nothing)
