"""What the benchmarks share: a metadata service in its own process on a fresh data dir.

bench/metadata.py would shadow the `metadata` package, so a benchmark drops bench/ from
sys.path, imports the package, and only then appends bench/ to import this module:

    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
    import metadata.client
    sys.path.append(str(BENCH_DIR))
    from harness import Service
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from thriftpy2.transport import TTransportException

from metadata.client import MetadataClient
from metadata.idl import metadata_thrift as T

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 60


def free_port() -> int:
    """A port nothing listens on now; the service binds it a moment later."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Service:
    """`labcommons metadata serve` on a fresh data dir, as a context manager yielding itself."""

    def __init__(self, data_dir: Path, **settings: str):
        self.data_dir, self.port = Path(data_dir), free_port()
        self.log_path = self.data_dir.parent / "service.log"
        self.env = dict(os.environ, LABCOMMONS_DATA_DIR=str(self.data_dir), LABCOMMONS_PORT=str(self.port),
                        LABCOMMONS_HOST=HOST, **{f"LABCOMMONS_{k.upper()}": v for k, v in settings.items()})
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Service":
        with self.log_path.open("wb") as log:
            # cwd: `-m` puts the working directory first on sys.path, and bench/ would shadow metadata
            self.process = subprocess.Popen([sys.executable, "-m", "labcommons.cli", "metadata", "serve"],
                                            env=self.env, cwd=self.data_dir.parent, stdout=log,
                                            stderr=subprocess.STDOUT)
        self.token = self._wait_ready()
        return self

    def client(self) -> MetadataClient:
        return MetadataClient(HOST, self.port, self.token)

    def _wait_ready(self) -> str:
        token_path = self.data_dir / "admin.token"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"the service exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            token = token_path.read_text().strip() if token_path.exists() else ""
            if token:
                try:
                    with MetadataClient(HOST, self.port, token) as client:
                        client.health()
                    return token
                except (TTransportException, OSError, T.Unauthenticated):
                    pass
            time.sleep(0.02)  # poll interval: the loop ends as soon as the service answers
        sys.exit(f"the service did not answer within {START_TIMEOUT_SECONDS}s:\n{self.log_path.read_text()}")

    def __exit__(self, *exc) -> None:
        """SIGTERM, then wait for the drain and checkpoint; kill only if it hangs."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def cpu_ms(pid: int) -> float:
    """CPU time a process has used (user + system, all threads), from /proc; NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def measurement_batch(name: str, storage: Path) -> list[dict]:
    """A case, sample, experiment and measurement with its imzML and ibd files (not on disk), in
    `storage`: the project's folder of the storage root (the service refuses files elsewhere)."""
    return [{"type": "case", "submitter_id": f"{name}-case", "species": "mouse"},
            {"type": "sample", "submitter_id": f"{name}-sample", "organ": "liver", "preparation": "fresh frozen",
             "cases": {"submitter_id": f"{name}-case"}},
            {"type": "experiment", "submitter_id": f"{name}-exp", "protocol": "p1"},
            {"type": "measurement", "submitter_id": name, "instrument": "timsTOF", "ionisation": "MALDI",
             "polarity": "positive", "samples": {"submitter_id": f"{name}-sample"},
             "experiments": {"submitter_id": f"{name}-exp"}}] + [data_file(name, fmt, storage) for fmt in ("imzML", "ibd")]


def data_file(name: str, fmt: str, storage: Path) -> dict:
    url = (storage.resolve() / f"{name}.{fmt}").as_uri()
    return {"type": "data_file", "submitter_id": f"{name}.{fmt}", "file_name": f"{name}.{fmt}", "data_format": fmt,
            "file_size": 10, "md5sum": "0" * 32, "storage_url": url, "measurements": {"submitter_id": name}}


def create_project(client: MetadataClient, program: str = "BENCH", project: str = "bench") -> str:
    client.submit(program, [{"type": "program", "submitter_id": program}])
    client.submit(project, [{"type": "project", "submitter_id": project, "programs": {"submitter_id": program}}])
    return project
