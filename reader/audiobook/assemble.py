"""The whole book from its chapters: book.txt, book.m4b (or book.flac and a cue sheet), manifest.json."""

from __future__ import annotations

import errno
import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..io.files import AtomicFile

from .audio_files import FORMATS, AudioFormat, ffmpeg_path, write_audio, write_bytes_atomic
from .books import Book, BookChapter
from .folder import WORK_FOLDER
from .jobs import ChapterResult, RenderOptions

MANIFEST_VERSION = 1
# Whole-book AAC bit rate: speech at 22 kHz mono.
M4B_BITRATE = "64k"


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


def assemble(outdir: Path, book: Book, spoken: list[tuple[BookChapter, ChapterResult]], fmt: AudioFormat, options: RenderOptions) -> dict:
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
