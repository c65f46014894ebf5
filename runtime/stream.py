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
import contextvars
from concurrent.futures import Executor, ThreadPoolExecutor
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
# A vocoder that is not far ahead of real time on short runs (the studio one) asks for `ramp_chunks`
# more cuts after the first, each RAMP_GROWTH times the one before, so each chunk is ready before the
# audio already sent has played (no gap early in playback; reader.vocoders checks the speed).
RAMP_GROWTH = 1.5
# Phrases shorter than this many frames (about 1.2 s) join the next one into one piece: the vocoder and
# the post-net run each piece with their receptive fields as context, so a 20-frame piece costs the
# fast vocoder three times as much per frame as a long one (CPU many streams share).
MIN_PIECE_FRAMES = 100


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
    # Per-span voice settings (SSML prosody), per token, None = unchanged: a rate on top of `speed`
    # (durations / (speed * rate)), an F0 factor on the predicted contour, and a gain on the audio.
    rate: np.ndarray | None = None
    pitch: np.ndarray | None = None
    gain: np.ndarray | None = None
    bleep: np.ndarray | None = None  # per token: True where a tone replaces the speech (its timing kept)
    fixed_pauses: np.ndarray | None = None  # per token: True where pause_frames holds whatever speed and rate
    marks: tuple[tuple[int, str, int, int], ...] = ()  # (token index, name, start_char, end_char): timed at the token's start


@dataclass(frozen=True)
class WordTiming:
    word_index: int  # index of the word in its sentence (SynthesisRequest.word_indices)
    start: float  # seconds from the start of the stream
    end: float
    start_char: int = -1  # [start_char, end_char): the word's source in the caller's text; -1 if unknown
    end_char: int = -1
    sentence_index: int = -1  # the sentence it belongs to (SentenceTiming.sentence_index)


@dataclass(frozen=True)
class MarkTiming:
    """A named point of the text (SSML <mark>) on the stream's timeline."""

    name: str
    time: float  # seconds from the start of the stream
    start_char: int = -1  # [start_char, end_char): the mark in the caller's text
    end_char: int = -1
    sentence_index: int = -1


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
    marks: tuple[MarkTiming, ...] = field(default=())


def decode(acoustic: AcousticModel, request: SynthesisRequest, postnet: bool = True, first_frames: int | None = None) -> AcousticOutput:
    """Run the acoustic model; speed scales every predicted duration (a second, overriding pass).
    postnet=False: the decoder's mel, for the caller to sharpen piece by piece (AcousticModel.sharpen).
    `first_frames` (with postnet=False): where the model allows, a one-pass sentence's first frames
    only, the rest for AcousticModel.decode_more (AcousticOutput.features); where it allows, a first
    pass decodes no frames at all."""

    def run(durations: np.ndarray, last: bool = True) -> AcousticOutput:
        return acoustic.synthesize(
            request.tokens, request.speaker, request.utterance_embedding, duration_override=durations,
            prosody_codes=request.prosody_codes, f0_override=request.f0_override, postnet=postnet and last,
            first_frames=first_frames if last else 0,  # a first pass for durations and F0 needs no frames
        )  # fmt: skip

    plain = request.rate is None and request.pitch is None and (request.fixed_pauses is None or request.speed == 1.0)
    output = run(np.asarray(request.pause_frames, np.float32), last=plain and request.speed == 1.0)
    if plain:
        if request.speed == 1.0:
            return output
        scaled = np.maximum(np.round(output.durations / request.speed), np.where(request.boundary_levels >= 0, 0, 1))
        return run(scaled.astype(np.float32))
    return _decode_with_voice(acoustic, request, output, postnet)


def _decode_with_voice(acoustic: AcousticModel, request: SynthesisRequest, output: AcousticOutput, postnet: bool) -> AcousticOutput:
    """The second pass for per-token rate and pitch: the first pass's durations over speed x rate
    (fixed pauses kept), its F0 contour times the pitch factor."""
    rate = request.speed * (np.ones(len(output.durations)) if request.rate is None else np.asarray(request.rate, np.float64))
    if request.fixed_pauses is not None:
        rate = np.where(request.fixed_pauses, 1.0, rate)
    durations = np.maximum(np.round(output.durations / rate), np.where(request.boundary_levels >= 0, 0, 1))
    f0 = request.f0_override
    if request.pitch is not None:
        given = np.zeros(len(output.f0), np.float32) if f0 is None else np.asarray(f0, np.float32)
        contour = np.where(given > 0, given, output.f0)
        f0 = np.where(request.pitch != 1.0, contour * request.pitch, given).astype(np.float32)
    return acoustic.synthesize(
        request.tokens, request.speaker, request.utterance_embedding, duration_override=durations.astype(np.float32),
        prosody_codes=request.prosody_codes, f0_override=f0, postnet=postnet,
    )  # fmt: skip


def mark_timings(durations: np.ndarray, marks, seconds_per_frame: float, offset: float, sentence_index: int) -> list[MarkTiming]:
    # A mark is timed at the start of its token; one past the last token is the sentence's end.
    starts = np.concatenate([[0], np.cumsum(durations)])
    return [MarkTiming(name, float(offset + starts[min(token, len(durations))] * seconds_per_frame), s, e, sentence_index) for token, name, s, e in marks]


# A bleep (SSML say-as expletive) is a 1 kHz tone at this amplitude, as broadcast and Polly bleep.
BLEEP_HZ, BLEEP_AMPLITUDE = 1000.0, 0.2


class GainTrack:
    """Per-frame gains and bleeps of the requests pushed so far, applied to the audio as it comes
    (interpolated between frame centres, so a change never clicks). Idle, and free, until a request has one."""

    def __init__(self, hop: int, sample_rate: int) -> None:
        self.hop, self.sample_rate = hop, sample_rate
        self.origin = 0  # frame index of gains[0]
        self.gains = np.zeros(0, np.float32)
        self.bleeps = np.zeros(0, np.float32)
        self.active = False

    def push(self, gain: np.ndarray | None, durations: np.ndarray, bleep: np.ndarray | None = None) -> None:
        if gain is None and bleep is None and not self.active:
            self.origin += int(durations.sum())
            return
        self.active = True
        per_token = np.ones(len(durations), np.float32) if gain is None else np.asarray(gain, np.float32)
        bleeped = np.zeros(len(durations), np.float32) if bleep is None else np.asarray(bleep, np.float32)
        self.gains = np.concatenate([self.gains, np.repeat(per_token, durations)])
        self.bleeps = np.concatenate([self.bleeps, np.repeat(bleeped, durations)])

    def apply(self, samples: np.ndarray, start_sample: int) -> np.ndarray:
        if not self.active or not len(samples) or not len(self.gains):
            return samples
        index = start_sample + np.arange(len(samples))
        frames, known = index / self.hop - 0.5, self.origin + np.arange(len(self.gains))
        gain, bleep = np.interp(frames, known, self.gains), np.interp(frames, known, self.bleeps)
        done = max(0, (start_sample + len(samples)) // self.hop - 2 - self.origin)
        self.gains, self.bleeps, self.origin = self.gains[done:], self.bleeps[done:], self.origin + done
        tone = BLEEP_AMPLITUDE * np.sin(2 * np.pi * BLEEP_HZ * index / self.sample_rate)
        return np.clip(samples * gain * (1 - bleep) + tone * bleep, -1.0, 1.0).astype(np.float32)


def phrase_cuts(durations: np.ndarray, boundary_levels: np.ndarray, min_piece: int = 0, start: int = 0) -> list[int]:
    """Frame indices where a sentence's mel is cut into phrases: the middle of each phrase-break pause
    inside the sentence (the sentence-final pause stays with the last phrase). `min_piece`: leave out
    cuts that would make a piece shorter than that (the last one: shorter than half of it), counting
    from frame `start` (where earlier cuts end)."""
    ends = np.cumsum(durations)
    starts = ends - durations
    inside = np.flatnonzero(boundary_levels[:-1] >= PHRASE_BREAK_LEVEL)
    total = int(ends[-1]) if len(ends) else 0
    cuts, last = [], start
    for cut in sorted({int((starts[i] + ends[i]) // 2) for i in inside}):
        if start < cut < total and cut - last >= min_piece and total - cut >= min_piece // 2:
            cuts.append(cut)
            last = cut
    return cuts


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


def first_cuts(lookahead_frames: int, ramp_chunks: int, limit: int | None = None, first_frames: int = FIRST_CHUNK_AUDIO_FRAMES) -> list[int]:
    """Cuts of the stream's first sentence (before frame `limit`, if given): a first chunk of
    `first_frames` of audio, then the ramp: `ramp_chunks` pieces, the first as long as the first
    chunk, each after it RAMP_GROWTH times the one before."""
    cuts, size, cut = [], first_frames, lookahead_frames + first_frames
    for chunk in range(1 + ramp_chunks):
        if limit is not None and cut >= limit:
            break
        cuts.append(cut)
        size = size if chunk == 0 else round(size * RAMP_GROWTH)
        cut += size
    return cuts


def voice_piece(acoustic: AcousticModel, vocoder_stream, mel: np.ndarray, speaker: Speaker, start: int, end: int) -> np.ndarray:
    """Frames [start, end) of a decoded sentence through the post-net and on into the vocoder stream:
    sharpening piece by piece spreads a sentence's post-net work over its playback (time to first audio)."""
    return vocoder_stream.push(acoustic.sharpen(mel, speaker, start, end))


# Where on the stream's audio timeline (seconds from its start) the output of the model call being
# submitted is first needed: set for each call, so a shared executor may run the most urgent first.
NEEDED_AT: contextvars.ContextVar[float] = contextvars.ContextVar("reader_runtime_needed_at", default=0.0)


class StreamingSynthesizer:
    """Turns a stream of sentence requests into a stream of audio chunks (models loaded once, shared)."""

    def __init__(
        self, acoustic: AcousticModel, vocoder, max_jobs: int = 1, max_queued: int = 4, pace_seconds: float | None = None, executor: Executor | None = None,
        ramp_chunks: int | None = None, first_chunk_frames: int = FIRST_CHUNK_AUDIO_FRAMES,
    ) -> None:
        self.acoustic = acoustic
        self.vocoder = vocoder
        self.max_jobs = max_jobs
        self.max_queued = max_queued
        self.pace_seconds = pace_seconds
        # `executor`: the models' calls run there instead of on threads of this stream's own (a server's
        # one pool for all its streams, which then orders their work); close() leaves it open.
        self._own_executor = executor is None
        # first_cuts' ramp: the vocoder's own, or more where the vocoder shares the CPU with other streams.
        self.ramp_chunks = max(vocoder.ramp_chunks, ramp_chunks or 0)
        # A vocoder with a ramp of its own is slow on short runs: its first chunk stays small whatever is asked.
        self.first_chunk_frames = FIRST_CHUNK_AUDIO_FRAMES if vocoder.ramp_chunks else first_chunk_frames
        self._executor = executor or ThreadPoolExecutor(max_workers=max_jobs + 1, thread_name_prefix="synthesis")

    @property
    def sample_rate(self) -> int:
        return self.acoustic.sample_rate

    def close(self) -> None:
        if self._own_executor:
            self._executor.shutdown(wait=True, cancel_futures=True)

    async def stream(self, requests: AsyncIterator[SynthesisRequest] | Iterable[SynthesisRequest]) -> AsyncIterator[AudioChunk]:
        loop = asyncio.get_running_loop()
        decoded: asyncio.Queue = asyncio.Queue(maxsize=self.max_queued)
        jobs = asyncio.Semaphore(self.max_jobs)

        decoded_seconds = 0.0  # audio of the sentences decoded so far: where the next one starts

        def advance(done: asyncio.Future) -> None:
            nonlocal decoded_seconds
            if not done.cancelled() and done.exception() is None:
                decoded_seconds += done.result().frames * self.acoustic.hop_length / self.sample_rate

        # The first sentence is decoded as far as its first two pieces need (with the post-net's
        # context), the rest when the third is due: the first audio waits for less of a long sentence.
        ramp = first_cuts(self.vocoder.lookahead_frames, self.ramp_chunks, first_frames=self.first_chunk_frames)
        first_frames: int | None = ramp[min(1, len(ramp) - 1)] + self.acoustic.postnet_context

        async def acoustic_stage() -> None:
            nonlocal first_frames
            try:
                async for request in _aiter(requests):
                    await jobs.acquire()
                    NEEDED_AT.set(decoded_seconds)
                    future = loop.run_in_executor(self._executor, decode, self.acoustic, request, False, first_frames)
                    first_frames = None
                    future.add_done_callback(advance)
                    future.add_done_callback(lambda _: jobs.release())
                    await decoded.put((request, future))
                    if not self._own_executor:  # a shared pool: analyse the next sentence once this one's length is known,
                        await asyncio.wait([future])  # so that its NEEDED_AT says when it is due
                    NEEDED_AT.set(decoded_seconds)
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
        # Paced playback keeps only pace_seconds of audio ahead: a vocoder that gathers frames for larger
        # runs (studio) may hold back at most two fifths of that (2 s of the play command's 5).
        vocoder_stream = self.vocoder.stream(max_wait_seconds=0.4 * self.pace_seconds if self.pace_seconds else None)
        gains = GainTrack(hop, self.sample_rate)
        produced = 0  # samples emitted so far (lags the mel by the vocoder's look-ahead)
        frames = 0  # mel frames pushed so far: the true timeline position for word timings
        try:
            index = 0
            while (item := await decoded.get()) is not None:
                request, future = item
                output = await future
                offset = frames * seconds_per_frame
                frames += output.frames
                timings = word_timings(output.durations, request.word_indices, seconds_per_frame, offset, request.word_spans, index)
                marks = mark_timings(output.durations, request.marks, seconds_per_frame, offset, index)
                gains.push(request.gain, output.durations, request.bleep)
                sentence = SentenceTiming(index, offset, frames * seconds_per_frame, *request.char_span, request.text)
                # The stream's first sentence starts with the first chunk and the ramp, across phrase cuts.
                first = [cut for cut in ramp if cut < output.frames] if index == 0 else []
                cuts = first + phrase_cuts(output.durations, request.boundary_levels, MIN_PIECE_FRAMES, first[-1] if first else 0)
                bounds = [0, *cuts, output.frames]
                for piece, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
                    if throttler is not None:
                        for _ in range(max(1, round((hi - lo) * seconds_per_frame))):
                            await throttler.acquire()
                    NEEDED_AT.set(produced / self.sample_rate)
                    if output.features is not None and hi + self.acoustic.postnet_context > len(output.mel):
                        output = await loop.run_in_executor(self._executor, self.acoustic.decode_more, output)
                    samples = gains.apply(await loop.run_in_executor(self._executor, voice_piece, self.acoustic, vocoder_stream, output.mel, request.speaker, lo, hi), produced)
                    last = piece == len(bounds) - 2
                    start = produced / self.sample_rate
                    produced += len(samples)
                    words = tuple(t for t in timings if lo * seconds_per_frame + offset <= t.start < hi * seconds_per_frame + offset)
                    # A mark at the very end of a sentence without a final pause belongs to its last piece.
                    here = tuple(m for m in marks if lo * seconds_per_frame + offset <= m.time < hi * seconds_per_frame + offset or last and m.time >= hi * seconds_per_frame + offset)
                    yield AudioChunk(samples, self.sample_rate, start, index, request.tag, words, last, (sentence,) if piece == 0 else (), here)
                index += 1
            tail = gains.apply(vocoder_stream.finish(), produced)
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
