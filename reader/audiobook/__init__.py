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
Every file is written under a temporary name and renamed when complete (reader.io.files.AtomicFile).
A folder holding files that no render of this book made is refused unless `overwrite` is given.
"""

from __future__ import annotations

from .audio_files import FORMATS, AudioFormat, check_format
from .book import fingerprint, render_book
from .books import Book, BookChapter, read_book
from .folder import WORK_FOLDER, is_folder_output
from .jobs import ChapterResult, RenderOptions, TimedSentence, TimedWord

__all__ = [
    "FORMATS", "WORK_FOLDER", "AudioFormat", "Book", "BookChapter", "ChapterResult", "RenderOptions", "TimedSentence", "TimedWord",
    "check_format", "fingerprint", "is_folder_output", "read_book", "render_book",
]  # fmt: skip
