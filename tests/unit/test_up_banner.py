"""`labcommons up`'s banner says what the enabled triggers start (the demo's files fire the shipped QC trigger)."""
from types import SimpleNamespace

from labcommons.up import trigger_lines


def test_the_banner_names_each_enabled_trigger_and_the_runs_of_its_template():
    qc = SimpleNamespace(name="ims-qc-on-new-measurement", description="Run ims-qc on each new measurement.",
                         template="ims-qc")
    lines = trigger_lines([qc], {"ims-qc": 12}, "http://127.0.0.1:8050/runs")
    assert lines[0] == "  trigger    ims-qc-on-new-measurement: Run ims-qc on each new measurement."
    assert "12 ims-qc runs so far" in lines[1] and "http://127.0.0.1:8050/runs" in lines[1]
    assert "1 ims-qc run so far" in trigger_lines([qc], {"ims-qc": 1}, "")[1]
