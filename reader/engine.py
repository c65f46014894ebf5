"""The reading engine: text in, streamed audio out.

document -> Analyzer (sentences, prosody plan) -> reader.model_inputs (token arrays)
-> runtime.StreamingSynthesizer (acoustic model + vocoder, ONNX) -> audio chunks -> a sink.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterable, AsyncIterator, Iterable, Iterator

import numpy as np

from reader_runtime.stream import NEEDED_AT, AudioChunk, MarkTiming, SentenceTiming, SynthesisRequest, WordTiming

from .frontend.analysis import Analyzer, SentenceAnalysis
from .frontend.document import Document
from .errors import ModelError, ReaderError, as_reader_error
from .model_inputs import sentence_to_inputs, token_inputs
from .models import check_models, reading_models
from .paths import models_dir
from .frontend.prosody import BreakLevel
from .prosody_prediction import DEFAULT_PROSODY, LONE_SENTENCE, PREDICTED, PROSODY_MODES, ReadingContext, SentenceCodes
from .prosody_selection import ProsodySelector, Selection
from .vocoders import load_vocoder
from .ssml_requests import ssml_settings

if TYPE_CHECKING:
    from .io.sinks import AudioSink
    from .transfer import ProsodyTransfer, TransferPlan

    # What a Reader reads: a text (plain, Markdown), a split Document, or a prosody transfer plan.
    Readable = str | Document | TransferPlan

__all__ = ["NEEDED_AT", "Audio", "AudioChunk", "MarkTiming", "PlannedSentence", "Reader", "SentenceTiming", "WordTiming"]

DEFAULT_VOICE = "lj"

# Silence after a sentence and after a paragraph (or heading). Inside sentences the acoustic model
# sets pause lengths itself from the break levels, as learned from the recordings; sentence and
# paragraph ends are not in the training clips (LJ clips are cut at those silences), so they are
# set here: 0.5 s is the upper quartile of LJ's pauses at full stops inside clips, and a paragraph
# gets twice that, the usual audiobook practice.
FINAL_PAUSE_SECONDS = {BreakLevel.SENTENCE: 0.5, BreakLevel.PARAGRAPH: 1.0}
MAX_PAUSE_SECONDS = 10.0

# Streams on a shared executor (a service) start with a first chunk of this many frames (0.7 s of audio,
# reader_runtime.stream.first_cuts), not 0.23 s, and SHARED_RAMP_CHUNKS pieces growing from that size:
# each next piece waits its turn behind other streams' work, so the listener's player has 0.9 s (with
# its pre-roll) to wait for it, and the pieces due early are small when many streams start at once.
SHARED_FIRST_CHUNK_FRAMES = 60
SHARED_RAMP_CHUNKS = 3


@dataclass(frozen=True)
class Audio:
    """A whole reading: samples and where each sentence and word falls in them.

    Timings are in seconds from the start of `samples`; their `start_char`/`end_char` are
    character offsets into the text that was read.
    """

    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    sentences: tuple[SentenceTiming, ...] = field(default=())
    words: tuple[WordTiming, ...] = field(default=())
    marks: tuple[MarkTiming, ...] = field(default=())  # SSML <mark>s

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class PlannedSentence:
    """An analysed sentence with the prosody chosen for it (Reader.sentences), ready to render."""

    analysis: SentenceAnalysis
    selection: Selection  # reader.prosody_selection: the acoustic embedding, and the bank utterance it came from
    context: ReadingContext = LONE_SENTENCE  # the sentence before it in its paragraph, for predicted prosody


class Reader:
    """Loads the front end, acoustic model and vocoder once; reads any number of documents.

    Construction returns once the models the first sentence needs are loaded; the parser (spaCy: 1-3 s)
    goes on loading in a background thread, and a reading that needs it first waits for it (unless
    `stream(..., quick_start=True)`).

    Thread- and task-safe: one Reader may serve several `stream()`s at once (asyncio tasks in one
    event loop, or several loops in several threads) and `synthesize()`/`render()` calls from several
    threads. They share the loaded models (read-only ONNX sessions, the parser behind a lock); each
    reading has its own queues, vocoder state and prosody history, so audio never mixes, and a text
    gives the same audio whether it is read alone or beside others.

    Example::

        reader = Reader(voice="lj")
        audio = reader.synthesize("Good morning. Here is the news.")
        async for chunk in reader.stream(article):  # chunk.samples, chunk.words, chunk.sentences
            ...
    """

    def __init__(
        self,
        voice: str | None = None,
        speed: float = 1.0,
        device: str = "cpu",
        parser: str = "spacy",
        lexicon: str | Path | None = None,
        threads: int = 0,
        models: Path | None = None,
        prosody: str | None = None,
        sentence_pause: float | None = None,
        paragraph_pause: float | None = None,
        vocoder: str | None = None,
    ) -> None:
        """
        voice: a name from `voices()` (default "lj"); speed: 0.25-4 (1 = the voice's own pace);
        device: "cpu" or "cuda"; parser: "spacy" or "stanza"; lexicon: a user lexicon file;
        threads: onnxruntime threads per model (0 = onnxruntime's choice); models: the model folder
        (default: the shipped models, or $READER_MODELS_DIR); prosody: how each sentence's prosody is
        chosen, one of reader.prosody_prediction.PROSODY_MODES: an acoustic-embedding selector
        (reader.prosody_selection) or "predicted" (phoneme-level codes from the linguistic code
        predictor, reader.prosody_prediction) (default: DEFAULT_PROSODY; a mode named here whose
        models are unusable is a ModelError, the default falls back with a warning).
        sentence_pause / paragraph_pause: seconds of silence after a sentence / after a paragraph or
        heading, 0-10 (default: FINAL_PAUSE_SECONDS, 0.5 and 1.0); like every pause they scale with `speed`.
        vocoder: "studio" (HiFi-GAN V1 on the fast vocoder's output: better sound, about 20-35 times the
        whole engine's compute) or "fast" (reader.vocoders; default DEFAULT_VOCODER; OpenAI's tts-1-hd / tts-1).
        A studio vocoder named here whose model is missing or corrupt is a ModelError; the default falls
        back to fast with a warning. `vocoder_name` says which one reads.
        Raises ReaderError for a bad setting and ModelError for a missing or corrupt model: every model
        a reading uses is checked against its manifest here (reader.models).
        """
        from reader_runtime.acoustic import AcousticModel
        from reader_runtime.errors import RuntimeModelError, UnknownVoiceError
        from reader_runtime.session import SessionOptions
        from reader_runtime.vocoder import Vocoder

        if not 0.25 <= speed <= 4.0:
            raise ReaderError(f"speed {speed} is out of range: use a value between 0.25 and 4")
        if prosody is not None and prosody not in PROSODY_MODES:
            raise ReaderError(f"unknown prosody mode {prosody!r}: use one of {', '.join(PROSODY_MODES)}")
        self.speed = speed
        self.final_pauses = final_pauses(sentence_pause, paragraph_pause)  # seconds after a sentence and a paragraph
        folder = models or models_dir()
        check_models(reading_models(folder))
        options = SessionOptions(device=device, intra_op_threads=threads)
        try:
            self.acoustic = AcousticModel.load(folder / "acoustic", options)
            self.vocoder = Vocoder.load(folder / "vocoder", options)
            self.speaker = self.acoustic.speaker(voice or DEFAULT_VOICE)
        except (RuntimeModelError, UnknownVoiceError) as exc:
            raise as_reader_error(exc) from None
        acoustic_features = {k: v for k, v in self.acoustic.manifest.get("features", {}).items() if k in asdict(self.vocoder.spec.features)}
        if acoustic_features != asdict(self.vocoder.spec.features):
            raise ModelError(
                f"the vocoder ({folder / 'vocoder'}) was made for other features than the acoustic model ({folder / 'acoustic'}): "
                f"{asdict(self.vocoder.spec.features)} vs {acoustic_features}"
            )
        self.fast_vocoder = self.vocoder
        self.vocoder_name, self.vocoder = load_vocoder(vocoder, folder, self.fast_vocoder, options)
        self.analyzer = Analyzer(parser=parser, lexicon=lexicon)
        # Per-sentence acoustic embedding (reader.prosody_selection): predicted prosody reads with the
        # centroid and puts the sentence's melody in its phoneme-level codes instead.
        mode = self.prosody_mode = prosody or DEFAULT_PROSODY
        selector = "centroid" if mode == PREDICTED else mode
        self.prosody = ProsodySelector.load(selector, folder, self.acoustic, self.speaker, required=prosody is not None)
        text_to_mel_sha256 = self.acoustic.manifest["files"]["text_to_mel"]["sha256"]
        self.predicted = SentenceCodes.load(folder, text_to_mel_sha256, required=prosody == PREDICTED) if mode == PREDICTED else None

    @property
    def sample_rate(self) -> int:
        return self.acoustic.sample_rate

    def keep_real_time(self) -> bool:
        """Before playback: if this reader reads with the studio vocoder and the machine cannot keep
        real time with it now, switch to the fast vocoder (True: it switched; playback never stutters)."""
        from .vocoders import keeps_real_time

        if self.vocoder_name != "studio" or keeps_real_time(self.vocoder):
            return False
        self.vocoder, self.vocoder_name = self.fast_vocoder, "fast"
        return True

    def voices(self) -> list[str]:
        return [s.name for s in self.acoustic.speakers]

    def request(
        self, sentence: SentenceAnalysis, selection: Selection | None = None, context: ReadingContext = LONE_SENTENCE, pauses: dict | None = None
    ) -> SynthesisRequest:
        """The synthesis request for one analysed sentence (`selection`: its reader.prosody_selection
        choice, made here without long-form memory if not given; `context`: where it stands in its
        paragraph, for a predicted-prosody variant that reads it, a lone sentence if not given;
        `pauses`: this reading's final_pauses(), default the Reader's)."""
        pauses = pauses or self.final_pauses
        inputs = sentence_to_inputs(sentence)
        boundary = inputs.boundary_mask
        levels = np.where(boundary, inputs.break_ids - 1, -1)
        final = sentence.breaks[-1]
        if final >= BreakLevel.SENTENCE:
            levels[np.flatnonzero(boundary)[-1]] = int(final)
        pause_frames = np.full(len(inputs), -1.0, np.float32)
        if final in pauses:
            frames_per_second = self.sample_rate / self.acoustic.hop_length
            pause_frames[np.flatnonzero(boundary)[-1]] = round(pauses[final] * frames_per_second)
        tokens = token_inputs(inputs)
        embedding = (selection or self.prosody.select(sentence)).embedding
        codes = self.predicted.codes(sentence, self.speaker.id, context) if self.predicted is not None else None
        word_spans = np.array([(w.start, w.end) for w in sentence.words], np.int64).reshape(-1, 2)
        voice = ssml_settings(sentence, inputs, levels, pause_frames, pauses, self.sample_rate / self.acoustic.hop_length)
        return SynthesisRequest(
            tokens, inputs.word_indices, levels, pause_frames, self.speaker, embedding, self.speed, sentence,
            word_spans=word_spans, char_span=(sentence.start, sentence.end), text=sentence.text, prosody_codes=codes, **voice,
        )  # fmt: skip

    def split(self, text: str) -> Document:
        """`text`'s chapters, paragraphs and sentences as this reader reads them (no analysis yet)."""
        return self.analyzer.split(text)

    def sentences(self, text: str | Document, quick_start: bool = False) -> Iterator[PlannedSentence]:
        """The sentences of `text` in reading order, analysed lazily (memory stays flat on a whole book),
        each with its prosody chosen with the long-form memory of the sentences before it: the same
        choices whichever of them are then rendered, and in how many runs. `quick_start` as in stream()."""
        if isinstance(text, Document):
            document = text
        elif isinstance(text, str):
            document = self.analyzer.split(text)
        else:
            raise TypeError(f"expected a str or a reader.frontend.document.Document, got {type(text).__name__}")
        reading = self.prosody.reading()  # the long-form rule's memory, per document
        previous = None
        for sentence in self.analyzer.iter_sentences(document, quick_start):
            yield PlannedSentence(sentence, reading.select(sentence), ReadingContext.after(previous, sentence))
            previous = sentence

    def requests(
        self, text: str | Document, quick_start: bool = False, speed: float | None = None, sentence_pause: float | None = None, paragraph_pause: float | None = None
    ) -> Iterator[SynthesisRequest]:
        """Synthesis requests in reading order (see sentences()); `speed` and the pauses: this reading's
        (default: the Reader's)."""
        if speed is not None and not 0.25 <= speed <= 4.0:
            raise ReaderError(f"speed {speed} is out of range: use a value between 0.25 and 4")
        pauses = final_pauses(sentence_pause, paragraph_pause, self.final_pauses)
        for planned in self.sentences(text, quick_start):
            request = self.request(planned.analysis, planned.selection, planned.context, pauses)
            yield request if speed is None else replace(request, speed=speed)

    async def stream(
        self, text: Readable, pace_seconds: float | None = None, quick_start: bool = False, speed: float | None = None, executor: Executor | None = None,
        sentence_pause: float | None = None, paragraph_pause: float | None = None,
    ) -> AsyncIterator[AudioChunk]:
        """Audio chunks (reader_runtime.stream.AudioChunk) of `text` as they are synthesised, phrase by phrase.

        Each chunk carries the words (`chunk.words`) and sentences (`chunk.sentences`) that start in
        it, with times in seconds from the start of the stream and character offsets into `text`
        (for a Document: into `document.text`); a timing arrives with or up to the vocoder's
        look-ahead (about 0.3 s) before its audio (see AudioChunk). Analysis of the next sentences runs in a worker
        thread while the current one is synthesised. `pace_seconds` (playback): stay at most this
        many seconds of audio ahead of real time. `quick_start` (playback, piping): if the parser is
        still loading when the first sentence is due (a fresh Reader), plan that sentence from its
        punctuation rather than wait for it; the first sentence may then sound different from run to
        run. Without it (the default) the same text always gives the same audio. `speed`: this
        reading's pace, 0.25-4, and `sentence_pause`/`paragraph_pause` its pauses (default: the
        Reader's; a service reads each request with its own).
        `executor`: where the analysis and the models run (default: threads of this stream's own; a
        service passes one pool for all its streams, see stream_requests()).

        Closing the stream (`await stream.aclose()`, or leaving `async with
        contextlib.aclosing(reader.stream(...))`) returns once its worker threads have stopped; only
        the sentence in progress is finished. Breaking out of `async for` closes it the same way as
        soon as the event loop gets control (the generator is finalised).
        """
        if not isinstance(text, (str, Document)):  # a prosody transfer plan: its one request
            if not callable(getattr(text, "request", None)):
                raise TypeError(f"expected a str, a Document or a transfer plan, got {type(text).__name__}")
            async with contextlib.aclosing(self.stream_requests([text.request()], pace_seconds, executor)) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        analysis = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis")
        sentences = self.requests(text, quick_start, speed, sentence_pause, paragraph_pause)
        first_audio = asyncio.Event()
        pending = None  # the analysis step in progress

        async def analysed() -> AsyncIterator[SynthesisRequest]:
            nonlocal pending
            while (request := await asyncio.wrap_future(pending := analysis.submit(next, sentences, None))) is not None:
                yield request
                # Parsing ahead waits for the first audio: until then nothing competes with the first
                # sentence for the CPU and the GIL (time to first audio).
                await first_audio.wait()

        try:
            async with contextlib.aclosing(self.stream_requests(analysed(), pace_seconds, executor)) as chunks:
                async for chunk in chunks:
                    first_audio.set()
                    yield chunk
        finally:
            # Wait for the sentence being analysed off the event loop, then drop the analysis generator.
            if executor is None:
                await asyncio.to_thread(analysis.shutdown, wait=True, cancel_futures=True)
            elif pending is not None and not pending.cancel():
                await asyncio.to_thread(concurrent.futures.wait, [pending])
            sentences.close()

    async def stream_requests(
        self, requests: Iterable[SynthesisRequest] | AsyncIterable[SynthesisRequest], pace_seconds: float | None = None, executor: Executor | None = None
    ) -> AsyncIterator[AudioChunk]:
        """Audio chunks of ready-made synthesis requests, phrase by phrase through one vocoder stream:
        the engine's one way to audio, which stream() and every method below use. A request comes from
        request(), or carries prosody from elsewhere (a prosody transfer plan's request(): codes and an
        F0 contour). Closing it returns once the sentence in progress is finished, as for stream().
        `executor`: run the models' calls there (a service's shared, deadline-ordered pool; it then
        decodes one sentence ahead rather than four, so that many streams' look-ahead waits its turn,
        and starts with a longer first chunk and a short ramp, SHARED_FIRST_CHUNK_FRAMES)."""
        from reader_runtime.stream import StreamingSynthesizer

        ahead = {"max_queued": 1, "first_chunk_frames": SHARED_FIRST_CHUNK_FRAMES, "ramp_chunks": SHARED_RAMP_CHUNKS} if executor is not None else {}
        synthesizer = StreamingSynthesizer(self.acoustic, self.vocoder, pace_seconds=pace_seconds, executor=executor, **ahead)
        try:
            async with contextlib.aclosing(synthesizer.stream(requests)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            await asyncio.to_thread(synthesizer.close)

    def synthesize(self, text: Readable) -> Audio:
        """The whole text as one array, with its sentence and word timings (for short texts; use
        stream() or render() for long ones). Nothing speakable gives zero samples and no timings.
        Called from a running event loop, it reads in a helper thread and blocks the caller."""
        return _run_to_completion(self._collect(self.stream(text)))

    def render_sentences(self, sentences: Iterable[PlannedSentence]) -> Audio:
        """A run of planned sentences (from sentences()) as one array, with their sentence and word
        timings: seconds from the run's start, `sentence_index` counting the run's sentences from 0.
        Each run has a vocoder stream of its own, so runs rendered apart (a book in resumable pieces)
        join at a sentence boundary, inside the sentence's final pause."""
        return self.synthesize_requests(self.request(planned.analysis, planned.selection, planned.context) for planned in sentences)

    def synthesize_requests(self, requests: Iterable[SynthesisRequest]) -> Audio:
        """Ready-made synthesis requests (see stream_requests()) as one array, with their timings."""
        return _run_to_completion(self._collect(self.stream_requests(requests)))

    async def _collect(self, chunks: AsyncIterator[AudioChunk]) -> Audio:
        samples: list[np.ndarray] = []
        sentences: list[SentenceTiming] = []
        words: list[WordTiming] = []
        marks: list[MarkTiming] = []
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                samples.append(chunk.samples)
                sentences.extend(chunk.sentences)
                words.extend(chunk.words)
                marks.extend(chunk.marks)
        whole = np.concatenate(samples) if samples else np.zeros(0, np.float32)
        return Audio(whole, self.sample_rate, tuple(sentences), tuple(words), tuple(marks))

    def speak(
        self, text: Readable, output: str | os.PathLike | AudioSink | None = None, pace_seconds: float | None = None, quick_start: bool = False, source: str = "the text",
        marks: str | os.PathLike | None = None,
    ) -> float:
        """Read `text` into `output` and return the seconds of audio written: the one way every front
        door (the command line, the audiobook, the service) sends a reading to a sink.

        `output`: None plays on the sound card, "-" writes raw 16-bit PCM to standard output, a path
        writes a .wav or .flac file (under a temporary name, renamed when complete), or any
        reader.io.sinks.AudioSink. `pace_seconds` and `quick_start` as in stream(). An error or
        interruption cancels the sink (playback stops, a partial file is deleted). Raises ReaderError
        for an unwritable output, a full disk, or a text with nothing speakable (named by `source`).
        `marks`: also write speech marks there (reader.marks: Amazon Polly's JSON lines, byte offsets
        into `text`), renamed into place with the audio.
        """
        from .io.sinks import AudioSink, open_sink
        from .marks import SpeechMarksFile

        async def pump(sink: AudioSink) -> int:
            samples = 0
            async with contextlib.aclosing(self.stream(text, pace_seconds, quick_start)) as stream:
                async for chunk in stream:
                    await asyncio.to_thread(sink.write, chunk.samples)
                    if marks_file is not None:
                        marks_file.write(chunk)
                    samples += len(chunk.samples)
            return samples

        marks_file = None if marks is None else SpeechMarksFile(marks, text.text if isinstance(text, Document) else text if isinstance(text, str) else "")
        try:
            with output if isinstance(output, AudioSink) else open_sink(output, self.sample_rate) as sink:
                samples = _run_to_completion(pump(sink))
                if samples == 0:
                    raise ReaderError(f"nothing speakable in {source}")
        except BaseException:
            if marks_file is not None:
                marks_file.discard()
            raise
        if marks_file is not None:
            marks_file.commit()
        return samples / self.sample_rate

    def render(self, text: Readable, path: str | os.PathLike, marks: str | os.PathLike | None = None) -> float:
        """Read `text` into an audio file (.wav or .flac, 16-bit) and return its length in seconds
        (speak() into a file: nothing under the final name on error; memory flat however long the text).
        `marks`: a path for the reading's speech marks (Polly's JSON lines, see speak())."""
        from .io.sinks import check_file_target

        return self.speak(text, check_file_target(path), source=str(path), marks=marks)

    def prosody_transfer(self) -> ProsodyTransfer:
        """The prosody transfer stages (reader.transfer) over this reader's acoustic model and front end:
        they analyse a recording into a plan, whose request() any request method here renders."""
        from .transfer import ProsodyTransfer

        return ProsodyTransfer(self.acoustic, self.analyzer)

    def prepare_transfer(
        self, source: str | os.PathLike, text: str, voice: str | None = None, source_voice: str | None = None, mode: str | None = None, force: bool = False
    ) -> TransferPlan:
        """A plan to say `text` in `voice` (default: this reader's) with the prosody of `source`, a
        recording of `text` (CopyCat prosody transfer, reader.transfer); stream(), synthesize() and
        speak() read it. `source_voice`: the known voice who speaks in it (default: the nearest known
        voice); `mode`: reader.transfer.MODES (default: its DEFAULT_MODE); `plan.notes()` says what
        was adjusted. Raises ReaderError for a bad recording, or a transcript that does not match it
        unless `force`."""
        return self.prosody_transfer().prepare(source, text, voice or self.speaker.name, source_voice, mode, force)

    def transfer(
        self, source: str | os.PathLike, text: str, voice: str | None = None, source_voice: str | None = None, mode: str | None = None, force: bool = False
    ) -> Audio:
        """prepare_transfer()'s plan, synthesised."""
        return self.synthesize(self.prepare_transfer(source, text, voice, source_voice, mode, force))


@dataclass(frozen=True)
class VoiceInfo:
    name: str
    default: bool  # the voice a Reader reads with when none is named
    synthetic: bool  # made by the model rather than recorded (see the acoustic manifest)
    vocoders: tuple[str, ...] = ("fast",)  # the vocoders it can be read with (reader.vocoders.VOCODERS)


def list_voices(models: Path | None = None) -> list[VoiceInfo]:
    """The voices of the shipped models (or of the `models` folder), without loading a Reader."""
    from reader_runtime.errors import RuntimeModelError

    from .models import load_acoustic
    from .vocoders import available_vocoders

    folder = models or models_dir()
    try:
        acoustic = load_acoustic(folder)
    except RuntimeModelError as exc:
        raise as_reader_error(exc) from None
    vocoders = tuple(available_vocoders(folder))  # one studio generator serves every voice
    return [VoiceInfo(s.name, s.name.lower() == DEFAULT_VOICE, s.synthetic, vocoders) for s in acoustic.speakers]


def final_pauses(sentence_pause: float | None, paragraph_pause: float | None, base: dict = FINAL_PAUSE_SECONDS) -> dict:
    """The seconds of silence after a sentence and a paragraph: `base`'s, with those given (0-10 s)."""
    pauses = dict(base)
    for level, seconds, name in ((BreakLevel.SENTENCE, sentence_pause, "sentence"), (BreakLevel.PARAGRAPH, paragraph_pause, "paragraph")):
        if seconds is not None:
            if not 0.0 <= seconds <= MAX_PAUSE_SECONDS:
                raise ReaderError(f"{name} pause {seconds} is out of range: use 0 to {MAX_PAUSE_SECONDS:g} seconds")
            pauses[level] = float(seconds)
    return pauses


def _run_to_completion(coroutine):
    """asyncio.run, also from code already inside an event loop (then in a helper thread)."""
    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coroutine)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reader") as helper:
            return helper.submit(asyncio.run, coroutine).result()
    finally:
        # Interrupted before the loop started it (SIGTERM, Ctrl-C): close it so that it is not
        # reported on stderr as "never awaited"; a coroutine that ran is already closed.
        coroutine.close()
