"""The Wyoming protocol (Home Assistant's voice services) over one Reader: `reader serve --wyoming tcp://HOST:PORT`.

`describe` -> `info` with the voices; `synthesize` -> audio-start, an audio-chunk per phrase as it is
made, audio-stop; streaming `synthesize-start` / `-chunk` / `-stop` (wyoming 1.7+) speaks each sentence
as soon as its text is complete (audio-start/-chunks/-stop per sentence), the rest at stop, then
`synthesize-stopped`. Clients are served concurrently: each reading is its own Reader.stream().
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from importlib.metadata import PackageNotFoundError, version

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.server import AsyncEventHandler, AsyncServer
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from ..engine import Reader
from ..errors import ReaderError
from ..io.sinks import to_pcm16
from .readers import ReaderPool

logger = logging.getLogger(__name__)

SAMPLE_WIDTH = 2  # bytes: 16-bit signed little-endian
CHANNELS = 1
MAX_PENDING_CHARS = 4000  # streamed text without a sentence end is read anyway past this
ENGINE = Attribution(name="reader-engine", url="https://pypi.org/project/reader-engine/")
# Where each shipped voice's recordings come from (models/acoustic was trained on them).
VOICE_SOURCES = {
    "lj": Attribution(name="LJ Speech (Keith Ito; LibriVox readings by Linda Johnson)", url="https://keithito.com/LJ-Speech-Dataset/"),
    "kathleen": Attribution(name="Kathleen voice dataset (Rhasspy)", url="https://github.com/rhasspy/dataset-voice-kathleen"),
}


def engine_version() -> str | None:
    try:
        return version("reader-engine")
    except PackageNotFoundError:
        return None


def describe(voices: list[str]) -> Info:
    """The `info` answer: one TTS program listing the voices."""
    listed = [
        TtsVoice(name=name, description=f"{name} (English)", attribution=VOICE_SOURCES.get(name.lower(), ENGINE), installed=True, version=engine_version(), languages=["en"])
        for name in voices
    ]
    program = TtsProgram(
        name="reader-engine", description="Streaming long-form reading engine", attribution=ENGINE, installed=True, version=engine_version(),
        voices=listed, supports_synthesize_streaming=True,
    )  # fmt: skip
    return Info(tts=[program])


def reader_pool(readers: Reader | ReaderPool) -> ReaderPool:
    """The pool to read from: the HTTP service's (shared), or one around a single Reader, which reads
    its own voice and makes a Reader like it for another voice on first use."""
    if isinstance(readers, ReaderPool):
        return readers
    reader = readers

    def make(voice: str, vocoder: str) -> Reader:
        return reader if voice.lower() == reader.speaker.name.lower() else Reader(voice=voice, speed=reader.speed)

    return ReaderPool(make, reader.speaker.name)


class ReaderEventHandler(AsyncEventHandler):
    """One client connection."""

    def __init__(self, readers: ReaderPool, info: Event, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.readers = readers
        self.info = info
        self.stream_open = False  # between synthesize-start and synthesize-stop
        self.streaming: Reader | None = None  # its Reader (None if its voice was refused)
        self.pending = ""  # streamed text not yet spoken (an unfinished sentence)

    async def handle_event(self, event: Event) -> bool:
        try:
            if Describe.is_type(event.type):
                await self.write_event(self.info)
            elif SynthesizeStart.is_type(event.type):
                self.stream_open, self.streaming, self.pending = True, None, ""
                self.streaming = await self.reader_for(SynthesizeStart.from_event(event).voice)
            elif SynthesizeChunk.is_type(event.type) and self.streaming is not None:
                self.pending += SynthesizeChunk.from_event(event).text
                if finished := self.take_finished_sentences():
                    await self.speak(self.streaming, finished)
            elif SynthesizeStop.is_type(event.type) and self.stream_open:
                reader, rest = self.streaming, self.pending
                self.stream_open, self.streaming, self.pending = False, None, ""
                try:
                    if reader is not None and rest.strip():
                        await self.speak(reader, rest)
                finally:
                    await self.write_event(SynthesizeStopped().event())
            elif Synthesize.is_type(event.type) and not self.stream_open:
                # (Inside a stream a client also sends the whole text as `synthesize` for older servers: ignored.)
                request = Synthesize.from_event(event)
                await self.speak(await self.reader_for(request.voice), request.text)
        except ConnectionError:  # the client went away: its reading was closed with the stream
            return False
        except ReaderError as exc:
            logger.info("wyoming: %s", exc)
            await self.write_event(Error(text=str(exc), code=type(exc).__name__).event())
        except Exception:  # one failing reading never takes the server (or the connection) down
            logger.exception("wyoming: the reading failed")
            await self.write_event(Error(text="internal error: the reading failed", code="internal_error").event())
        return True

    async def reader_for(self, voice: SynthesizeVoice | None) -> Reader:
        name = self.readers.default_voice if voice is None or not voice.name else self.readers.voice(voice.name)
        if name is None:
            raise ReaderError(f"unknown voice {voice.name!r}; available: {', '.join(self.readers.voices())}")
        return await self.readers.get(name)

    def take_finished_sentences(self) -> str:
        """Take the finished sentences off the front of the streamed text: every sentence that another
        one follows (the last may still grow); "" if none is finished yet."""
        if len(self.pending) > MAX_PENDING_CHARS:  # no sentence end in sight: read what there is
            cut = len(self.pending)
        else:
            spans = self.streaming.analyzer.split(self.pending).sentences
            cut = spans[-1].start if len(spans) > 1 else 0
        finished, self.pending = self.pending[:cut], self.pending[cut:]
        return finished

    async def speak(self, reader: Reader, text: str) -> None:
        """audio-start, an audio-chunk per phrase as it is synthesised, audio-stop."""
        audio = {"rate": reader.sample_rate, "width": SAMPLE_WIDTH, "channels": CHANNELS}
        await self.write_event(AudioStart(**audio).event())
        async with contextlib.aclosing(reader.stream(text)) as chunks:
            async for chunk in chunks:
                if len(chunk.samples):
                    await self.write_event(AudioChunk(audio=to_pcm16(chunk.samples).tobytes(), **audio).event())
        await self.write_event(AudioStop().event())


async def serve(reader: Reader | ReaderPool, uri: str, stop: asyncio.Event | None = None) -> None:
    """Serve Wyoming clients at `uri` (tcp://HOST:PORT, unix://PATH) until `stop` is set (or forever).
    `reader`: one Reader, or the HTTP service's ReaderPool (app.state.pool) to share its Readers."""
    if not uri.startswith(("tcp://", "unix://")):
        raise ReaderError(f"bad Wyoming address {uri!r}: use tcp://HOST:PORT or unix://PATH")
    try:
        server = AsyncServer.from_uri(uri)
    except ValueError as exc:
        raise ReaderError(f"bad Wyoming address {uri!r}: {exc}") from None
    readers = reader_pool(reader)
    info = describe(readers.voices()).event()
    try:
        await server.start(lambda stream_reader, writer: ReaderEventHandler(readers, info, stream_reader, writer))
    except OSError as exc:
        raise ReaderError(f"cannot serve Wyoming at {uri}: {exc.strerror or exc}") from None
    logger.info("wyoming: serving at %s", uri)
    try:
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    finally:
        await server.stop()
