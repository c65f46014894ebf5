"""Rendering a book: chapters into jobs, finished ones reused, the rest run by the workers, then assembled."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..errors import DiskFullError, ReaderError
from ..io.files import sha256_file
from ..paths import models_dir
from .assemble import assemble
from .audio_files import AudioFormat, check_format
from ..frontend.document import require_speakable
from .books import Book, read_book
from .chapter import finished_result
from .folder import chapter_file_names, check_folder_is_ours, locked_folder, prepare_folder
from .jobs import ChapterJob, RenderOptions
from .workers import run_processes, run_ray, run_serial

WORK_FORMAT_VERSION = 1


def fingerprint(options: RenderOptions) -> str:
    """Hash of what the audio depends on besides the text: the options, the user lexicon, every model
    file, and the engine version."""
    from .. import __version__
    from ..paths import config_dir
    from ..frontend.pronounce import DEFAULT_LEXICON_NAME
    from ..prosody_prediction import DEFAULT_PROSODY
    from ..vocoders import DEFAULT_VOCODER

    # The lexicon counts by its content, not where it lies; the default prosody by what it is.
    resolved = replace(options, lexicon=None, prosody=options.prosody or DEFAULT_PROSODY, vocoder=options.vocoder or DEFAULT_VOCODER)
    settings = asdict(resolved)
    for unset in [name for name in ("sentence_pause", "paragraph_pause") if settings[name] is None]:
        del settings[unset]  # default pauses: the fingerprint of books rendered before these settings existed
    digest = hashlib.sha256(json.dumps([WORK_FORMAT_VERSION, __version__, settings]).encode())
    lexicon = Path(options.lexicon) if options.lexicon else config_dir() / DEFAULT_LEXICON_NAME
    folder = models_dir()
    models = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc"))  # not the package's own code
    for path in [lexicon, *models]:
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
        check_folder_is_ours(outdir, book, fmt)
    try:
        return _render(book, source, outdir, options, fmt, jobs, ray_address)
    except DiskFullError as exc:
        raise DiskFullError(f"{exc}; finished chapters are kept: free some space and run the same command again") from None


def _render(book: Book, source: str, outdir: Path, options: RenderOptions, fmt: AudioFormat, jobs: int, ray_address: str | None) -> dict:
    work = prepare_folder(outdir)
    with locked_folder(work):
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
                    runner = run_ray(pending, progress, ray_address, jobs)
                elif jobs > 1 and len(pending) > 1:
                    runner = run_processes(pending, progress, jobs)
                else:
                    runner = run_serial(pending, progress)
                with contextlib.closing(runner):  # on an error, stops the other chapters' workers now
                    for result in runner:
                        results[result.index] = result
        finally:
            progress.close()

        spoken = [(chapter, results[job.index]) for chapter, job in zip(book.chapters, chapter_jobs) if results[job.index].file]
        if not spoken:
            raise ReaderError(f"nothing speakable in {'standard input' if source == '-' else source}")
        manifest = assemble(outdir, book, spoken, fmt, options)
        keys = {job.key for job in chapter_jobs}
        for folder in work.iterdir():  # work of chapters no longer in the book
            if folder.is_dir() and folder.name not in keys:
                shutil.rmtree(folder, ignore_errors=True)
        return manifest
