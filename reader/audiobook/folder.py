"""The output folder: chapter file names, refusing a folder with files this render did not make, the lock."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import DiskFullError, OutputError, ReaderError
from .audio_files import AudioFormat
from .books import Book
from .jobs import ChapterResult

WORK_FOLDER = ".reader-work"


def file_title(title: str) -> str:
    """A chapter title as a portable file-name part."""
    cleaned = re.sub(r"[^\w ,.'()&-]+", " ", title, flags=re.UNICODE)
    return " ".join(cleaned.split())[:60].strip(" .") or "chapter"


def chapter_file_names(book: Book, fmt: AudioFormat) -> list[str]:
    """"01 Title.flac", ...: numbered so that they sort in reading order."""
    width = max(2, len(str(len(book.chapters))))
    return [f"{number:0{width}d} {file_title(chapter.title)}{fmt.extension}" for number, chapter in enumerate(book.chapters, 1)]


def is_folder_output(output: str) -> bool:
    return output.endswith(("/", os.sep)) or os.path.isdir(output)


def prepare_folder(outdir: Path) -> Path:
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
def locked_folder(work: Path) -> Iterator[None]:
    with open(work / "lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReaderError(f"another `reader render` is writing to {work.parent}") from None
        yield


def check_folder_is_ours(outdir: Path, book: Book, fmt: AudioFormat) -> None:
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
