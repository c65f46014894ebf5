"""A chapter as a job any worker can render, and what it gives back: timings, results, saved segments."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..io.files import AtomicFile

from .audio_files import AudioFormat

# About a minute of speech: an interruption loses at most that much synthesis.
SEGMENT_SENTENCES = 20

Progress = Callable[[int, float], None]  # (characters read, seconds of audio produced)


@dataclass(frozen=True)
class RenderOptions:
    """The reader settings a chapter's audio depends on."""

    voice: str | None = None
    speed: float = 1.0
    device: str = "cpu"
    parser: str = "spacy"
    lexicon: str | None = None
    prosody: str | None = None  # None: the Reader's default (reader.prosody_prediction.DEFAULT_PROSODY)
    segment_sentences: int = SEGMENT_SENTENCES
    sentence_pause: float | None = None  # seconds after a sentence / a paragraph (None: the Reader's default)
    paragraph_pause: float | None = None
    vocoder: str | None = None  # "studio" or "fast" (reader.vocoders); None: the Reader's default

    def make_reader(self):
        from ..engine import Reader

        return Reader(
            voice=self.voice, speed=self.speed, device=self.device, parser=self.parser, lexicon=self.lexicon, prosody=self.prosody, threads=1,
            sentence_pause=self.sentence_pause, paragraph_pause=self.paragraph_pause, vocoder=self.vocoder,
        )  # fmt: skip


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
