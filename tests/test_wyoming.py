"""The Wyoming server (reader.service.wyoming): a real server on 127.0.0.1, real wyoming clients."""

import asyncio
import contextlib
import socket

import numpy as np
import pytest

pytest.importorskip("wyoming", reason="the `serve` extra (wyoming) is not installed")

from wyoming.audio import AudioChunk, AudioStart, AudioStop  # noqa: E402
from wyoming.client import AsyncTcpClient  # noqa: E402
from wyoming.error import Error  # noqa: E402
from wyoming.info import Describe, Info  # noqa: E402
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice  # noqa: E402

from reader.engine import Reader  # noqa: E402
from reader.errors import ReaderError  # noqa: E402
from reader.service.readers import ReaderPool  # noqa: E402
from reader.service.wyoming import serve  # noqa: E402

TEXT = "The library opened at nine. By ten, every table by the windows was taken. Nobody noticed the rain."
WAIT = 60  # seconds for any one answer (a first reading also waits for the parser to load)


@pytest.fixture(scope="module")
def reader():
    return Reader()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def running_server(reader):
    """The server on a free port of 127.0.0.1; yields a function that opens a connected client."""
    port, stop = free_port(), asyncio.Event()
    server = asyncio.create_task(serve(reader, f"tcp://127.0.0.1:{port}", stop))
    for _ in range(100):
        with contextlib.suppress(OSError):
            await asyncio.open_connection("127.0.0.1", port)
            break
        await asyncio.sleep(0.05)

    @contextlib.asynccontextmanager
    async def client():
        async with AsyncTcpClient("127.0.0.1", port) as connected:
            yield connected

    try:
        yield client
    finally:
        stop.set()
        await asyncio.wait_for(server, WAIT)


async def read_event(client):
    event = await asyncio.wait_for(client.read_event(), WAIT)
    assert event is not None, "the server closed the connection"
    return event


async def read_audio(client, until=AudioStop):
    """The events up to `until`: (the AudioStart, the PCM bytes of the chunks in between, the events' types)."""
    start, pcm, types = None, bytearray(), []
    while True:
        event = await read_event(client)
        types.append(event.type)
        if AudioStart.is_type(event.type) and start is None:
            start = AudioStart.from_event(event)
        elif AudioChunk.is_type(event.type):
            chunk = AudioChunk.from_event(event)
            assert (chunk.rate, chunk.width, chunk.channels) == (start.rate, start.width, start.channels)
            pcm += chunk.audio
        elif Error.is_type(event.type):
            pytest.fail(f"server error: {Error.from_event(event).text}")
        if until.is_type(event.type):
            return start, bytes(pcm), types


def seconds(start: AudioStart, pcm: bytes) -> float:
    return len(pcm) / (start.width * start.channels * start.rate)


def test_describe_lists_the_voices(reader):
    async def run():
        async with running_server(reader) as client, client() as c:
            await c.write_event(Describe().event())
            return Info.from_event(await read_event(c))

    info = asyncio.run(run())
    (program,) = info.tts
    assert program.supports_synthesize_streaming
    assert [v.name for v in program.voices] == reader.voices()
    for voice in program.voices:
        assert voice.languages == ["en"] and voice.installed and voice.attribution.name and voice.attribution.url


def test_synthesize_gives_audio_of_the_whole_text(reader):
    async def run():
        async with running_server(reader) as client, client() as c:
            await c.write_event(Synthesize(TEXT).event())
            return await read_audio(c)

    start, pcm, types = asyncio.run(run())
    assert (start.rate, start.width, start.channels) == (reader.sample_rate, 2, 1)
    assert types[0] == "audio-start" and types[-1] == "audio-stop" and types.count("audio-start") == 1
    samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
    words = len(TEXT.split())
    assert 0.2 * words < seconds(start, pcm) < 0.8 * words + 2  # 17 words: a few seconds of speech
    assert np.sqrt(np.mean(samples**2)) > 0.01  # speech, not silence


def test_streaming_speaks_each_sentence_once_complete(reader):
    async def run():
        async with running_server(reader) as client, client() as c:
            await c.write_event(SynthesizeStart().event())
            for piece in ("The library opened ", "at nine. By ten, every table"):
                await c.write_event(SynthesizeChunk(piece).event())
            # The first sentence is complete: its audio comes before the stream is stopped.
            first = await read_audio(c)
            await c.write_event(SynthesizeChunk(" by the windows was taken. Nobody noticed the rain.").event())
            await c.write_event(Synthesize(TEXT).event())  # the whole text, as clients send it for older servers: ignored
            await c.write_event(SynthesizeStop().event())
            rest = await read_audio(c, until=SynthesizeStopped)
            await c.write_event(Synthesize(TEXT).event())
            whole = await read_audio(c)
            return first, rest, whole

    first, rest, whole = asyncio.run(run())
    assert first[2].count("audio-start") == 1 and 0.8 < seconds(*first[:2]) < 5
    assert rest[2].count("audio-start") == rest[2].count("audio-stop") >= 1 and rest[2][-1] == "synthesize-stopped"
    streamed = seconds(*first[:2]) + seconds(*rest[:2])
    # Every sentence was read: about as long as the same text in one request.
    assert streamed == pytest.approx(seconds(*whole[:2]), rel=0.25)


def test_unknown_voice_is_an_error_and_the_connection_stays(reader):
    async def run():
        async with running_server(reader) as client, client() as c:
            await c.write_event(Synthesize("Hello there.", voice=SynthesizeVoice(name="nobody")).event())
            error = await read_event(c)
            await c.write_event(SynthesizeStart(voice=SynthesizeVoice(name="nobody")).event())
            await c.write_event(SynthesizeChunk("Hello there. And again.").event())
            stream_error = await read_event(c)
            await c.write_event(SynthesizeStop().event())
            stopped = await read_event(c)
            await c.write_event(Synthesize("Hello there.").event())
            after = await read_audio(c)
            return error, stream_error, stopped, after

    error, stream_error, stopped, after = asyncio.run(run())
    assert Error.is_type(error.type) and "nobody" in Error.from_event(error).text and "LJ" in Error.from_event(error).text
    assert Error.is_type(stream_error.type)
    assert SynthesizeStopped.is_type(stopped.type)
    assert seconds(*after[:2]) > 0.3


def test_clients_at_once_and_another_voice(reader):
    async def one(client, voice):
        async with client() as c:
            await c.write_event(Synthesize("Good morning. Here is the news.", voice=SynthesizeVoice(name=voice)).event())
            start, pcm, _ = await read_audio(c)
            return np.frombuffer(pcm, "<i2")

    async def run():
        async with running_server(reader) as client:
            return await asyncio.gather(one(client, "LJ"), one(client, "kathleen"), one(client, "LJ"))

    lj, kathleen, lj_again = asyncio.run(run())
    assert len(lj) > 0.5 * reader.sample_rate and len(kathleen) > 0.5 * reader.sample_rate
    assert np.array_equal(lj, lj_again)  # concurrent readings do not mix
    assert len(kathleen) != len(lj) or not np.array_equal(kathleen, lj)


def test_serves_from_the_http_services_reader_pool(reader):
    """`reader serve --wyoming` beside HTTP can pass the app's ReaderPool: Wyoming reads with its Readers."""
    pool = ReaderPool(reader)

    async def run():
        async with running_server(pool) as client, client() as c:
            await c.write_event(Describe().event())
            info = Info.from_event(await read_event(c))
            await c.write_event(Synthesize("Good morning.").event())
            return info, await read_audio(c)

    info, (start, pcm, _) = asyncio.run(run())
    assert [v.name for v in info.tts[0].voices] == pool.voices() == [reader.speaker.name]
    assert seconds(start, pcm) > 0.3


def test_bad_address_is_a_one_line_error(reader):
    with pytest.raises(ReaderError, match="bad Wyoming address 'http://x'"):
        asyncio.run(serve(reader, "http://x"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ReaderError, match="cannot serve Wyoming at"):
            asyncio.run(serve(reader, f"tcp://127.0.0.1:{taken.getsockname()[1]}"))
