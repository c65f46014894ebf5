"""The service as a Ray Serve deployment (`reader serve --ray local --replicas 2`): two replicas
behind Serve's HTTP proxy on 127.0.0.1 answer the same API as the plain server.

Ray runs in the server's own process, never in the test process: a Ray core worker started and shut
down inside a long-lived process can crash it at exit (ray-project/ray#31145)."""

import base64
import json
import signal
from pathlib import Path

import httpx
import pytest

pytest.importorskip("ray.serve", reason="Ray Serve is not installed (the `ray` extra)")

from test_service import start_server  # noqa: E402
from test_service_processes import wait_until  # noqa: E402

from reader.errors import ReaderError  # noqa: E402
from reader.service import ServiceSettings  # noqa: E402
from reader.service.ray_serve import deployment  # noqa: E402

TEXT = "The library opened at nine. Nobody noticed the rain."


def replica_processes() -> list[int]:
    """Ray names each Serve replica's process after its deployment."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"ServeReplica:reader:ReaderService" in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:  # ended meanwhile
            pass
    return found


@pytest.fixture(scope="module")
def service():
    process, url = start_server("--ray", "local", "--replicas", "2")
    try:
        yield url
    finally:
        process.send_signal(signal.SIGTERM)  # a SIGKILLed driver would leave its local Ray to notice alone
        try:
            assert process.wait(90) == 0, process.stderr.read().decode()[-2000:]
        finally:
            if process.poll() is None:
                process.kill()
            process.stderr.close()
    wait_until(lambda: not replica_processes(), 30, "the replicas outlived `reader serve --ray local`")


def test_replicas_serve_the_api(service):
    wait_until(lambda: len(replica_processes()) == 2, 60, f"replicas running: {len(replica_processes())} of 2")
    with httpx.Client(base_url=service, timeout=60) as client:
        assert client.get("/health").json()["status"] == "ok"
        assert "LJ" in client.get("/v1/audio/voices").json()["voices"]
        assert "Read along" in client.get("/").text
        pcm = client.post("/v1/audio/speech", json={"input": TEXT, "response_format": "pcm"}).content
        assert len(pcm) / 2 / 24000 > 1.5  # 24 kHz 16-bit: a couple of seconds of speech
        # SSE through Serve's proxy: word events with their character offsets, then the audio.
        with client.stream("POST", "/v1/audio/speech", json={"input": TEXT, "response_format": "pcm", "stream_format": "sse"}) as response:
            events = [json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")]
        words = [e for e in events if e["type"] == "speech.word"]
        assert [TEXT[w["start_char"] : w["end_char"]] for w in words][:3] == ["The", "library", "opened"]
        audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
        assert len(audio) == len(pcm) and events[-1]["type"] == "speech.audio.done"
        error = client.post("/v1/audio/speech", json={"input": TEXT, "voice": "nobody"})
        assert error.status_code == 400 and "nobody" in error.json()["error"]["message"]


def test_bad_replica_count_is_a_one_line_error():
    with pytest.raises(ReaderError, match="--replicas 0"):
        deployment(0, ServiceSettings())
