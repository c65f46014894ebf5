"""`reader serve --processes N`: several HTTP server processes on one port, supervised by one.

Real servers on 127.0.0.1; each test reads the process tree from /proc."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")

from test_service import free_port, start_server, stop_server  # noqa: E402

TEXT = "Good morning. Here is the news, read by one of several server processes."
LONG = " ".join(["This sentence keeps a stream busy for a while, one phrase after another."] * 30)


def start_processes(*extra: str) -> tuple[subprocess.Popen, str]:
    """`reader serve --processes 2` once every process serves (the first may answer before the other is ready)."""
    process, url = start_server("--processes", "2", *extra)
    deadline = time.monotonic() + 120
    seen = b""
    while b"Serving HTTP at" not in seen:
        assert time.monotonic() < deadline and process.poll() is None, f"the supervisor did not report serving: {seen[-2000:]!r}"
        if select.select([process.stderr], [], [], 1.0)[0]:
            seen += os.read(process.stderr.fileno(), 65536)
    return process, url


def server_processes(supervisor: int) -> list[int]:
    """The supervisor's HTTP server processes (its children, less multiprocessing's resource tracker)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [int(pid) for pid in children if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def read(url: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/audio/speech", json={"input": TEXT, "response_format": "wav"}, timeout=30)


@contextlib.contextmanager
def stream_opener(url: str):
    """Opens long pcm streams, each from a client of its own; closes them all at the end."""
    with contextlib.ExitStack() as opened:

        def open_stream() -> httpx.Response:
            client = opened.enter_context(httpx.Client(base_url=url, timeout=30))
            return opened.enter_context(client.stream("POST", "/v1/audio/speech", json={"input": LONG, "response_format": "pcm"}))

        yield open_stream


def metric(url: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in httpx.get(f"{url}/metrics").text.splitlines() if line.startswith(name))


def test_processes_share_the_port_the_stream_limit_and_the_metrics():
    process, url = start_processes("--max-streams", "2")
    try:
        assert len(server_processes(process.pid)) == 2
        for _ in range(4):
            assert read(url).status_code == 200
        # Metrics from whichever process answers count every process's requests.
        assert metric(url, 'reader_requests_total{route="/v1/audio/speech",status="200"}') == 4
        assert metric(url, "reader_audio_seconds_total") > 4 * 2.0
        with stream_opener(url) as open_stream:
            answers = [open_stream().status_code for _ in range(3)]
            assert sorted(answers) == [200, 200, 503]  # two streams in all, whichever process took each
            assert httpx.get(f"{url}/health").json()["active_streams"] == 2
    finally:
        stop_server(process)


def connections(pid: int, port: int) -> int:
    """Established TCP connections process `pid` holds on its local `port` (a client that closed is
    no longer established on the server's side)."""
    inodes = {os.readlink(fd)[len("socket:[") : -1] for fd in Path(f"/proc/{pid}/fd").iterdir() if os.readlink(fd).startswith("socket:")}
    rows = [line.split() for table in ("tcp", "tcp6") for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]]
    return sum(1 for row in rows if int(row[1].rsplit(":", 1)[1], 16) == port and row[3] == "01" and row[9] in inodes)


def test_the_least_busy_process_takes_each_new_stream():
    """Streams alternate between two processes, however the kernel wakes them."""
    process, url = start_processes()
    try:
        children = server_processes(process.pid)
        port = int(url.rsplit(":", 1)[1])
        with stream_opener(url) as open_stream:
            audio = []
            for _ in range(6):  # one after another: each is counted before the next arrives
                response = open_stream()
                assert response.status_code == 200
                audio.append(response.iter_raw())  # kept: a dropped iterator closes its response
                next(audio[-1])
            assert [connections(pid, port) for pid in children] == [3, 3]
            assert httpx.get(f"{url}/health").json()["active_streams"] == 6
    finally:
        stop_server(process)


def test_a_server_process_that_dies_is_replaced_and_the_service_keeps_serving():
    process, url = start_processes()
    try:
        first, second = server_processes(process.pid)
        os.kill(first, signal.SIGKILL)
        for _ in range(3):  # the other process serves meanwhile
            assert read(url).status_code == 200
        wait_until(lambda: len(server_processes(process.pid)) == 2 and first not in server_processes(process.pid), 60, "no process replaced the dead one")
        assert second in server_processes(process.pid)
        assert read(url).status_code == 200 and httpx.get(f"{url}/health").json()["active_streams"] == 0
    finally:
        stop_server(process)


def test_server_processes_end_with_their_supervisor():
    process, url = start_processes()
    children = server_processes(process.pid)
    process.kill()  # no chance to tell them: they see their pipe close
    process.wait(10)
    process.stderr.close()
    wait_until(lambda: not any(alive(pid) for pid in children), 30, "server processes outlived their supervisor")


def test_ctrl_c_stops_every_process_once_and_exits_0():
    """Ctrl-C at a terminal signals the whole process group: one graceful stop, no tracebacks."""
    port = free_port()
    command = [sys.executable, "-m", "reader", "serve", "--port", str(port), "--processes", "2"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_until(lambda: process.poll() is not None or _healthy(f"http://127.0.0.1:{port}"), 120, "reader serve did not start")
        assert process.poll() is None
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(30) == 0
        assert "Traceback" not in process.stderr.read().decode()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        process.stderr.close()


def test_a_server_process_that_cannot_start_is_a_one_line_error(models_copy, corrupt):
    corrupt(models_copy / "g2p" / "g2p.onnx")
    command = [sys.executable, "-m", "reader", "serve", "--port", str(free_port()), "--processes", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "READER_MODELS_DIR": str(models_copy)})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "g2p.onnx" in result.stderr.strip().splitlines()[-1]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
