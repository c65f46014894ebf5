"""Streaming synthesis on asyncio: sentence requests in, audio chunks out, with backpressure.

Two stages run concurrently:
- the acoustic stage decodes upcoming sentences (at most `max_jobs` at once, each in a worker
  thread: onnxruntime releases the GIL) into a bounded queue, so it never runs more than
  `max_queued` sentences ahead;
- the vocoder stage turns each sentence's mel into audio phrase by phrase, in order, through one
  continuous VocoderStream, so chunk joins are sample-exact and fall in the pauses the prosody plan
  put between phrases.
When `pace_seconds` is set (playback), an asyncio-throttle Throttler caps audio production at
`pace_seconds` seconds of audio per `pace_seconds` of wall time after the first burst: synthesis
never runs more than that far ahead of a real-time sink.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import AsyncIterator, Iterable

import numpy as np
from asyncio_throttle import Throttler

from .acoustic import AcousticModel, AcousticOutput, Speaker, TokenInputs

# Phrase boundaries: boundary tokens whose break level is at least this (MINOR) end a chunk.
PHRASE_BREAK_LEVEL = 1
# The stream's first chunk is cut after the vocoder's look-ahead plus this many frames (about 0.23 s of
# audio) when its phrase is longer: the first audio then waits for the vocoder on a few dozen frames,
# not a whole phrase (time to first audio). VocoderStream is exact at any cut, so the audio is the same.
FIRST_CHUNK_AUDIO_FRAMES = 20


@dataclass(frozen=True)
class SynthesisRequest:
    """One sentence to speak, with per-token bookkeeping from the front end."""

    tokens: TokenInputs
    word_indices: np.ndarray  # per token: index of the word a phoneme belongs to, -1 otherwise
    boundary_levels: np.ndarray  # per token: break level at boundary tokens, -1 elsewhere
    pause_frames: np.ndarray  # per token: fixed pause length in frames (>= 0), or -1 to let the model predict
    speaker: Speaker
    utterance_embedding: np.ndarray | None = None
    speed: float = 1.0
    tag: object = None  # the caller's own metadata (e.g. the sentence analysis), passed through
    # Where the sentence and its words are in the caller's text (character offsets), passed through
    # into the timings; the runtime never reads the text itself.
    word_spans: np.ndarray | None = None  # (words, 2) int: [start, end) of word i, indexed like word_indices
    char_span: tuple[int, int] = (-1, -1)  # [start, end) of the whole sentence
    text: str = ""  # the sentence as written, for the caller's display
    # Prosody taken from elsewhere (prosody transfer): per-token codes for the acoustic model's prosody
    # input, (tokens, prosody_code_dim), and an F0 contour, (tokens,) Hz with 0 = let the model predict.
    prosody_codes: np.ndarray | None = None
    f0_override: np.ndarray | None = None


@dataclass(frozen=True)
class WordTiming:
    word_index: int  # index of the word in its sentence (SynthesisRequest.word_indices)
    start: float  # seconds from the start of the stream
    end: float
    start_char: int = -1  # [start_char, end_char): the word's source in the caller's text; -1 if unknown
    end_char: int = -1
    sentence_index: int = -1  # the sentence it belongs to (SentenceTiming.sentence_index)


@dataclass(frozen=True)
class SentenceTiming:
    """A sentence's stretch of the stream: from its first frame to the end of its final pause, so
    consecutive sentences tile the timeline (word timings give the spoken words within it)."""

    sentence_index: int  # position of the sentence in the stream (0, 1, ...), = AudioChunk.request_index
    start: float  # seconds from the start of the stream
    end: float
    start_char: int = -1  # [start_char, end_char): the sentence in the caller's text; -1 if unknown
    end_char: int = -1
    text: str = ""


@dataclass(frozen=True)
class AudioChunk:
    """Audio as it is produced, with the timings of the mel frames that produced it.

    `words` and `sentences` are those that start in the mel phrase pushed for this chunk; the audio
    lags the mel by the vocoder's look-ahead (receptive field + half a window, about 0.34 s), so a
    timing arrives with or before its audio: its start lies in this chunk or within the look-ahead
    after it. All times are seconds on the stream's audio timeline (sample index / sample rate).
    """

    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    start: float  # seconds from the start of the stream
    request_index: int
    tag: object
    words: tuple[WordTiming, ...] = field(default=())
    last_of_request: bool = False
    sentences: tuple[SentenceTiming, ...] = field(default=())


def decode(acoustic: AcousticModel, request: SynthesisRequest) -> AcousticOutput:
    """Run the acoustic model; speed scales every predicted duration (a second, overriding pass)."""

    def run(durations: np.ndarray) -> AcousticOutput:
        return acoustic.synthesize(
            request.tokens, request.speaker, request.utterance_embedding, duration_override=durations,
            prosody_codes=request.prosody_codes, f0_override=request.f0_override,
        )  # fmt: skip

    output = run(np.asarray(request.pause_frames, np.float32))
    if request.speed == 1.0:
        return output
    scaled = np.maximum(np.round(output.durations / request.speed), np.where(request.boundary_levels >= 0, 0, 1))
    return run(scaled.astype(np.float32))


def phrase_cuts(durations: np.ndarray, boundary_levels: np.ndarray) -> list[int]:
    """Frame indices where a sentence's mel is cut into phrases: the middle of each phrase-break pause
    inside the sentence (the sentence-final pause stays with the last phrase)."""
    ends = np.cumsum(durations)
    starts = ends - durations
    inside = np.flatnonzero(boundary_levels[:-1] >= PHRASE_BREAK_LEVEL)
    cuts = [int((starts[i] + ends[i]) // 2) for i in inside]
    total = int(ends[-1]) if len(ends) else 0
    return sorted({c for c in cuts if 0 < c < total})


def word_timings(
    durations: np.ndarray, word_indices: np.ndarray, seconds_per_frame: float, offset: float, word_spans: np.ndarray | None = None, sentence_index: int = -1
) -> list[WordTiming]:
    ends = np.cumsum(durations)
    starts = ends - durations
    timings = []
    for word in np.unique(word_indices[word_indices >= 0]):
        tokens = np.flatnonzero(word_indices == word)
        start_char, end_char = (int(word_spans[word, 0]), int(word_spans[word, 1])) if word_spans is not None else (-1, -1)
        timings.append(
            WordTiming(int(word), float(offset + starts[tokens[0]] * seconds_per_frame), float(offset + ends[tokens[-1]] * seconds_per_frame), start_char, end_char, sentence_index)
        )
    return timings


class StreamingSynthesizer:
    """Turns a stream of sentence requests into a stream of audio chunks (models loaded once, shared)."""

    def __init__(self, acoustic: AcousticModel, vocoder, max_jobs: int = 1, max_queued: int = 4, pace_seconds: float | None = None) -> None:
        self.acoustic = acoustic
        self.vocoder = vocoder
        self.max_jobs = max_jobs
        self.max_queued = max_queued
        self.pace_seconds = pace_seconds
        self._executor = ThreadPoolExecutor(max_workers=max_jobs + 1, thread_name_prefix="synthesis")

    @property
    def sample_rate(self) -> int:
        return self.acoustic.sample_rate

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def stream(self, requests: AsyncIterator[SynthesisRequest] | Iterable[SynthesisRequest]) -> AsyncIterator[AudioChunk]:
        loop = asyncio.get_running_loop()
        decoded: asyncio.Queue = asyncio.Queue(maxsize=self.max_queued)
        jobs = asyncio.Semaphore(self.max_jobs)

        async def acoustic_stage() -> None:
            try:
                async for request in _aiter(requests):
                    await jobs.acquire()
                    future = loop.run_in_executor(self._executor, decode, self.acoustic, request)
                    future.add_done_callback(lambda _: jobs.release())
                    await decoded.put((request, future))
            except asyncio.CancelledError:
                raise  # the consumer has gone: nobody reads an end mark, and waiting on a full queue would hang
            except BaseException:
                await decoded.put(None)  # the consumer stops, then re-raises this through `await producer`
                raise
            await decoded.put(None)

        producer = asyncio.create_task(acoustic_stage())
        throttler = Throttler(rate_limit=max(1, int(self.pace_seconds)), period=self.pace_seconds) if self.pace_seconds else None
        hop = self.acoustic.hop_length
        seconds_per_frame = hop / self.sample_rate
        vocoder_stream = self.vocoder.stream()
        produced = 0  # samples emitted so far (lags the mel by the vocoder's look-ahead)
        frames = 0  # mel frames pushed so far: the true timeline position for word timings
        try:
            index = 0
            while (item := await decoded.get()) is not None:
                request, future = item
                output = await future
                offset = frames * seconds_per_frame
                frames += len(output.mel)
                timings = word_timings(output.durations, request.word_indices, seconds_per_frame, offset, request.word_spans, index)
                sentence = SentenceTiming(index, offset, frames * seconds_per_frame, *request.char_span, request.text)
                cuts = phrase_cuts(output.durations, request.boundary_levels)
                first_cut = self.vocoder.spec.receptive_field_frames + 2 + FIRST_CHUNK_AUDIO_FRAMES
                if index == 0 and first_cut < (cuts[0] if cuts else len(output.mel)):
                    cuts.insert(0, first_cut)
                bounds = [0, *cuts, len(output.mel)]
                for piece, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
                    if throttler is not None:
                        for _ in range(max(1, round((hi - lo) * seconds_per_frame))):
                            await throttler.acquire()
                    samples = await loop.run_in_executor(self._executor, vocoder_stream.push, output.mel[lo:hi])
                    last = piece == len(bounds) - 2
                    start = produced / self.sample_rate
                    produced += len(samples)
                    words = tuple(t for t in timings if lo * seconds_per_frame + offset <= t.start < hi * seconds_per_frame + offset)
                    yield AudioChunk(samples, self.sample_rate, start, index, request.tag, words, last, (sentence,) if piece == 0 else ())
                index += 1
            tail = vocoder_stream.finish()
            if len(tail):
                yield AudioChunk(tail, self.sample_rate, produced / self.sample_rate, index - 1, None, (), True)
            await producer
        finally:
            if not producer.done():
                producer.cancel()
                await asyncio.gather(producer, return_exceptions=True)


async def _aiter(items):
    if hasattr(items, "__aiter__"):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
