"""Fixtures for tests with real processes.

- service:  start_service() runs `labcommons metadata serve` as a child process on a free port
            over one data dir, waits until it answers (polling, no fixed sleeps), and returns a
            handle with .client(), .kill() (SIGKILL), .terminate() (SIGTERM) and .restart().
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metadata.client import MetadataClient

READY_SECONDS = 90  # a bound for failures only (it polls): a loaded machine starts the service slowly


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    def __init__(self, data_dir: Path):
        self.data_dir, self.port = data_dir, free_port()
        self.env = dict(os.environ, LABCOMMONS_DATA_DIR=str(data_dir), LABCOMMONS_PORT=str(self.port))
        self.env.pop("LABCOMMONS_TOKEN", None)
        self.process: subprocess.Popen | None = None
        self.log = data_dir.parent / "service.log"

    def start(self) -> "ServiceProcess":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen([sys.executable, "-m", "labcommons.cli", "metadata", "serve"],
                                            env=self.env, stdout=sink, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"service exited:\n{self.log.read_text()}"
            try:
                with self.client() as client:
                    client.health()
                return
            except Exception:
                time.sleep(0.05)
        raise AssertionError(f"service not ready in {READY_SECONDS}s:\n{self.log.read_text()}")

    def client(self, timeout_seconds: float = 120) -> MetadataClient:
        token = (self.data_dir / "admin.token").read_text().strip()
        return MetadataClient("127.0.0.1", self.port, token, timeout_seconds)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def terminate(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def restart(self) -> "ServiceProcess":
        return self.start()


@pytest.fixture
def start_service(tmp_path):
    started: list[ServiceProcess] = []

    def start() -> ServiceProcess:
        service = ServiceProcess(tmp_path / "data").start()
        started.append(service)
        return service

    yield start
    for service in started:
        if service.process and service.process.poll() is None:
            service.kill()
