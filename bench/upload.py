"""Resumable uploads through the portal: how fast a file travels from `labcommons upload`'s client
to the staging area, and what completion (reading the parts back into one file with its MD5)
costs.

Starts the metadata service and the portal (`labcommons portal serve`, one process) on loopback,
each its own process, writes a file of `--mib` random bytes and sends it with the client's
`send` (chunks of `--chunk-mib` with their Content-MD5, the MD5 and SHA-1 computed from the same
reads, as for an ibd; then the completion, where the portal computes an ibd's MD5 and SHA-1),
`--rounds` times.
Prints `name: value` lines; the headline, the median throughput, last.

    .venv/bin/python bench/upload.py [--mib 512] [--chunk-mib 8] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]  # bench/metadata.py shadows
from labcommons import uploading  # noqa: E402

sys.path.append(str(BENCH_DIR))
from handoff import process  # noqa: E402
from harness import HOST, Service, free_port  # noqa: E402

PROJECT = "bench"
MIB = 1024 * 1024


def timed_send(portal: uploading.Portal, file: Path, chunk_bytes: int) -> tuple[float, float]:
    """(seconds sending the chunks, seconds completing) for one new upload of `file`."""
    uploading.Checkpoint.path(file).unlink(missing_ok=True)
    started = time.perf_counter()
    upload_id, at = uploading.start(portal, PROJECT, file)
    digests = uploading._digests_of(file, 0, ("md5", "sha1"))   # as for an ibd whose imzML records its SHA-1
    uploading._chunks(portal, upload_id, file, at, digests, chunk_bytes, lambda n: None)
    sent = time.perf_counter()
    portal.call("POST", f"/api/uploads/{upload_id}/complete", json={"md5sum": digests.hexdigests()["md5"]})
    portal.call("DELETE", f"/api/uploads/{upload_id}", ok=(204, 404))
    return sent - started, time.perf_counter() - sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--chunk-mib", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Service(Path(tmp) / "data") as service:
        with service.client() as admin:
            admin.submit("BENCH", [{"type": "program", "submitter_id": "BENCH"}])
            admin.submit(PROJECT, [{"type": "project", "submitter_id": PROJECT, "programs": {"submitter_id": "BENCH"}}])
            token = admin.create_token("bench", ["technician"], {PROJECT: "write"}).token
        port = free_port()
        env = dict(service.env, LABCOMMONS_PORTAL_PORT=str(port), LABCOMMONS_PORTAL_WORKERS="1")
        url = f"http://{HOST}:{port}"
        file = Path(tmp) / "bench.ibd"
        with file.open("wb") as sink:
            for _ in range(args.mib):
                sink.write(os.urandom(MIB))
        with process([sys.executable, "-m", "labcommons.cli", "portal", "serve"], env, Path(tmp) / "portal.log",
                     f"{url}/signin"):
            portal = uploading.Portal(url, token)
            rounds = [timed_send(portal, file, args.chunk_mib * MIB) for _ in range(args.rounds)]
    sending = statistics.median(s for s, _ in rounds)
    completing = statistics.median(c for _, c in rounds)
    print(f"file_mib: {args.mib}")
    print(f"chunk_mib: {args.chunk_mib}")
    print(f"send_seconds: {sending:.2f}")
    print(f"complete_seconds: {completing:.2f}")
    print(f"complete_mib_per_s: {args.mib / completing:.0f}")
    print(f"upload_mib_per_s: {args.mib / (sending + completing):.0f}")


if __name__ == "__main__":
    main()
