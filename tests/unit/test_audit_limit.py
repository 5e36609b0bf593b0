"""The bound on audit rows from callers without a valid token (metadata/audit_limit.py)."""
from metadata.audit_limit import DROP, OTHERS, RECORD, SUMMARIZE, AnonymousLimit, host_of


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_host_gets_its_rows_then_one_summary_then_nothing_until_the_minute_ends():
    clock = Clock()
    limit = AnonymousLimit(rows=3, seconds=60, clock=clock)
    verdicts = [limit.admit("10.0.0.1:5000")[0] for _ in range(6)]
    assert verdicts == [RECORD, RECORD, RECORD, SUMMARIZE, DROP, DROP]
    assert limit.admit("10.0.0.2:5000")[0] == RECORD  # another host has its own allowance
    clock.now = 60.0
    assert limit.admit("10.0.0.1:6000") == (RECORD, "10.0.0.1")  # a new minute, whatever the port


def test_hosts_beyond_the_limit_share_one_allowance():
    limit = AnonymousLimit(rows=1, addresses=2, clock=Clock())
    assert [limit.admit(f"10.0.0.{i}:1") for i in range(4)] == [
        (RECORD, "10.0.0.0"), (RECORD, "10.0.0.1"), (RECORD, OTHERS), (SUMMARIZE, OTHERS)]


def test_the_host_of_a_peer_address():
    assert (host_of("127.0.0.1:5555"), host_of("::1:5555"), host_of("")) == ("127.0.0.1", "::1", "")
