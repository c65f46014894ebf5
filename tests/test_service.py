"""The reading service (`reader serve`) as a client sees it: a real server on 127.0.0.1, real readings."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")

KEY = "test-key-0123"
MAX_STREAMS = 3
TEXT = "Good morning. Here is the news, read sentence by sentence: first the weather, then the markets."
LONG = " ".join(f"This is sentence number {n} of a long document that keeps the stream busy." for n in range(1, 40))


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(*extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "reader", "serve", "--port", str(port), *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "READER_API_KEY": ""})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # the machine may be busy
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"reader serve exited {process.returncode}: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("reader serve did not start within 120 s")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(10)
    process.stderr.close()


@pytest.fixture(scope="module")
def server():
    process, url = start_server("--api-key", KEY, "--max-streams", str(MAX_STREAMS), "--request-timeout", "0.5")
    yield url
    stop_server(process)


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http:
        yield http
        assert http.get("/health").json()["status"] == "ok"  # and the server keeps serving


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """Samples and rate of an encoded stream, by FFmpeg's decoders (PyAV): streamed files have no length in their headers."""
    import av

    with av.open(io.BytesIO(data)) as container:
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)]
        rate = container.streams.audio[0].sample_rate
    return np.concatenate(frames).astype(np.float32), rate


def sse_events(response: httpx.Response) -> list[dict]:
    return [json.loads(line[len("data: ") :]) for line in response.iter_lines() if line.startswith("data: ")]


def test_openai_client_streams_speech(server):
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0)
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="LJ", input=TEXT) as response:
        assert response.headers["content-type"] == "audio/mpeg"
        data = b"".join(response.iter_bytes())
    audio, rate = decode(data)
    assert rate == 24_000 and 3.0 < len(audio) / rate < 15.0 and np.abs(audio).max() > 0.05
    assert [m.id for m in client.models.list()] == ["tts-1", "tts-1-hd"]


def test_audio_streams_before_the_reading_ends(client):
    started = time.perf_counter()
    with client.stream("POST", "/v1/audio/speech", json={"input": LONG, "response_format": "pcm"}) as response:
        assert response.status_code == 200
        first = next(response.iter_bytes())
        first_audio = time.perf_counter() - started
    assert first and first_audio < 2.0  # a long input starts at once: the first phrase, not the whole text


def test_sse_word_events_precede_their_audio_and_point_into_the_input(client):
    text = "Dr. Smith arrived at 9 o'clock.\n\nThe meeting, which was long, ended late."
    with client.stream("POST", "/v1/audio/speech", json={"input": text, "stream_format": "sse", "response_format": "pcm"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert events[-1]["type"] == "speech.audio.done"
    heard = 0.0  # seconds of audio in the deltas so far
    words, sentences, pcm = [], [], b""
    for event in events:
        if event["type"] == "speech.audio.delta":
            delta = base64.b64decode(event["audio"])
            pcm += delta
            heard += len(delta) / 2 / 24_000
        elif event["type"] in ("speech.word", "speech.sentence"):
            assert set(event) == {"type", "word" if event["type"] == "speech.word" else "text", "start", "end", "start_char", "end_char"}
            assert event["start"] >= heard - 0.01, event  # its start lies in a delta still to come
            (words if event["type"] == "speech.word" else sentences).append(event)
    assert [w["word"] for w in words][:3] == ["Dr", "Smith", "arrived"]
    for word in words:
        assert text[word["start_char"] : word["end_char"]] == word["word"] and word["word"][0].isalnum()
    assert [s["start_char"] for s in sentences] == [0, text.index("The meeting")]
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    assert abs(len(pcm) / 2 / 24_000 - sentences[-1]["end"]) < 0.1  # the timings are on the 24 kHz audio's timeline


def test_pauses_are_set_per_request(client):
    """sentence_pause replaces the 0.5 s after each sentence in this request only."""

    def seconds(**pauses) -> float:
        response = client.post("/v1/audio/speech", json={"input": "One sentence. And another one.", "response_format": "pcm", **pauses})
        assert response.status_code == 200, response.text
        return len(response.content) / 2 / 24000

    plain, paused = seconds(), seconds(sentence_pause=1.5)
    assert paused - plain == pytest.approx(1.5 - 0.5, abs=0.1)  # after the first sentence (the second ends the paragraph)
    assert seconds() == pytest.approx(plain, abs=0.02)  # the next request reads with the defaults again
    assert client.post("/v1/audio/speech", json={"input": "Hello.", "sentence_pause": 11}).status_code == 422


def test_pcm_is_24khz_like_wav(client):
    pcm = client.post("/v1/audio/speech", json={"input": "One, two, three.", "response_format": "pcm", "voice": "kathleen"})
    wav = client.post("/v1/audio/speech", json={"input": "One, two, three.", "response_format": "wav", "voice": "kathleen"})
    assert pcm.headers["content-type"] == "audio/pcm"
    header = wav.content[:44]
    assert header[:4] == b"RIFF" and int.from_bytes(header[24:28], "little") == 24_000
    assert wav.content[44:] == pcm.content  # the same samples: the readings are deterministic


@pytest.mark.parametrize("response_format", ["opus", "aac", "flac"])
def test_compressed_formats_decode(client, response_format):
    response = client.post("/v1/audio/speech", json={"input": "One, two, three.", "response_format": response_format, "speed": 1.5})
    assert response.status_code == 200
    audio, rate = decode(response.content)
    assert rate == (48_000 if response_format == "opus" else 24_000)  # Opus decoders always give 48 kHz
    assert 0.5 < len(audio) / rate < 3.0 and np.abs(audio).max() > 0.05


ENTITY_BOMB = (
    '<?xml version="1.0"?><!DOCTYPE speak [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><speak>&d;&d;&d;</speak>'
)
BAD_REQUESTS = {
    "empty input": ({"input": "  "}, 400, "input"),
    "missing input": ({"voice": "LJ"}, 400, "input"),
    "unknown voice": ({"input": "Hello.", "voice": "alloy"}, 400, "voice"),
    "speed 100": ({"input": "Hello.", "speed": 100}, 400, "speed"),
    "unknown format": ({"input": "Hello.", "response_format": "ogg"}, 400, "response_format"),
    "input not a string": ({"input": 42}, 422, "input"),
    "unknown model": ({"input": "Hello.", "model": "gpt-9"}, 404, "model"),
    "entity bomb": ({"input": ENTITY_BOMB}, 400, "input"),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_request_gets_a_json_error_at_once(client, name):
    body, status, param = BAD_REQUESTS[name]
    started = time.perf_counter()
    response = client.post("/v1/audio/speech", json=body)
    assert time.perf_counter() - started < 1.0
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == param and "\n" not in error["message"]
    if name == "unknown voice":
        assert "LJ" in error["message"] and "kathleen" in error["message"]


def test_body_that_is_not_json(client):
    response = client.post("/v1/audio/speech", content=b"input=hello", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def test_three_million_characters_are_refused_before_parsing(client):
    started = time.perf_counter()
    body = b'{"input": "' + b"word " * 600_000 + b'"}'
    response = client.post("/v1/audio/speech", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    assert time.perf_counter() - started < 1.0


def test_a_stalled_body_times_out(server):
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"input\": \"Hel")
        started = time.perf_counter()
        answer = b""
        while b"}}" not in answer and (part := sock.recv(4096)):
            answer += part
    assert answer.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in answer
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", f"Basic {KEY}"])
def test_api_key(server, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.post(f"{server}/v1/audio/speech", json={"input": "Hello."}, headers=headers)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{server}/health").status_code == 200  # health and metrics stay open


def test_voices_health_and_metrics(client):
    assert client.get("/v1/audio/voices").json() == {"voices": ["LJ", "kathleen"], "default": "LJ"}
    metrics = client.get("/metrics").text
    for name in ("reader_active_streams", "reader_first_audio_seconds_bucket", "reader_real_time_factor", 'reader_requests_total{route="/v1/audio/speech",status="200"}'):
        assert name in metrics


def audio_seconds(client) -> float:
    line = next(line for line in client.get("/metrics").text.splitlines() if line.startswith("reader_audio_seconds_total"))
    return float(line.split()[1])


def wait_for_idle(client, seconds: float = 3.0) -> float:
    """Seconds until no stream is active (fails after `seconds`)."""
    started = time.perf_counter()
    while client.get("/health").json()["active_streams"]:
        assert time.perf_counter() - started < seconds, "a stream is still being synthesised"
        time.sleep(0.05)
    return time.perf_counter() - started


def test_disconnect_stops_synthesis(client, server):
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as listener:
        with listener.stream("POST", "/v1/audio/speech", json={"input": LONG, "response_format": "pcm"}) as response:
            blocks = response.iter_bytes()  # kept: a dropped iterator closes the response
            next(blocks)
            assert client.get("/health").json()["active_streams"] == 1
    assert wait_for_idle(client) < 1.0
    made = audio_seconds(client)
    time.sleep(0.5)
    assert audio_seconds(client) == made  # nothing more is synthesised for it


def test_past_max_streams_503_with_retry_after(client, server):
    listeners = [httpx.Client(base_url=server, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) for _ in range(MAX_STREAMS)]
    streams = [listener.stream("POST", "/v1/audio/speech", json={"input": LONG, "response_format": "pcm"}) for listener in listeners]
    try:
        for stream in streams:
            assert stream.__enter__().status_code == 200
        refused = client.post("/v1/audio/speech", json={"input": "Hello."})
        assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"]["code"] == "server_busy"
    finally:
        for stream, listener in zip(streams, listeners):
            stream.__exit__(None, None, None)
            listener.close()
    wait_for_idle(client)
    assert client.post("/v1/audio/speech", json={"input": "Hello.", "response_format": "pcm"}).status_code == 200


def test_sigterm_finishes_the_stream_in_flight_then_exits_0():
    process, url = start_server("--grace", "20")
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            with http.stream("POST", "/v1/audio/speech", json={"input": TEXT, "response_format": "wav"}) as response:
                blocks = response.iter_bytes()
                parts = [next(blocks)]
                process.send_signal(signal.SIGTERM)
                parts.extend(blocks)
            audio, rate = decode(b"".join(parts))  # the whole reading arrived
            assert len(audio) / rate > 4.0
            with pytest.raises(httpx.TransportError):  # no longer accepting
                http.get("/health", timeout=2)
        assert process.wait(20) == 0
    finally:
        stop_server(process)


def test_studio_model(client):
    """tts-1-hd reads with the studio vocoder (a Reader of its own, made on first use)."""
    response = client.post("/v1/audio/speech", json={"model": "tts-1-hd", "input": "One, two.", "response_format": "wav"})
    assert response.status_code == 200
    audio, rate = decode(response.content)
    assert rate == 24_000 and 0.4 < len(audio) / rate < 3.0 and np.abs(audio).max() > 0.05


def test_deadline_pool_runs_the_most_urgent_call_first():
    from reader.engine import NEEDED_AT
    from reader.service.scheduler import CURRENT_STREAM, DeadlinePool, ListenerClock

    pool = DeadlinePool(workers=1)
    try:
        gate = pool.submit(time.sleep, 0.2)  # holds the one worker while the calls below queue up
        ran = []
        playing, ahead, new = ListenerClock(), ListenerClock(), ListenerClock()
        playing.deliver(0.5)  # started: its audio at 0.6 s is due 0.8 s from now
        ahead.deliver(3.0)  # started, and three seconds ahead
        calls = [(ahead, 3.0, "ahead"), (new, 0.0, "new"), (playing, 8.0, "playing, next sentence"), (playing, 0.6, "playing")]
        futures = []
        for clock, needed_at, name in calls:
            CURRENT_STREAM.set(clock)
            NEEDED_AT.set(needed_at)
            futures.append(pool.submit(ran.append, name))
        CURRENT_STREAM.set(None)
        NEEDED_AT.set(0.0)
        for future in [gate, *futures]:
            future.result(5)
        assert ran == ["new", "playing", "ahead", "playing, next sentence"]
    finally:
        pool.shutdown()
