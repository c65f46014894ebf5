"""Audiobooks: `reader render BOOK -o OUTDIR/`.

A book (plain text, Markdown or EPUB) is cut into chapters; each chapter is a ChapterJob that any
worker (this process, a local process pool, or a Ray task) turns into one audio file and a
ChapterResult (durations, sentence and word timings). The book is then assembled: a whole-book file
with chapter markers (M4B through ffmpeg, else FLAC plus a cue sheet), `book.txt` (the text that was
read, which every character offset points into) and `manifest.json`.

Resuming. A chapter is rendered in segments of `segment_sentences` sentences; each segment is saved
under OUTDIR/.reader-work/<chapter key>/ as soon as it is synthesised, and the chapter's result is
saved there when its file is complete. The key is a hash of everything the chapter's file depends
on (its text, the voice options, the models, the audio format, the file name), so changed input or
options never reuse stale work. Each segment starts a fresh vocoder stream at a sentence boundary
(inside the sentence's final pause, so the seam is silent), and the prosody selector's long-form
memory is rebuilt on resume by selecting the finished segments' sentences again (selection is
deterministic), so an interrupted and resumed render is identical to an uninterrupted one. ONNX
sessions run single-threaded: parallelism comes from chapters (`--jobs`), without oversubscription.
Every file is written under a temporary name and renamed when complete (runtime.sinks.AtomicFile).
A folder holding files that no render of this book made is refused unless `overwrite` is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path

import numpy as np

from runtime.errors import AudioSinkError
from runtime.manifest import sha256_file
from runtime.sinks import AtomicFile, write_failure

from ..document import read_input, split_document
from ..errors import DiskFullError, OutputError, ReaderError, as_reader_error
from ..paths import models_dir

WORK_FORMAT_VERSION = 1
MANIFEST_VERSION = 1
WORK_FOLDER = ".reader-work"
# About a minute of speech: an interruption loses at most that much synthesis.
SEGMENT_SENTENCES = 20
# Whole-book AAC bit rate: speech at 22 kHz mono.
M4B_BITRATE = "64k"

Progress = Callable[[int, float], None]  # (characters read, seconds of audio produced)


# ---------------------------------------------------------------------------------------- books


@dataclass(frozen=True)
class BookChapter:
    title: str
    start: int  # [start, end): the chapter in Book.text
    end: int


@dataclass(frozen=True)
class Book:
    title: str
    text: str  # what is read (for EPUB: the extracted Markdown-like text)
    chapters: list[BookChapter]


def is_epub(path: str) -> bool:
    if path == "-":
        return False
    if path.lower().endswith(".epub"):
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(58)[30:58] == b"mimetypeapplication/epub+zip"  # the OCF container's first entry
    except OSError:
        return False  # read_input gives the proper message


def read_book(path: str) -> Book:
    """A text, Markdown or EPUB file (or '-' for standard input) as one text and its chapters."""
    if is_epub(path):
        from ..epub import read_epub

        epub = read_epub(path)
        texts, chapters, cursor = [], [], 0
        for number, chapter in enumerate(epub.chapters, 1):
            chapters.append(BookChapter(chapter.title or f"Chapter {number}", cursor, cursor + len(chapter.text)))
            texts.append(chapter.text)
            cursor += len(chapter.text) + 2
        return Book(epub.title or Path(path).stem, "\n\n".join(texts), chapters)
    text = read_input(path)
    # Chapters run from the line of one heading to the line of the next, so each chapter's text
    # starts with its own heading markup (and its heading is read as a heading).
    found = split_document(text).chapters
    bounds = [0] + [text.rfind("\n", 0, c.start) + 1 for c in found[1:]] + [len(text)]
    chapters = [
        BookChapter(c.title or f"Chapter {number}", start, end)
        for number, (c, start, end) in enumerate(zip(found, bounds[:-1], bounds[1:]), 1)
    ]
    return Book(Path(path).stem if path != "-" else "book", text, chapters)


def read_text(path: str) -> str:
    """The text of a text, Markdown or EPUB file (or '-' for standard input), for reading it whole."""
    return read_book(path).text if is_epub(path) else read_input(path)


def require_speakable(text: str, source: str) -> None:
    """Refuse, before any model loads, a text without a letter or digit to read."""
    if not any(ch.isalnum() for ch in text):
        raise ReaderError(f"nothing speakable in {'standard input' if source == '-' else source}")


# ---------------------------------------------------------------------------------------- audio files


@dataclass(frozen=True)
class AudioFormat:
    name: str
    extension: str
    soundfile: tuple[str, str] | None  # (format, subtype) for libsndfile
    ffmpeg: tuple[str, ...]  # encoder arguments and muxer, when libsndfile cannot write it
    lossless: bool


FORMATS = {
    "flac": AudioFormat("flac", ".flac", ("FLAC", "PCM_16"), ("-c:a", "flac", "-f", "flac"), True),
    "wav": AudioFormat("wav", ".wav", ("WAV", "PCM_16"), ("-c:a", "pcm_s16le", "-f", "wav"), True),
    "ogg": AudioFormat("ogg", ".ogg", ("OGG", "VORBIS"), ("-c:a", "libvorbis", "-f", "ogg"), False),
    "mp3": AudioFormat("mp3", ".mp3", ("MP3", "MPEG_LAYER_III"), ("-c:a", "libmp3lame", "-q:a", "4", "-f", "mp3"), False),
    # libsndfile's Opus encoder takes 8-48 kHz rates only, not the voices' 22,050 Hz: ffmpeg resamples.
    "opus": AudioFormat("opus", ".opus", None, ("-c:a", "libopus", "-b:a", "32k", "-ar", "48000", "-f", "ogg"), False),
}


def ffmpeg_path() -> str | None:
    return shutil.which("ffmpeg")


def uses_soundfile(fmt: AudioFormat) -> bool:
    import soundfile

    return fmt.soundfile is not None and soundfile.check_format(*fmt.soundfile)


def check_format(name: str) -> AudioFormat:
    """The format, if libsndfile or ffmpeg on PATH can write it; else a ReaderError that says what to install."""
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ReaderError(f"unknown audio format {name!r}: use one of {', '.join(FORMATS)}")
    if not uses_soundfile(fmt) and ffmpeg_path() is None:
        raise ReaderError(f"writing {name} needs ffmpeg (not found on PATH); install it or use --format flac")
    return fmt


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with AtomicFile(path) as partial:
        partial.write_bytes(data)


class AudioWriter:
    """Writes 16-bit mono audio into `path` with libsndfile or, for what it cannot write, an ffmpeg pipe."""

    def __init__(self, path: Path, fmt: AudioFormat, sample_rate: int) -> None:
        self.path = path
        if uses_soundfile(fmt):
            import soundfile

            self._file = soundfile.SoundFile(path, "w", sample_rate, 1, fmt.soundfile[1], format=fmt.soundfile[0])
            self._ffmpeg = None
        else:
            command = [ffmpeg_path() or "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "s16le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0"]
            self._ffmpeg = subprocess.Popen([*command, *fmt.ffmpeg, str(path)], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
            self._file = None

    def write(self, samples: np.ndarray) -> None:
        if self._file is not None:
            self._file.write(samples)
        else:
            self._ffmpeg.stdin.write(samples.astype("<i2").tobytes())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            return
        self._ffmpeg.stdin.close()
        error = self._ffmpeg.stderr.read().decode(errors="replace").strip()
        if self._ffmpeg.wait() != 0:
            raise OSError(errno.ENOSPC if "No space left" in error else errno.EIO, (error.splitlines() or ["ffmpeg failed"])[-1])

    def abort(self) -> None:
        if self._ffmpeg is not None:
            self._ffmpeg.kill()
            self._ffmpeg.wait()
        else:
            with contextlib.suppress(Exception):  # the partial file is deleted either way
                self._file.close()


def write_audio(path: Path, fmt: AudioFormat, sample_rate: int, pieces: Iterator[np.ndarray]) -> None:
    """Write int16 pieces as one file, under a temporary name until complete."""
    with AtomicFile(path) as partial:
        writer = AudioWriter(partial, fmt, sample_rate)
        try:
            for samples in pieces:
                writer.write(samples)
        except BaseException:
            writer.abort()
            raise
        writer.close()


# ---------------------------------------------------------------------------------------- jobs and results


@dataclass(frozen=True)
class RenderOptions:
    """The reader settings a chapter's audio depends on."""

    voice: str | None = None
    speed: float = 1.0
    device: str = "cpu"
    parser: str = "spacy"
    lexicon: str | None = None
    prosody: str | None = None  # None: the Reader's default (reader.prosody_selection.DEFAULT_SELECTOR)
    segment_sentences: int = SEGMENT_SENTENCES

    def make_reader(self):
        from ..engine import Reader

        return Reader(voice=self.voice, speed=self.speed, device=self.device, parser=self.parser, lexicon=self.lexicon, prosody=self.prosody, threads=1)


@dataclass(frozen=True)
class ChapterJob:
    index: int  # 1-based
    title: str
    text: str  # the chapter's text; timings are relative to it
    key: str  # hash of everything the chapter's file depends on
    audio_path: Path
    work_dir: Path
    format: AudioFormat
    options: RenderOptions
    fingerprint: str  # of the options, lexicon and models (see fingerprint())


@dataclass(frozen=True)
class TimedWord:
    text: str  # the spoken form (e.g. "twenty" for "20")
    start_char: int
    end_char: int
    start: float
    end: float


@dataclass(frozen=True)
class TimedSentence:
    start_char: int
    end_char: int
    start: float  # from its first frame to the end of its final pause: sentences tile the chapter
    end: float
    words: list[TimedWord]
    prosody: str | None  # the bank utterance whose acoustic embedding was used (None: the centroid)

    @classmethod
    def from_json(cls, data: dict) -> TimedSentence:
        return cls(**{**data, "words": [TimedWord(**w) for w in data["words"]]})

    def shifted(self, chars: int, seconds: float) -> TimedSentence:
        def move(t: float) -> float:
            return round(t + seconds, 4)

        words = [TimedWord(w.text, w.start_char + chars, w.end_char + chars, move(w.start), move(w.end)) for w in self.words]
        return TimedSentence(self.start_char + chars, self.end_char + chars, move(self.start), move(self.end), words, self.prosody)


@dataclass(frozen=True)
class ChapterResult:
    index: int
    title: str
    key: str
    file: str | None  # None: nothing speakable in the chapter, no file
    sha256: str | None
    samples: int
    sample_rate: int
    sentences: list[TimedSentence]  # chapter-relative characters and seconds

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate

    @classmethod
    def load(cls, path: Path) -> ChapterResult:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{**data, "sentences": [TimedSentence.from_json(s) for s in data["sentences"]]})


@dataclass(frozen=True)
class Segment:
    """A stretch of `segment_sentences` sentences of a chapter, saved as soon as it is synthesised."""

    samples: np.ndarray  # int16
    sentences: list[TimedSentence]  # segment-relative seconds

    def save(self, path: Path) -> None:
        timings = json.dumps([asdict(s) for s in self.sentences], ensure_ascii=False)
        with AtomicFile(path) as partial, partial.open("wb") as fh:
            np.savez(fh, samples=self.samples, sentences=np.array(timings))

    @classmethod
    def load(cls, path: Path) -> Segment:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["samples"], [TimedSentence.from_json(s) for s in json.loads(str(data["sentences"]))])


# ---------------------------------------------------------------------------------------- rendering a chapter


def _synthesize_segment(synthesizer, requests: list, selections: list) -> Segment:
    from runtime.sinks import to_pcm16

    async def collect():
        pieces, sentences, words = [], [], {}
        async with contextlib.aclosing(synthesizer.stream(requests)) as chunks:
            async for chunk in chunks:
                pieces.append(to_pcm16(chunk.samples))
                sentences.extend(chunk.sentences)
                for word in chunk.words:
                    words.setdefault(chunk.request_index, []).append(word)
        return pieces, sentences, words

    pieces, sentences, words = asyncio.run(collect())
    spans = [
        TimedSentence(
            s.start_char, s.end_char, round(s.start, 4), round(s.end, 4),
            [
                TimedWord(requests[s.sentence_index].tag.words[w.word_index].text, w.start_char, w.end_char, round(w.start, 4), round(w.end, 4))
                for w in words.get(s.sentence_index, [])
            ],
            selection.utterance.id if (selection := selections[s.sentence_index]).utterance else None,
        )
        for s in sentences
    ]  # fmt: skip
    return Segment(np.concatenate(pieces) if pieces else np.zeros(0, np.int16), spans)


def render_chapter(reader, job: ChapterJob, progress: Progress | None = None) -> ChapterResult:
    """Synthesise one chapter segment by segment (reusing saved segments), write its file, save its result."""
    from runtime.stream import StreamingSynthesizer

    try:
        job.work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_failure(job.work_dir, exc) from None
    document = reader.analyzer.split(job.text)
    reading = reader.prosody.reading()
    sentences = reader.analyzer.iter_sentences(document)
    synthesizer = StreamingSynthesizer(reader.acoustic, reader.vocoder)
    segment_paths, sentence_spans, samples, read_up_to = [], [], 0, 0
    try:
        while batch := list(islice(sentences, job.options.segment_sentences)):
            # Selecting every sentence in order, finished or not, rebuilds the long-form memory exactly.
            selections = [reading.select(sentence) for sentence in batch]
            path = job.work_dir / f"segment-{len(segment_paths):05d}.npz"
            if path.exists():
                segment = Segment.load(path)
            else:
                segment = _synthesize_segment(synthesizer, [reader.request(s, sel) for s, sel in zip(batch, selections)], selections)
                segment.save(path)
            segment_paths.append(path)
            sentence_spans.extend(s.shifted(0, samples / reader.sample_rate) for s in segment.sentences)
            samples += len(segment.samples)
            if progress is not None:
                progress(batch[-1].end - read_up_to, len(segment.samples) / reader.sample_rate)
            read_up_to = batch[-1].end
    finally:
        synthesizer.close()
    if samples:
        write_audio(job.audio_path, job.format, reader.sample_rate, (Segment.load(p).samples for p in segment_paths))
    result = ChapterResult(
        job.index, job.title, job.key, job.audio_path.name if samples else None, sha256_file(job.audio_path) if samples else None,
        samples, reader.sample_rate, sentence_spans,
    )  # fmt: skip
    write_bytes_atomic(job.work_dir / "chapter.json", json.dumps(asdict(result), ensure_ascii=False).encode())
    for path in segment_paths:  # the chapter file holds them now
        path.unlink(missing_ok=True)
    if progress is not None:
        progress(len(job.text) - read_up_to, 0.0)
    return result


def finished_result(job: ChapterJob) -> ChapterResult | None:
    """The saved result of a finished chapter whose file is still there, unchanged."""
    try:
        result = ChapterResult.load(job.work_dir / "chapter.json")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if result.key != job.key:
        return None
    if result.file is not None and not (job.audio_path.is_file() and sha256_file(job.audio_path) == result.sha256):
        return None
    return result


# ---------------------------------------------------------------------------------------- workers


# Per process: the Reader for the last options (loaded by the first chapter that needs it) and, in
# pool workers, the progress queue.
_worker: dict = {}


def _init_worker(progress_queue, worker_pids) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers
    worker_pids.put(os.getpid())
    _worker.update(queue=progress_queue)


def _reader_for(job: ChapterJob):
    # The fingerprint, not just the options: an edited lexicon or new models need a new Reader.
    if _worker.get("fingerprint") != job.fingerprint:
        _worker.update(reader=job.options.make_reader(), fingerprint=job.fingerprint)
    return _worker["reader"]


def _render_in_worker(job: ChapterJob) -> ChapterResult:
    queue = _worker["queue"]
    return render_chapter(_reader_for(job), job, lambda chars, seconds: queue.put((chars, seconds)))


def _render_in_ray(job: ChapterJob) -> ChapterResult:
    return render_chapter(_reader_for(job), job)


def _run_serial(jobs: list[ChapterJob], progress: Progress) -> Iterator[ChapterResult]:
    reader = _reader_for(jobs[0])
    for job in jobs:
        yield render_chapter(reader, job, progress)


def _run_processes(jobs: list[ChapterJob], progress: Progress, workers: int) -> Iterator[ChapterResult]:
    import multiprocessing
    import queue as queues
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # spawn: forking a process that holds onnxruntime and analysis threads can deadlock the child.
    context = multiprocessing.get_context("spawn")
    progress_queue, worker_pids = context.Queue(), context.Queue()

    def drain() -> None:
        with contextlib.suppress(queues.Empty):
            while True:
                progress(*progress_queue.get_nowait())

    def stop_workers() -> None:
        # At once, even while one loads its models: every file is written under a temporary name,
        # so a killed chapter keeps its finished segments.
        with contextlib.suppress(queues.Empty):
            while True:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker_pids.get_nowait(), signal.SIGTERM)

    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context, initializer=_init_worker, initargs=(progress_queue, worker_pids)) as pool:
        pending = {pool.submit(_render_in_worker, job) for job in jobs}
        try:
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                drain()
                for future in done:
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        raise ReaderError("a chapter worker process died (out of memory?); finished chapters are kept: run the same command again") from None
                    yield result
        except BaseException:
            for future in pending:
                future.cancel()
            stop_workers()
            raise
        finally:
            drain()


def _run_ray(jobs: list[ChapterJob], progress: Progress, address: str, workers: int) -> Iterator[ChapterResult]:
    try:
        import ray
        from ray.exceptions import RayTaskError
    except ImportError:
        raise ReaderError("--ray needs Ray: pip install 'reader-engine[ray]'") from None
    import logging

    local = {"num_cpus": workers, "include_dashboard": False} if address == "local" else {}
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, **local)
    except Exception as exc:  # ConnectionError, ValueError for a malformed address, RuntimeError ...
        raise ReaderError(f"cannot connect to Ray at {address}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    try:
        task = ray.remote(num_cpus=1)(_render_in_ray)
        pending = {task.remote(job): job for job in jobs}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(done[0])
                try:
                    result = ray.get(done[0])
                except RayTaskError as exc:
                    raise as_reader_error(exc.cause) or ReaderError(f"chapter {job.index} failed on Ray: {exc.cause!r}") from None
                progress(len(job.text), result.seconds)
                yield result
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    finally:
        ray.shutdown()


# ---------------------------------------------------------------------------------------- the book


def file_title(title: str) -> str:
    """A chapter title as a portable file-name part."""
    cleaned = re.sub(r"[^\w ,.'()&-]+", " ", title, flags=re.UNICODE)
    return " ".join(cleaned.split())[:60].strip(" .") or "chapter"


def chapter_file_names(book: Book, fmt: AudioFormat) -> list[str]:
    """"01 Title.flac", ...: numbered so that they sort in reading order."""
    width = max(2, len(str(len(book.chapters))))
    return [f"{number:0{width}d} {file_title(chapter.title)}{fmt.extension}" for number, chapter in enumerate(book.chapters, 1)]


def fingerprint(options: RenderOptions) -> str:
    """Hash of what the audio depends on besides the text: the options, the user lexicon, every model
    file, the break model, and the engine version."""
    from .. import __version__
    from ..paths import config_dir
    from ..pronounce import DEFAULT_LEXICON_NAME
    from ..prosody import BREAK_MODEL_PATH
    from ..prosody_selection import DEFAULT_SELECTOR

    # The lexicon counts by its content, not where it lies; the default prosody by what it is.
    resolved = replace(options, lexicon=None, prosody=options.prosody or DEFAULT_SELECTOR)
    digest = hashlib.sha256(json.dumps([WORK_FORMAT_VERSION, __version__, asdict(resolved)]).encode())
    lexicon = Path(options.lexicon) if options.lexicon else config_dir() / DEFAULT_LEXICON_NAME
    folder = models_dir()
    models = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc"))  # not the package's own code
    for path in [lexicon, BREAK_MODEL_PATH, *models]:
        digest.update(str(path.relative_to(folder) if path.is_relative_to(folder) else path.name).encode())
        digest.update(sha256_file(path).encode() if path.is_file() else b"-")
    return digest.hexdigest()


@dataclass
class BookProgress:
    """A progress bar (tqdm on standard error, only on a terminal): characters read, ETA, audio made."""

    total: int
    done: int
    seconds: float
    bar: object = field(init=False)

    def __post_init__(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=self.total, initial=self.done, unit="char", unit_scale=True, disable=not sys.stderr.isatty(), file=sys.stderr,
            bar_format="{l_bar}{bar}| {elapsed} elapsed, {remaining} left{postfix}",
        )  # fmt: skip
        self.bar.set_postfix_str(self._audio())

    def _audio(self) -> str:
        return f"{self.seconds / 60:.1f} min of audio"

    def __call__(self, chars: int, seconds: float) -> None:
        self.seconds += seconds
        self.bar.set_postfix_str(self._audio(), refresh=False)
        self.bar.update(chars)

    def close(self) -> None:
        self.bar.close()


def is_folder_output(output: str) -> bool:
    return output.endswith(("/", os.sep)) or os.path.isdir(output)


def _prepare_folder(outdir: Path) -> Path:
    work = outdir / WORK_FOLDER
    try:
        work.mkdir(parents=True, exist_ok=True)
        probe = work / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFullError(f"cannot write to {outdir}: the disk is full") from None
        raise OutputError(f"cannot write to {outdir}: {exc.strerror or exc}") from None
    return work


@contextlib.contextmanager
def _locked(work: Path) -> Iterator[None]:
    with open(work / "lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReaderError(f"another `reader render` is writing to {work.parent}") from None
        yield


def _write_whole_book(outdir: Path, book: Book, chapters: list[tuple[BookChapter, ChapterResult]], fmt: AudioFormat) -> dict:
    """book.m4b with chapter marks through ffmpeg; without ffmpeg, book.flac and a cue sheet."""
    offsets = np.cumsum([0] + [r.samples for _, r in chapters])
    sample_rate = chapters[0][1].sample_rate
    ffmpeg = ffmpeg_path()
    if ffmpeg:
        target = outdir / "book.m4b"

        def escape(value: str) -> str:
            return re.sub(r"([=;#\\\n])", r"\\\1", value)

        lines = [";FFMETADATA1", f"title={escape(book.title)}"]
        for (_, result), start, end in zip(chapters, offsets[:-1], offsets[1:]):
            lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={start * 1000 // sample_rate}", f"END={end * 1000 // sample_rate}", f"title={escape(result.title)}"]
        metadata = outdir / WORK_FOLDER / "book.ffmetadata"
        listing = outdir / WORK_FOLDER / "book.concat"
        write_bytes_atomic(metadata, ("\n".join(lines) + "\n").encode())
        # The concat demuxer's quoting: a ' inside a quoted name is written '\''.
        names = ("'" + str((outdir / r.file).resolve()).replace("'", "'\\''") + "'" for _, r in chapters)
        write_bytes_atomic(listing, "".join(f"file {name}\n" for name in names).encode())
        with AtomicFile(target) as partial:
            command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-i", str(metadata)]
            command += ["-map", "0:a", "-map_metadata", "1", "-map_chapters", "1", "-c:a", "aac", "-b:a", M4B_BITRATE, "-f", "ipod", str(partial)]
            done = subprocess.run(command, capture_output=True, text=True)
            listing.unlink()
            metadata.unlink()
            if done.returncode != 0:
                error = (done.stderr.strip().splitlines() or ["ffmpeg failed"])[-1]
                raise OSError(errno.ENOSPC if "No space left" in done.stderr else errno.EIO, error)
        return {"file": target.name, "chapters_file": None}

    import soundfile

    target = outdir / "book.flac"

    def decoded() -> Iterator[np.ndarray]:
        for _, result in chapters:
            with soundfile.SoundFile(outdir / result.file) as source:
                yield from source.blocks(blocksize=1 << 16, dtype="int16")

    write_audio(target, FORMATS["flac"], sample_rate, decoded())
    cue = [f'TITLE "{book.title.replace(chr(34), chr(39))}"', f'FILE "{target.name}" WAVE']
    for number, ((_, result), start) in enumerate(zip(chapters, offsets[:-1]), 1):
        frames = start * 75 // sample_rate  # cue sheets count CD frames, 75 a second
        cue += [f"  TRACK {number:02d} AUDIO", f'    TITLE "{result.title.replace(chr(34), chr(39))}"', f"    INDEX 01 {frames // 4500:02d}:{frames // 75 % 60:02d}:{frames % 75:02d}"]
    write_bytes_atomic(outdir / "book.cue", ("\n".join(cue) + "\n").encode())
    return {"file": target.name, "chapters_file": "book.cue"}


def render_book(
    source: str,
    outdir: str | Path,
    options: RenderOptions = RenderOptions(),
    audio_format: str = "flac",
    jobs: int = 1,
    ray_address: str | None = None,
    overwrite: bool = False,
) -> dict:
    """Render a book into `outdir` (see the module docstring); returns the manifest. Re-running the same
    call after an interruption continues where it stopped. A folder holding files that no render of
    this book made is refused, unless `overwrite`."""
    outdir = Path(outdir)
    fmt = check_format(audio_format)
    if jobs < 1:
        raise ReaderError(f"--jobs must be at least 1, not {jobs}")
    book = read_book(source)
    require_speakable(book.text, source)
    if not overwrite:
        _check_folder_is_ours(outdir, book, fmt)
    try:
        return _render(book, source, outdir, options, fmt, jobs, ray_address)
    except AudioSinkError as exc:
        error = as_reader_error(exc)
        if isinstance(error, DiskFullError):
            error = DiskFullError(f"{error}; finished chapters are kept: free some space and run the same command again")
        raise error from None


def _check_folder_is_ours(outdir: Path, book: Book, fmt: AudioFormat) -> None:
    """Refuse a folder with files that no render of this book made (the user's own, another book's)."""
    try:
        entries = {path.name for path in outdir.iterdir()}
    except OSError:
        return  # missing (made later) or unreadable (reported when it is prepared)
    work = outdir / WORK_FOLDER
    made = {WORK_FOLDER}
    if work.is_dir():
        try:
            previous = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
        if previous.get("title", book.title) != book.title:
            raise OutputError(f"{outdir} holds the audiobook of another book ({previous['title']}): use another folder, or --overwrite to replace it")
        whole = previous.get("book", {})
        made |= {"manifest.json", "book.txt", whole.get("file"), whole.get("chapters_file")}
        made |= {chapter.get("file") for chapter in previous.get("chapters", [])}
        for saved in work.glob("*/chapter.json"):  # chapters finished before an interruption
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                made.add(ChapterResult.load(saved).file)
        # files written just before an interruption: a chapter without its chapter.json yet, the
        # whole book without the manifest
        made |= {*chapter_file_names(book, fmt), "book.m4b", "book.flac", "book.cue"}
    foreign = sorted(name for name in entries - made if not (name.startswith(".") and name.endswith(".part")))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise OutputError(f"{outdir} holds files this render did not make ({shown}): use an empty folder, or --overwrite to write there anyway")


def _render(book: Book, source: str, outdir: Path, options: RenderOptions, fmt: AudioFormat, jobs: int, ray_address: str | None) -> dict:
    work = _prepare_folder(outdir)
    with _locked(work):
        for leftover in [*outdir.glob(".*.part"), *work.glob("*/.*.part")]:  # from a killed render
            leftover.unlink(missing_ok=True)
        base = fingerprint(options)
        chapter_jobs = []
        for number, (chapter, name) in enumerate(zip(book.chapters, chapter_file_names(book, fmt)), 1):
            text = book.text[chapter.start : chapter.end]
            key = hashlib.sha256(json.dumps([base, fmt.name, name, text]).encode()).hexdigest()[:32]
            chapter_jobs.append(ChapterJob(number, chapter.title, text, key, (outdir / name).resolve(), (work / key).resolve(), fmt, options, base))

        results = {job.index: result for job in chapter_jobs if (result := finished_result(job)) is not None}
        pending = [job for job in chapter_jobs if job.index not in results]
        progress = BookProgress(
            sum(len(j.text) for j in chapter_jobs), sum(len(j.text) for j in chapter_jobs if j.index in results), sum(r.seconds for r in results.values())
        )  # fmt: skip
        try:
            if pending:
                if ray_address:
                    runner = _run_ray(pending, progress, ray_address, jobs)
                elif jobs > 1 and len(pending) > 1:
                    runner = _run_processes(pending, progress, jobs)
                else:
                    runner = _run_serial(pending, progress)
                with contextlib.closing(runner):  # on an error, stops the other chapters' workers now
                    for result in runner:
                        results[result.index] = result
        finally:
            progress.close()

        spoken = [(chapter, results[job.index]) for chapter, job in zip(book.chapters, chapter_jobs) if results[job.index].file]
        if not spoken:
            raise ReaderError(f"nothing speakable in {'standard input' if source == '-' else source}")
        manifest = _assemble(outdir, book, spoken, fmt, options)
        keys = {job.key for job in chapter_jobs}
        for folder in work.iterdir():  # work of chapters no longer in the book
            if folder.is_dir() and folder.name not in keys:
                shutil.rmtree(folder, ignore_errors=True)
        return manifest


def _assemble(outdir: Path, book: Book, spoken: list[tuple[BookChapter, ChapterResult]], fmt: AudioFormat, options: RenderOptions) -> dict:
    """book.txt, the whole-book file (unless unchanged since the last run) and manifest.json."""
    manifest_path = outdir / "manifest.json"
    try:
        previous = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    text_path = outdir / "book.txt"
    if not text_path.is_file() or text_path.read_text(encoding="utf-8") != book.text:
        write_bytes_atomic(text_path, book.text.encode())
    book_key = hashlib.sha256(json.dumps([[r.key for _, r in spoken], book.title, ffmpeg_path() is not None]).encode()).hexdigest()[:32]
    whole = previous.get("book", {})
    if whole.get("key") != book_key or not (outdir / whole.get("file", "")).is_file():
        whole = {**_write_whole_book(outdir, book, spoken, fmt), "key": book_key}
    chapters, elapsed = [], 0.0
    for chapter, result in spoken:
        chapters.append({
            "index": result.index, "title": result.title, "file": result.file, "sha256": result.sha256,
            "start_char": chapter.start, "end_char": chapter.end, "offset": round(elapsed, 4),
            "duration": round(result.seconds, 4), "samples": result.samples,
            "sentences": [asdict(s.shifted(chapter.start, 0.0)) for s in result.sentences],
        })  # fmt: skip
        elapsed += result.seconds
    manifest = {
        "version": MANIFEST_VERSION,
        "title": book.title,
        "text_file": text_path.name,
        "sample_rate": spoken[0][1].sample_rate,
        "format": fmt.name,
        "options": asdict(options),
        "duration": round(elapsed, 4),
        "book": whole,
        "chapters": chapters,
    }
    # Files of an earlier render into this folder that this one no longer has (renamed chapters, another format).
    ours = {c["file"] for c in chapters} | {whole["file"], whole.get("chapters_file")}
    for old in [c.get("file") for c in previous.get("chapters", [])] + [previous.get("book", {}).get("file"), previous.get("book", {}).get("chapters_file")]:
        if old and old not in ours and "/" not in old:
            (outdir / old).unlink(missing_ok=True)
    write_bytes_atomic(manifest_path, json.dumps(manifest, ensure_ascii=False).encode())
    return manifest
