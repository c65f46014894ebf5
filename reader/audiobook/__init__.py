"""Audiobooks: `reader render BOOK -o OUTDIR/`.

A book (text, Markdown or EPUB) is cut into chapters; each is a ChapterJob that a worker (this process,
a process pool, or a Ray task) turns into one audio file and its timings; then the whole book is
assembled (M4B with chapter marks, or FLAC and a cue sheet), with `book.txt` and `manifest.json`.
Rendering resumes: segments are saved under OUTDIR/.reader-work/<chapter key>/ as they are made, keyed
by everything a chapter's audio depends on, so a resumed render is identical to an uninterrupted one
(docs/audiobooks.md). Every file is written through reader.io.files.AtomicFile.
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
