"""What the acoustic model reads: the symbol table and sentence analyses turned into id arrays.

Shared by training and the runtime (numpy only). A sentence becomes `<bos>`, then each word's phonemes
followed by one boundary token whose symbol is the break level after that word. A PARAGRAPH break is
given to the model as a SENTENCE break (the runtime sets the longer pause); a vowel's stress digit is a
separate feature. Why: docs/model-inputs.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:  # reader_runtime loads onnxruntime: imported where used
    from reader_runtime.acoustic import TokenInputs

ARPABET = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY",
    "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y",
    "Z", "ZH",
)  # fmt: skip
# Names of the break levels 0..3 the model distinguishes, in the order of reader.frontend.prosody.BreakLevel
# (whose PARAGRAPH = 4 is read as SENTENCE, see above).
BREAK_LEVEL_NAMES = ("none", "minor", "major", "sentence")
PAD, BOS = "<pad>", "<bos>"
BREAK_SYMBOLS = tuple(f"<break:{name}>" for name in BREAK_LEVEL_NAMES)
SYMBOLS = (PAD, BOS, *ARPABET, *BREAK_SYMBOLS)
SYMBOL_TO_ID = {symbol: index for index, symbol in enumerate(SYMBOLS)}
PAD_ID = SYMBOL_TO_ID[PAD]
BOS_ID = SYMBOL_TO_ID[BOS]
BREAK_IDS = tuple(SYMBOL_TO_ID[s] for s in BREAK_SYMBOLS)
SENTENCE_BREAK_LEVEL = 3

# stress_ids: 0 = not a vowel (consonant or special token), 1 + the ARPAbet stress digit otherwise.
N_STRESS_IDS = 4
# word_position_ids: where a token sits in its word.
NOT_IN_WORD, WORD_INITIAL, WORD_MEDIAL, WORD_FINAL, WHOLE_WORD = range(5)
N_WORD_POSITION_IDS = 5
# break_ids: the break level after the token's word (on the boundary token too), + 1; 0 = <bos>/padding.
N_BREAK_IDS = len(BREAK_LEVEL_NAMES) + 1


class WordLike(Protocol):
    text: str
    phonemes: tuple[str, ...]


class SentenceLike(Protocol):
    words: Sequence[WordLike]
    breaks: Sequence[int]


@dataclass(frozen=True)
class ModelInputs:
    """Per-token int64 arrays of one equal length (tokens: <bos>, phonemes and boundary tokens)."""

    symbol_ids: np.ndarray
    stress_ids: np.ndarray
    word_position_ids: np.ndarray
    break_ids: np.ndarray
    word_indices: np.ndarray  # which word of the input a phoneme belongs to; -1 for <bos> and boundaries

    def __len__(self) -> int:
        return int(self.symbol_ids.shape[0])

    @property
    def boundary_mask(self) -> np.ndarray:
        """True at boundary tokens, whose durations are pauses."""
        return np.isin(self.symbol_ids, BREAK_IDS)

    @property
    def phoneme_mask(self) -> np.ndarray:
        """True at phoneme tokens (those of a word; not <bos> nor boundaries)."""
        return self.word_indices >= 0


def token_inputs(inputs: ModelInputs) -> TokenInputs:
    """The runtime's acoustic-model feeds (reader_runtime.acoustic.TokenInputs) of `inputs`."""
    from reader_runtime.acoustic import TokenInputs

    return TokenInputs(inputs.symbol_ids, inputs.stress_ids, inputs.word_position_ids, inputs.break_ids)


def split_stress(phoneme: str) -> tuple[str, int]:
    """('AH', 1 + 0) for 'AH0'; ('K', 0) for 'K'. Raises ValueError for a symbol outside ARPAbet."""
    base, digit = (phoneme[:-1], int(phoneme[-1]) + 1) if phoneme[-1:].isdigit() else (phoneme, 0)
    if base not in ARPABET:
        raise ValueError(f"unknown phoneme {phoneme!r}: expected CMUdict ARPAbet with stress digits")
    return base, digit


def words_to_inputs(words: Iterable[tuple[Sequence[str], int]]) -> ModelInputs:
    """Token arrays from (phonemes, break level after the word) pairs, in reading order.

    Words without phonemes (nothing spoken) are dropped; their break still counts, merged into the
    previous boundary by taking the stronger level.
    """
    symbols, stresses, positions, breaks, word_indices = [BOS_ID], [0], [NOT_IN_WORD], [0], [-1]
    last_word_start = None  # token index where the last spoken word's phonemes begin
    for word_index, (phonemes, level) in enumerate(words):
        level = min(int(level), SENTENCE_BREAK_LEVEL)
        if not phonemes:
            if last_word_start is not None and level + 1 > breaks[-1]:
                symbols[-1] = BREAK_IDS[level]
                breaks[last_word_start:] = [level + 1] * (len(breaks) - last_word_start)
            continue
        last_word_start = len(symbols)
        for position, phoneme in enumerate(phonemes):
            base, stress = split_stress(phoneme)
            symbols.append(SYMBOL_TO_ID[base])
            stresses.append(stress)
            if len(phonemes) == 1:
                positions.append(WHOLE_WORD)
            else:
                positions.append(WORD_INITIAL if position == 0 else WORD_FINAL if position == len(phonemes) - 1 else WORD_MEDIAL)
            breaks.append(level + 1)
            word_indices.append(word_index)
        symbols.append(BREAK_IDS[level])
        stresses.append(0)
        positions.append(NOT_IN_WORD)
        breaks.append(level + 1)
        word_indices.append(-1)
    as_array = lambda values: np.asarray(values, dtype=np.int64)  # noqa: E731
    return ModelInputs(as_array(symbols), as_array(stresses), as_array(positions), as_array(breaks), as_array(word_indices))


def sentences_to_inputs(sentences: Sequence[SentenceLike]) -> ModelInputs:
    """One token sequence for consecutive sentences (a training clip may hold several)."""
    words = [(word.phonemes, level) for sentence in sentences for word, level in zip(sentence.words, sentence.breaks, strict=True)]
    if words:
        # The last word of the last sentence always ends a sentence, even if the front end saw a clause.
        phonemes, level = words[-1]
        words[-1] = (phonemes, max(int(level), SENTENCE_BREAK_LEVEL))
    return words_to_inputs(words)


def sentence_to_inputs(sentence: SentenceLike) -> ModelInputs:
    return sentences_to_inputs([sentence])


def transcript_to_inputs(text: str, analyzer) -> ModelInputs:
    """Inputs for a normalised training transcript, analysed by a reader.frontend.analysis.Analyzer."""
    return sentences_to_inputs(analyzer.analyze_text(text).sentences)
