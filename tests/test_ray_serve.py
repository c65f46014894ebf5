"""The service as a Ray Serve deployment (reader.service.ray_serve) on a local Ray: two replicas
behind Serve's HTTP proxy on 127.0.0.1 answer the same API as the plain server."""

import base64
import json
import socket

import httpx
import pytest

pytest.importorskip("ray.serve", reason="Ray Serve is not installed (the `ray` extra)")

from reader.errors import ReaderError  # noqa: E402
from reader.service import ServiceSettings  # noqa: E402
from reader.service.ray_serve import deploy, deployment, shutdown  # noqa: E402

TEXT = "The library opened at nine. Nobody noticed the rain."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service():
    url = deploy("local", replicas=2, app_settings=ServiceSettings(), host="127.0.0.1", port=free_port(), cpus_per_replica=1, num_cpus=2)
    try:
        yield url
    finally:
        shutdown()


def test_replicas_serve_the_api(service):
    from ray import serve

    (status,) = [app for name, app in serve.status().applications.items() if name == "reader"]
    assert status.status == "RUNNING"
    assert status.deployments["ReaderService"].replica_states.get("RUNNING") == 2
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
