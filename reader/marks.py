"""Speech marks in Amazon Polly's format: one JSON object per line,
`{"time": ms, "type": "sentence" | "word" | "ssml", "start": byte, "end": byte, "value": ...}`,
with start/end byte offsets into the UTF-8 input (for SSML: into the SSML source) and times in
milliseconds from the start of the audio, taken from the stream's timings (AudioChunk)."""

from __future__ import annotations

import json
import os
from typing import Iterable, TextIO

from reader_runtime.stream import AudioChunk

from .io.files import AtomicFile

MARK_TYPES = ("sentence", "word", "ssml")
_ORDER = {"ssml": 0, "sentence": 1, "word": 2}  # at one time: a mark, then the sentence it starts, then its word


class ByteOffsets:
    """Character offsets to UTF-8 byte offsets of one text, in linear time over a reading (a cursor
    that moves forward, and back when it must)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.ascii = text.isascii()
        self.char = 0
        self.byte = 0

    def __call__(self, char: int) -> int:
        if self.ascii:
            return char
        if char < self.char:
            self.char, self.byte = 0, 0
        self.byte += len(self.text[self.char : char].encode("utf-8"))
        self.char = char
        return self.byte


class SpeechMarks:
    """Turns audio chunks into speech-mark lines (Polly's JSON lines) for `text`, the input read."""

    def __init__(self, text: str, types: Iterable[str] = MARK_TYPES) -> None:
        self.text = text
        self.types = frozenset(types)
        self.bytes = ByteOffsets(text)

    def _mark(self, seconds: float, kind: str, start: int, end: int, value: str) -> dict:
        return {"time": int(round(seconds * 1000)), "type": kind, "start": self.bytes(start), "end": self.bytes(end), "value": value}

    def marks(self, chunk: AudioChunk) -> list[dict]:
        """The chunk's marks in time order. Words read from one written token ("2024": twenty twenty
        four) are one mark, as Polly gives them."""
        found: list[tuple[float, int, int, int, str, str]] = []
        if "sentence" in self.types:
            for s in chunk.sentences:
                if s.start_char >= 0:
                    found.append((s.start, _ORDER["sentence"], s.start_char, s.end_char, "sentence", self.text[s.start_char : s.end_char]))
        if "word" in self.types:
            previous = None
            for w in chunk.words:
                if w.start_char >= 0 and (w.start_char, w.end_char, w.sentence_index) != previous:
                    found.append((w.start, _ORDER["word"], w.start_char, w.end_char, "word", self.text[w.start_char : w.end_char]))
                previous = (w.start_char, w.end_char, w.sentence_index)
        if "ssml" in self.types:
            for m in chunk.marks:
                found.append((m.time, _ORDER["ssml"], m.start_char, m.end_char, "ssml", m.name))
        found.sort(key=lambda f: (f[0], f[1], f[2]))
        return [self._mark(t, kind, start, end, value) for t, _, start, end, kind, value in found]


class SpeechMarksFile:
    """Speech marks written to `path` as they come (under a temporary name, renamed by commit())."""

    def __init__(self, path: str | os.PathLike, text: str) -> None:
        self.marks = SpeechMarks(text)
        self.file = AtomicFile(path)
        self.handle: TextIO = open(self.file.partial, "w", encoding="utf-8")

    def write(self, chunk: AudioChunk) -> None:
        for mark in self.marks.marks(chunk):
            self.handle.write(json.dumps(mark, ensure_ascii=False) + "\n")

    def commit(self) -> None:
        self.handle.close()
        self.file.commit()

    def discard(self) -> None:
        self.handle.close()
        self.file.discard()
