"""The reading engine: text in, streamed audio out.

document -> Analyzer (sentences, prosody plan) -> reader.model_inputs (token arrays)
-> runtime.StreamingSynthesizer (acoustic model + vocoder, ONNX) -> audio chunks -> a sink.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Iterator

import numpy as np

from .analysis import Analyzer, SentenceAnalysis
from .errors import ModelError, ReaderError
from .model_inputs import sentence_to_inputs
from .paths import models_dir
from .prosody import BreakLevel
from .prosody_selection import DEFAULT_SELECTOR, SELECTORS, ProsodySelector

DEFAULT_VOICE = "lj"

# Silence after a sentence and after a paragraph (or heading). Inside sentences the acoustic model
# sets pause lengths itself from the break levels, as learned from the recordings; sentence and
# paragraph ends are not in the training clips (LJ clips are cut at those silences), so they are
# set here: 0.5 s is the upper quartile of LJ's pauses at full stops inside clips, and a paragraph
# gets twice that, the usual audiobook practice.
FINAL_PAUSE_SECONDS = {BreakLevel.SENTENCE: 0.5, BreakLevel.PARAGRAPH: 1.0}


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32 mono
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


class Reader:
    """Loads the front end, acoustic model and vocoder once; reads any number of documents."""

    def __init__(
        self,
        voice: str | None = None,
        speed: float = 1.0,
        device: str = "cpu",
        parser: str = "spacy",
        lexicon: str | Path | None = None,
        threads: int = 0,
        models: Path | None = None,
        prosody: str = DEFAULT_SELECTOR,
    ) -> None:
        from runtime.acoustic import AcousticModel
        from runtime.errors import RuntimeModelError
        from runtime.session import SessionOptions
        from runtime.vocoder import Vocoder

        if not 0.25 <= speed <= 4.0:
            raise ReaderError(f"speed {speed} is out of range: use a value between 0.25 and 4")
        if prosody not in SELECTORS:
            raise ReaderError(f"unknown prosody selector {prosody!r}: use one of {', '.join(SELECTORS)}")
        self.speed = speed
        folder = models or models_dir()
        options = SessionOptions(device=device, intra_op_threads=threads)
        try:
            self.acoustic = AcousticModel.load(folder / "acoustic", options)
            self.vocoder = Vocoder.load(folder / "vocoder", options)
            self.speaker = self.acoustic.speaker(voice or DEFAULT_VOICE)
        except RuntimeModelError as exc:
            raise ModelError(str(exc)) from None
        if self.vocoder.spec.features.sample_rate != self.acoustic.sample_rate:
            raise ModelError(f"vocoder ({self.vocoder.spec.features.sample_rate} Hz) and acoustic model ({self.acoustic.sample_rate} Hz) do not match")
        self.analyzer = Analyzer(parser=parser, lexicon=lexicon)
        # Per-sentence acoustic embedding (reader.prosody_selection); a bad bank falls back to the centroid.
        self.prosody = ProsodySelector.load(prosody, folder, self.acoustic, self.speaker)

    @property
    def sample_rate(self) -> int:
        return self.acoustic.sample_rate

    def voices(self) -> list[str]:
        return [s.name for s in self.acoustic.speakers]

    def request(self, sentence: SentenceAnalysis, selection=None):
        """The synthesis request for one analysed sentence (`selection`: its reader.prosody_selection
        choice, made here without long-form memory if not given)."""
        from runtime.acoustic import TokenInputs
        from runtime.stream import SynthesisRequest

        inputs = sentence_to_inputs(sentence)
        boundary = inputs.boundary_mask
        levels = np.where(boundary, inputs.break_ids - 1, -1)
        final = sentence.breaks[-1]
        if final >= BreakLevel.SENTENCE:
            levels[np.flatnonzero(boundary)[-1]] = int(final)
        pause_frames = np.full(len(inputs), -1.0, np.float32)
        if final in FINAL_PAUSE_SECONDS:
            frames_per_second = self.sample_rate / self.acoustic.hop_length
            pause_frames[np.flatnonzero(boundary)[-1]] = round(FINAL_PAUSE_SECONDS[final] * frames_per_second)
        tokens = TokenInputs(inputs.symbol_ids, inputs.stress_ids, inputs.word_position_ids, inputs.break_ids)
        embedding = (selection or self.prosody.select(sentence)).embedding
        return SynthesisRequest(tokens, inputs.word_indices, levels, pause_frames, self.speaker, embedding, self.speed, sentence)

    def requests(self, text: str) -> Iterator:
        document = self.analyzer.split(text)
        reading = self.prosody.reading()  # the long-form rule's memory, per document
        for sentence in self.analyzer.iter_sentences(document):
            yield self.request(sentence, reading.select(sentence))

    async def stream(self, text: str, pace_seconds: float | None = None) -> AsyncIterator:
        """Audio chunks (runtime.stream.AudioChunk) as they are synthesised; the analysis of the next
        sentences runs in a worker thread while the current one is synthesised."""
        from runtime.stream import StreamingSynthesizer

        synthesizer = StreamingSynthesizer(self.acoustic, self.vocoder, pace_seconds=pace_seconds)
        sentences = self.requests(text)

        async def analysed():
            while (request := await asyncio.to_thread(next, sentences, None)) is not None:
                yield request

        try:
            async for chunk in synthesizer.stream(analysed()):
                yield chunk
        finally:
            synthesizer.close()

    def synthesize(self, text: str) -> Audio:
        """The whole text as one array (for short texts; use stream() or render() for long ones)."""

        async def collect():
            return [chunk.samples async for chunk in self.stream(text)]

        chunks = asyncio.run(collect())
        return Audio(np.concatenate(chunks) if chunks else np.zeros(0, np.float32), self.sample_rate)
