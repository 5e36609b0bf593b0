"""`labcommons up` (what `make run` runs): starts the service, seeds the demo, stops on SIGTERM."""
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from thriftpy2.transport import TTransportException

from labcommons.demo.entities import demo_commons
from metadata.client import MetadataClient
from tests.e2e.conftest import free_port


def test_up_serves_the_demo_commons_and_stops_cleanly(tmp_path):
    data_dir, port, portal_port, hub_port = tmp_path / "data", free_port(), free_port(), free_port()
    env = dict(os.environ, LABCOMMONS_DATA_DIR=str(data_dir), LABCOMMONS_PORT=str(port),
               LABCOMMONS_PORTAL_PORT=str(portal_port), LABCOMMONS_HUB_PORT=str(hub_port),
               LABCOMMONS_HUB_API_PORT=str(free_port()), LABCOMMONS_HUB_PROXY_API_PORT=str(free_port()))
    up = subprocess.Popen([sys.executable, "-m", "labcommons.cli", "up"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in up.stdout:
            lines.append(line)
            if line.startswith("stop:"):
                break
        banner = "".join(lines)
        assert "labcommons is running" in banner and f"thrift://127.0.0.1:{port}" in banner, banner
        assert f"http://127.0.0.1:{portal_port}/" in banner and "demo-passwords" in banner, banner
        assert "starting the metadata service" in banner and "starting the portal service" in banner, banner
        # the QC runs the demo started with the shipped trigger, and where to follow them
        assert re.search(r"ims-qc-on-new-measurement: .*\n +\d+ ims-qc runs? so far", banner), banner
        started = len(demo_commons().qc_at_start)
        assert f"QC started for {started} of the demo's measurements" in banner and "the broken pair" in banner, banner
        with urllib.request.urlopen(f"http://127.0.0.1:{portal_port}/signin", timeout=10) as page:
            assert page.status == 200 and b"Sign in" in page.read()
        # JupyterHub behind its proxy, signing users in through the portal
        assert f"hub        http://127.0.0.1:{hub_port}/" in banner, banner
        with urllib.request.urlopen(f"http://127.0.0.1:{hub_port}/hub/api/", timeout=10) as api:
            assert api.status == 200
        token = (data_dir / "admin.token").read_text()
        with MetadataClient("127.0.0.1", port, token) as client:
            counts = client.health().counts
        # a pair per measurement, plus the outputs of any QC run finished meanwhile; the broken pair
        # is one more measurement only where the portal's registration does not check pairs
        broken = "registration accepted the broken pair" in banner
        assert counts["case"] == 200 and counts["measurement"] == 600 + broken
        assert counts["data_file"] >= 2 * counts["measurement"]
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0
    finally:
        if up.poll() is None:
            up.terminate()  # up stops its children (the hub stops the proxy): no orphans
            try:
                up.wait(60)
            except subprocess.TimeoutExpired:
                up.kill()
    assert not (data_dir / "metadata.duckdb.wal").exists()  # the service checkpointed on its way out


def test_up_reports_a_port_in_use_and_exits_1(tmp_path):
    # the metadata service's port is taken: up stops before it reaches the portal or the hub
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = dict(os.environ, LABCOMMONS_DATA_DIR=str(tmp_path / "d"),
                   LABCOMMONS_PORT=str(taken.getsockname()[1]), LABCOMMONS_PORTAL_PORT=str(free_port()))
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "labcommons.cli", "up"], env=env,
                                capture_output=True, text=True, timeout=90)
    assert result.returncode == 1 and "metadata service exited" in result.stderr
    assert "Address already in use" in result.stderr or "in use" in result.stderr
    assert time.monotonic() - started < 60


def test_up_restarts_a_killed_service_and_says_so(tmp_path):
    data_dir, port = tmp_path / "data", free_port()
    env = dict(os.environ, LABCOMMONS_DATA_DIR=str(data_dir), LABCOMMONS_PORT=str(port),
               LABCOMMONS_PORTAL_PORT=str(free_port()), LABCOMMONS_HUB_PORT=str(free_port()),
               LABCOMMONS_HUB_API_PORT=str(free_port()), LABCOMMONS_HUB_PROXY_API_PORT=str(free_port()))
    up = subprocess.Popen([sys.executable, "-m", "labcommons.cli", "up", "--no-demo"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in up.stdout], daemon=True).start()
    try:
        banner = _read_until(lines, "stop:")
        pid = int(re.search(r"metadata .* pid (\d+)", banner).group(1))
        os.kill(pid, signal.SIGKILL)
        said = _read_until(lines, "metadata started again")
        assert "metadata exited with code -9; restarting it in 1s" in said, said
        token = (data_dir / "admin.token").read_text()
        deadline = time.monotonic() + 30
        while True:
            try:
                with MetadataClient("127.0.0.1", port, token, 5) as client:
                    assert client.health().status == "ok"
                break
            except (OSError, TTransportException):
                assert time.monotonic() < deadline, "the restarted service never answered"
                time.sleep(0.2)
        assert "restarting it in 1s" in (data_dir / "logs" / "metadata.log").read_text()
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0
    finally:
        if up.poll() is None:
            up.terminate()
            try:
                up.wait(60)
            except subprocess.TimeoutExpired:
                up.kill()


def _read_until(lines: "queue.Queue[str]", marker: str, seconds: float = 120) -> str:
    """What up printed up to and including the first line containing marker."""
    seen, deadline = [], time.monotonic() + seconds
    while not seen or marker not in seen[-1]:
        try:
            seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            raise AssertionError(f"up never printed {marker!r}:\n{''.join(seen)}") from None
    return "".join(seen)
