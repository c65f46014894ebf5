"""Pronunciations for words missing from the dictionary, from the shipped ONNX G2P model.

The model (trained by `reader.training.g2p`) maps characters to one phoneme-or-blank
distribution per frame (each character gets `upsample` frames); greedy CTC decoding keeps the
best symbol per frame, collapses repeats and drops blanks, and a word's primary stress is
made unique. No torch at inference.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..models import load_graph
from ..paths import models_dir

FORMAT_VERSION = 1
BATCH_WORDS = 256


@dataclass(frozen=True)
class G2PMetadata:
    input_symbols: list[str]
    output_symbols: list[str]
    upsample: int
    letter_pronunciations: dict[str, list[str]]

    @classmethod
    def read(cls, path: Path) -> G2PMetadata:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data["format_version"] != FORMAT_VERSION:
                raise ModelError(f"G2P metadata {path} has format version {data['format_version']}, "
                                 f"this reader reads {FORMAT_VERSION}")
            return cls(data["input_symbols"], data["output_symbols"], int(data["upsample"]),
                       data["letter_pronunciations"])
        except FileNotFoundError:
            raise ModelError(f"G2P metadata file not found: {path}") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"G2P metadata file is corrupt or unreadable: {path} ({type(exc).__name__})") from None


def normalize_word(word: str) -> str:
    """Lowercase, accents stripped ("café" -> "cafe")."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class G2P:
    """Predicts ARPAbet pronunciations (stress digits on vowels) for out-of-vocabulary words."""

    def __init__(self, session, metadata: G2PMetadata, cache: bool = True):
        self.session = session
        self.metadata = metadata
        self.char_ids = {symbol: i + 1 for i, symbol in enumerate(metadata.input_symbols)}  # 0 is padding
        self.output_ids = {symbol: i for i, symbol in enumerate(metadata.output_symbols)}
        # The same unknown word recurs throughout a book; None disables caching (evaluation).
        self.cache: dict[str, list[str]] | None = {} if cache else None

    @classmethod
    def load(cls, path: Path | None = None, threads: int = 0, cache: bool = True) -> G2P:
        """Load from a folder holding g2p.onnx and g2p.json (default: the shipped models folder)."""
        folder = Path(path) if path is not None else models_dir() / "g2p"
        metadata = G2PMetadata.read(folder / "g2p.json")
        return cls(load_graph(folder / "g2p.onnx", threads), metadata, cache)

    def predict(self, word: str) -> list[str]:
        return self.predict_batch([word])[0]

    def predict_batch(self, words: list[str]) -> list[list[str]]:
        """One pronunciation per word; [] only for words with nothing pronounceable (e.g. "", "!")."""
        normalized = [normalize_word(word) for word in words]
        missing = sorted({word for word in normalized if self.cache is None or word not in self.cache})
        predicted = dict(zip(missing, self._predict_uncached(missing)))
        if self.cache is not None:
            self.cache.update(predicted)
            predicted = self.cache
        return [list(predicted[word]) for word in normalized]

    def _predict_uncached(self, words: list[str]) -> list[list[str]]:
        encoded = [[self.char_ids[c] for c in word if c in self.char_ids] for word in words]
        results: list[list[str]] = [[] for _ in words]
        # Similar lengths share a batch, so little compute goes to padding.
        order = sorted((i for i, ids in enumerate(encoded) if ids), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), BATCH_WORDS):
            rows = order[start:start + BATCH_WORDS]
            chars = np.zeros((len(rows), max(len(encoded[i]) for i in rows)), dtype=np.int64)
            for row, i in enumerate(rows):
                chars[row, :len(encoded[i])] = encoded[i]
            (log_probs,) = self.session.run(None, {"chars": chars})
            for row, i in enumerate(rows):
                results[i] = self._decode(log_probs[row, :len(encoded[i]) * self.metadata.upsample])
        return [result or self._spell(word) for word, result in zip(words, results)]

    def _decode(self, frame_log_probs: np.ndarray) -> list[str]:
        """Greedy CTC (best symbol per frame, repeats collapsed, blanks dropped), then one primary stress."""
        best = frame_log_probs.argmax(axis=-1)
        run_starts = np.flatnonzero(np.diff(best, prepend=-1))
        run_ends = np.append(run_starts[1:], len(best))
        runs = [(int(best[start]), start, end) for start, end in zip(run_starts, run_ends) if best[start] != 0]
        phones = [self.metadata.output_symbols[symbol] for symbol, _, _ in runs]
        primaries = [k for k, phone in enumerate(phones) if phone.endswith("1")]
        vowels = [k for k, phone in enumerate(phones) if phone[-1].isdigit()]
        if len(primaries) == 1 or not vowels:
            return phones

        # Nearly every CMUdict pronunciation has exactly one primary stress: give it to the vowel
        # whose frames favour it most, and demote any other primary to secondary.
        def primary_score(k: int) -> float:
            _, start, end = runs[k]
            return float(frame_log_probs[start:end, self.output_ids[phones[k][:-1] + "1"]].max())

        chosen = max(primaries or vowels, key=primary_score)
        for k in vowels:
            if k == chosen:
                phones[k] = phones[k][:-1] + "1"
            elif k in primaries:
                phones[k] = phones[k][:-1] + "2"
        return phones

    def _spell(self, word: str) -> list[str]:
        """Fallback when the model outputs nothing: each letter or digit as cmudict says it alone."""
        return [phone for c in word for phone in self.metadata.letter_pronunciations.get(c, [])]
