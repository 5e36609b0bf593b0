"""The service as a real process: crash safety under SIGKILL, graceful stop under SIGTERM."""
import threading
import time

from metadata.idl import metadata_thrift as T

BIG = 5000


def create_project(client, project="crash"):
    client.submit("P", [{"type": "program", "submitter_id": "P"}])
    client.submit(project, [{"type": "project", "submitter_id": project, "programs": {"submitter_id": "P"}}])


def cases(prefix, count):
    return [{"type": "case", "submitter_id": f"{prefix}-{i:05}", "species": "mouse", "age_years": i % 90}
            for i in range(count)]


def submit_in_background(service, entities):
    """Send a batch from a thread; the outcome (result or exception) lands in the returned list."""
    outcome = []

    def run():
        try:
            with service.client() as client:
                outcome.append(client.submit("crash", entities))
        except Exception as error:  # the connection dies with the service: expected
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_sigkill_mid_batch_keeps_all_of_it_or_none_and_every_earlier_batch(start_service):
    service = start_service()
    with service.client() as client:
        create_project(client)
        for b in range(3):
            client.submit("crash", cases(f"early{b}", 500))
        started = time.monotonic()
        client.submit("crash", cases("timing", BIG))
        full_batch_seconds = time.monotonic() - started
    outcomes = []
    for n, fraction in enumerate((0.2, 0.5, 0.8, 0.95)):
        thread, outcome = submit_in_background(service, cases(f"big{n}", BIG))
        time.sleep(full_batch_seconds * fraction)
        service.kill()
        thread.join(30)
        service.restart()
        with service.client() as client:
            page = client.page("case", "crash", limit=1)
            held = sum(1 for node in client.nodes("case", "crash") if node["submitter_id"].startswith(f"big{n}-"))
            assert held in (0, BIG), f"kill at {fraction:.0%} of the batch left {held} of {BIG} nodes"
            for b in range(3):
                assert client.find("crash", f"early{b}-00499")["version"] == 1
            outcomes.append(held)
            assert page.total == 1500 + BIG + sum(outcomes)
    assert 0 in outcomes  # at least one kill landed before the commit, so the test did test something


def test_sigterm_drains_a_call_in_flight_and_checkpoints(start_service):
    service = start_service()
    with service.client() as client:
        create_project(client)
    thread, outcome = submit_in_background(service, cases("drain", BIG))
    time.sleep(0.3)
    assert service.terminate() == 0
    thread.join(30)
    assert isinstance(outcome[0], T.SubmitResult) and outcome[0].created == BIG
    assert not (service.data_dir / "metadata.duckdb.wal").exists()
    service.restart()
    with service.client() as client:
        assert client.page("case", "crash", limit=1).total == BIG
