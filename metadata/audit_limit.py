"""A bound on the audit rows that callers without a valid token can cause.

Anyone who reaches the port can make refused calls; recording each one would let them fill the
audit log (and the store) at the network's speed. Per client host and minute, the first
`rows` refusals are recorded, the next one becomes a single summary row, the rest are dropped.
Hosts beyond `addresses` in one minute share one allowance, so many addresses cannot multiply it
without bound either.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

ROWS_PER_MINUTE = 10
MAX_ADDRESSES = 64
OTHERS = "(other addresses)"
RECORD, SUMMARIZE, DROP = "record", "summarize", "drop"


@dataclass
class _Window:
    started: float
    calls: int = 0


class AnonymousLimit:
    def __init__(self, rows: int = ROWS_PER_MINUTE, seconds: float = 60.0, addresses: int = MAX_ADDRESSES,
                 clock=time.monotonic):
        self.rows, self.seconds, self.addresses, self._clock = rows, seconds, addresses, clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def admit(self, client: str) -> tuple[str, str]:
        """(RECORD, SUMMARIZE or DROP, the host it was counted under) for one refused call."""
        host = host_of(client)
        with self._lock:
            now = self._clock()
            self._windows = {h: w for h, w in self._windows.items() if now - w.started < self.seconds}
            if host not in self._windows and len(self._windows) >= self.addresses:
                host = OTHERS
            window = self._windows.setdefault(host, _Window(now))
            window.calls += 1
            calls = window.calls
        if calls <= self.rows:
            return RECORD, host
        return (SUMMARIZE if calls == self.rows + 1 else DROP), host

    def summary(self, host: str) -> str:
        return (f"more than {self.rows} calls without a valid token from {host} within {self.seconds:.0f} s; "
                "the rest of them are not recorded")


def host_of(client: str) -> str:
    """The host of a "host:port" peer address (IPv6 hosts keep their colons)."""
    return client.rsplit(":", 1)[0] if ":" in client else client
