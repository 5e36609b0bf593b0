"""`labcommons up`'s banner says what the enabled triggers start (the demo replays the shipped QC
trigger on a few measurements), after the demo's own summary, read from its child's log."""
import sys
from types import SimpleNamespace

import pytest

from labcommons.up import ServiceFailed, _seeded, _spawn, trigger_lines


def test_the_banner_names_each_enabled_trigger_and_the_runs_of_its_template():
    qc = SimpleNamespace(name="ims-qc-on-new-measurement", description="Run ims-qc on each new measurement.",
                         template="ims-qc")
    lines = trigger_lines([qc], {"ims-qc": 12}, "http://127.0.0.1:8050/runs")
    assert lines[0] == "  trigger    ims-qc-on-new-measurement: Run ims-qc on each new measurement."
    assert "12 ims-qc runs so far" in lines[1] and "http://127.0.0.1:8050/runs" in lines[1]
    assert "1 ims-qc run so far" in trigger_lines([qc], {"ims-qc": 1}, "")[1]


def test_the_demo_childs_summary_is_read_from_its_log_and_a_failure_stops_up_with_it(tmp_path):
    log = tmp_path / "demo.log"
    log.write_text("an earlier start's output\n")
    start = log.stat().st_size
    ok = _spawn([sys.executable, "-c", "print('demo commons: 12 nodes created')"], log)
    assert _seeded(ok, log, start) == "demo commons: 12 nodes created"
    start = log.stat().st_size
    failed = _spawn([sys.executable, "-c", "print('no service'); raise SystemExit(3)"], log)
    with pytest.raises(ServiceFailed, match=r"(?s)seeding the demo commons failed \(exit code 3; .*no service"):
        _seeded(failed, log, start)
