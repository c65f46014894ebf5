"""Prosody by prediction (issue 15): a sentence's linguistic context -> the acoustic model's
phoneme-level CopyCat prosody codes.

Embedding selection cannot move long-form prosody on this data; the melody lives in the codes. This
code predictor replaces the acoustic model's own (text-only) one with one that reads, by feature set:
`phonemes` (with punctuation breaks), `syntax` (+ the break plan and syntactic distances), `bert`
(+ contextual MiniLM word vectors), `syntax+bert`, and `syntax+context` / `bert+context` (+ the unit
read just before, `ReadingContext`). All share one architecture and ONNX signature (unused inputs are
zeros). Trained by reader.training.code_predictor, compared by benchmarks/prosody_prediction.py; the
details: docs/prosody.md#prosody-prediction-issue-15.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .errors import ModelError
from .frontend.analysis import CLAUSE_PUNCTUATION, SentenceAnalysis
from .frontend.prosody import BreakLevel
from .model_inputs import ModelInputs, sentences_to_inputs
from .prosody_selection import SELECTORS, SentenceEncoder, first_line

FEATURE_SETS = ("phonemes", "syntax", "bert", "syntax+bert", "syntax+context", "bert+context")
# How `--prosody` chooses each sentence's prosody: an embedding selector, or predicted codes.
PREDICTED = "predicted"
PROSODY_MODES = (*SELECTORS, PREDICTED)
# Whichever measures closest to the recordings on long-form reading. Among the selectors none beats the
# centroid (benchmarks/results/prosody_selection.md: F0-std gap, log-F0 RMSE and WER all within noise of
# each other). Predicted codes (the shipped syntax variant) against the centroid with the acoustic
# model's own codes, on the 50 + 50 held-out clips (benchmarks/results/prosody_prediction.md): vowel
# log-F0 r 0.29 -> 0.37 (LJ) and 0.44 -> 0.58 (kathleen), a fifth of the F0-std gap closed, NISQA-TTS
# level (2.27 / 2.71 -> 2.25 / 2.72), Whisper WER 0.138 -> 0.150 (LJ) and 0.075 -> 0.077.
DEFAULT_PROSODY = PREDICTED
POSITION_DIM = 2
SYNTAX_DIM = 4
BERT_DIM = 384
# The previous unit's sentence vector, then whether it stopped mid-sentence (see ReadingContext).
CONTEXT_DIM = BERT_DIM + 1
CODE_PREDICTOR_FORMAT_VERSION = 2  # 2: the `context` input


def uses_syntax(feature_set: str) -> bool:
    return "syntax" in feature_set


def uses_bert(feature_set: str) -> bool:
    return "bert" in feature_set


def uses_context(feature_set: str) -> bool:
    return "context" in feature_set


@dataclass(frozen=True)
class ReadingContext:
    """Where a reading unit (an engine sentence, a training clip) stands in the text read aloud.

    Only what the training data can teach: LJ's clips come in reading order but without paragraph
    marks, and ARCTIC's are lone sentences, so a "first in paragraph" or "last" flag would be constant
    per voice (it would learn the voice, not the position). A paragraph's start is told by the absent
    previous unit instead, which the network reads as an average previous sentence (model.py)."""

    previous_text: str | None = None  # the unit read just before, in the same paragraph; None: none
    continues: bool = False  # that unit stopped mid-sentence (a clip cut at a clause, a long sentence's piece)

    @classmethod
    def after(cls, previous: SentenceAnalysis | None, sentence: SentenceAnalysis) -> ReadingContext:
        """The context of `sentence` read right after `previous` (None: the text's first)."""
        if previous is None or (previous.chapter, previous.paragraph) != (sentence.chapter, sentence.paragraph):
            return cls()
        return cls(previous.text, continues=previous.breaks[-1] < BreakLevel.SENTENCE)


LONE_SENTENCE = ReadingContext()  # ARCTIC's clips; a paragraph's first sentence


def context_features(contexts: Sequence[ReadingContext], encoder) -> np.ndarray:
    """(len(contexts), CONTEXT_DIM): the previous unit's MiniLM sentence vector (zeros without one), and
    `continues`."""
    features = np.zeros((len(contexts), CONTEXT_DIM), np.float32)
    present = [i for i, c in enumerate(contexts) if c.previous_text is not None]
    if present:
        # One text per batch, as the engine encodes them: the int8 graph's activation scales span the
        # batch, so a padded batch gives (slightly) other vectors.
        features[present, :BERT_DIM] = encoder.encode([contexts[i].previous_text for i in present], batch_size=1)
    features[:, BERT_DIM] = [c.continues for c in contexts]
    return features


@dataclass(frozen=True)
class PredictorInputs:
    """Per-token inputs of the code predictor, aligned with the acoustic model's tokens of the sentence."""

    symbol_ids: np.ndarray  # (N,) int64; boundary symbols as the feature set knows them
    stress_ids: np.ndarray
    word_position_ids: np.ndarray
    break_ids: np.ndarray
    position: np.ndarray  # (N, POSITION_DIM) float32
    syntax: np.ndarray  # (N, SYNTAX_DIM) float32, zeros without syntax
    bert: np.ndarray  # (N, BERT_DIM) float32, zeros without BERT
    context: np.ndarray  # (CONTEXT_DIM,) float32, the unit's: zeros without context (or for a lone sentence)

    def __len__(self) -> int:
        return int(self.symbol_ids.shape[0])

    def feeds(self, speaker_id: int) -> dict[str, np.ndarray]:
        as_batch = lambda values, dtype: np.asarray(values, dtype)[None]  # noqa: E731
        return {
            "symbol_ids": as_batch(self.symbol_ids, np.int64),
            "stress_ids": as_batch(self.stress_ids, np.int64),
            "word_position_ids": as_batch(self.word_position_ids, np.int64),
            "break_ids": as_batch(self.break_ids, np.int64),
            "speaker_id": np.asarray([speaker_id], np.int64),
            "position": as_batch(self.position, np.float32),
            "syntax": as_batch(self.syntax, np.float32),
            "bert": as_batch(self.bert, np.float32),
            "context": as_batch(self.context, np.float32),
        }


def punctuation_breaks(sentences: Sequence[SentenceAnalysis]) -> list[SentenceAnalysis]:
    """The sentences with their break plan replaced by what punctuation alone says."""

    def level(word, last: bool) -> BreakLevel:
        if last:
            return BreakLevel.SENTENCE
        if any(ch in CLAUSE_PUNCTUATION for ch in word.punct_after):
            return BreakLevel.MAJOR
        return BreakLevel.MINOR if "," in word.punct_after else BreakLevel.NONE

    return [replace(s, breaks=[level(w, i == len(s.words) - 1) for i, w in enumerate(s.words)]) for s in sentences]


def _rank_scaled(values: np.ndarray) -> np.ndarray:
    """Dense ranks scaled to [0, 1]: only the order of syntactic distances means anything."""
    if values.size == 0:
        return values.astype(np.float64)
    levels, ranks = np.unique(values, return_inverse=True)
    return ranks / max(len(levels) - 1, 1)


def word_features(sentences: Sequence[SentenceAnalysis]) -> tuple[np.ndarray, np.ndarray]:
    """Per word of the sentences (flattened as model_inputs numbers them): (position, syntax).

    position: the word's relative place in its sentence (0 first .. 1 last) and log word count;
    syntax: the rank-scaled and max-scaled syntactic distance of the gaps before and after the word
    (a sentence's edges count as the largest distance)."""
    positions, syntax = [], []
    for sentence in sentences:
        n = len(sentence.words)
        distances = np.asarray(sentence.distances, np.float64)
        largest = distances.max() if distances.size else 1.0
        ranked = np.concatenate([[1.0], _rank_scaled(distances), [1.0]])
        scaled = np.concatenate([[1.0], distances / max(largest, 1e-9), [1.0]])
        for i in range(n):
            positions.append([i / max(n - 1, 1), np.log1p(n) / np.log1p(64)])
            syntax.append([ranked[i], ranked[i + 1], scaled[i], scaled[i + 1]])
    return np.asarray(positions, np.float32).reshape(-1, POSITION_DIM), np.asarray(syntax, np.float32).reshape(-1, SYNTAX_DIM)


def sentence_word_vectors(encoder, sentences: Sequence[SentenceAnalysis]) -> np.ndarray:
    """(words, BERT_DIM): each sentence encoded on its own (as the engine reads them), word by word."""
    vectors = []
    for sentence in sentences:
        spans = [(w.start - sentence.start, w.end - sentence.start) for w in sentence.words]
        vectors.append(encoder.word_vectors(sentence.text, spans) if spans else np.zeros((0, BERT_DIM), np.float32))
    return np.concatenate(vectors).astype(np.float32) if vectors else np.zeros((0, BERT_DIM), np.float32)


def _to_tokens(word_values: np.ndarray, inputs: ModelInputs) -> np.ndarray:
    """(N, D) token values from (words, D) word values: a boundary token takes the word before it,
    <bos> the first word."""
    index = inputs.word_indices.copy()
    for i in range(len(index)):
        if index[i] < 0:
            index[i] = index[i - 1] if i > 0 else -1
    first = next((int(i) for i in index if i >= 0), 0)
    index[index < 0] = first
    return word_values[index] if len(word_values) else np.zeros((len(index), word_values.shape[1]), np.float32)


def predictor_inputs(
    sentences: Sequence[SentenceAnalysis], feature_set: str, word_vectors: np.ndarray | None = None, context: np.ndarray | None = None
) -> PredictorInputs:
    """The predictor's inputs for consecutive sentences (one engine request, or one training clip).
    `word_vectors`: sentence_word_vectors(...) of the same sentences, needed when the set uses BERT;
    `context`: the unit's row of context_features(...), used when the set uses context (None: a lone sentence)."""
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {feature_set!r}: one of {', '.join(FEATURE_SETS)}")
    inputs = sentences_to_inputs(sentences)
    token_ids = inputs if uses_syntax(feature_set) else sentences_to_inputs(punctuation_breaks(sentences))
    position, syntax = word_features(sentences)
    n = len(inputs)
    bert = np.zeros((n, BERT_DIM), np.float32)
    if uses_bert(feature_set):
        if word_vectors is None or len(word_vectors) != len(position):
            raise ValueError("the BERT feature sets need one word vector per word")
        bert = _to_tokens(word_vectors, inputs)
    return PredictorInputs(
        symbol_ids=token_ids.symbol_ids,
        stress_ids=token_ids.stress_ids,
        word_position_ids=token_ids.word_position_ids,
        break_ids=token_ids.break_ids,
        position=_to_tokens(position, inputs),
        syntax=_to_tokens(syntax, inputs) if uses_syntax(feature_set) else np.zeros((n, SYNTAX_DIM), np.float32),
        bert=bert,
        context=context if uses_context(feature_set) and context is not None else np.zeros(CONTEXT_DIM, np.float32),
    )


class CodePredictor:
    """The exported code predictor (exported_models/code_predictor): ONNX, onnxruntime only."""

    def __init__(self, session, manifest: dict, folder: Path) -> None:
        self.session = session
        self.manifest = manifest
        self.folder = folder
        self.feature_set: str = manifest["feature_set"]

    @classmethod
    def load(cls, folder: Path, text_to_mel_sha256: str, threads: int = 1) -> CodePredictor:
        """Raises ModelError if the predictor is missing, corrupt, or trained for another acoustic model."""
        from reader_runtime.errors import RuntimeModelError
        from reader_runtime.manifest import read_manifest
        from reader_runtime.session import SessionOptions, load_session

        try:
            manifest = read_manifest(folder, "code predictor", CODE_PREDICTOR_FORMAT_VERSION)
            session = load_session(manifest.file("graph"), SessionOptions(intra_op_threads=threads, inter_op_threads=1))
        except RuntimeModelError as exc:
            raise ModelError(str(exc)) from None
        data = manifest.data
        if data.get("feature_set") not in FEATURE_SETS:
            raise ModelError(f"code predictor {folder}: unknown feature set {data.get('feature_set')!r}")
        if data.get("acoustic_text_to_mel_sha256") != text_to_mel_sha256:
            raise ModelError(f"code predictor {folder} was trained for another acoustic model (text_to_mel sha256 differs): retrain it")
        return cls(session, data, folder)

    @property
    def uses_encoder(self) -> bool:
        """Its inputs need the MiniLM encoder (word vectors, or the previous sentence's vector)."""
        return uses_bert(self.feature_set) or uses_context(self.feature_set)

    def predict(self, inputs: PredictorInputs, speaker_id: int) -> np.ndarray:
        """(N, prosody_code_dim) codes for the acoustic model's prosody_codes input."""
        (codes,) = self.session.run(None, inputs.feeds(speaker_id))
        return codes[0]


class SentenceCodes:
    """The engine's predicted prosody (`--prosody predicted`): each sentence's codes from the shipped
    code predictor, with the BERT encoder loaded when its feature set needs it (BERT word vectors, or
    the previous sentence's vector).

    `required` (the user named the mode): a missing or unusable predictor or BERT model, or a sentence
    they cannot handle, is a ModelError. Otherwise (the default) the same failures fall back, with one
    warning, to the acoustic model's own text-only predictor (codes None)."""

    def __init__(self, predictor: CodePredictor | None, encoder, required: bool) -> None:
        self.predictor = predictor
        self.encoder = encoder
        self.required = required
        self._warned = False

    @classmethod
    def load(cls, models: Path, text_to_mel_sha256: str, required: bool) -> SentenceCodes:
        try:
            predictor = CodePredictor.load(models / "code_predictor", text_to_mel_sha256)
            encoder = SentenceEncoder.load(models / "bert") if predictor.uses_encoder else None
        except Exception as exc:  # noqa: BLE001 - any unusable model takes the same road
            if required:
                raise ModelError(f"predicted prosody is unavailable: {_reason(exc)}") from None
            codes = cls(None, None, required)
            codes._warn(f"predicted prosody is unavailable ({_reason(exc)})")
            return codes
        return cls(predictor, encoder, required)

    def _warn(self, reason: str) -> None:
        import warnings

        if not self._warned:
            self._warned = True
            warnings.warn(f"{reason}; reading with the acoustic model's own text-only prosody", stacklevel=3)

    def codes(self, sentence: SentenceAnalysis, speaker_id: int, context: ReadingContext = LONE_SENTENCE) -> np.ndarray | None:
        """(tokens, code_dim) codes of the sentence's tokens read in `context` (default: a lone
        sentence), or None for the acoustic model's own."""
        if self.predictor is None:
            return None
        feature_set = self.predictor.feature_set
        try:
            vectors = sentence_word_vectors(self.encoder, [sentence]) if uses_bert(feature_set) else None
            (features,) = context_features([context], self.encoder) if uses_context(feature_set) else (None,)
            return self.predictor.predict(predictor_inputs([sentence], feature_set, vectors, features), speaker_id)
        except Exception as exc:  # noqa: BLE001 - onnxruntime and the tokenizer raise their own types
            if self.required:
                raise ModelError(f"predicted prosody failed on {sentence.text[:60]!r}: {_reason(exc)}") from None
            self._warn(f"predicted prosody failed on {sentence.text[:60]!r} ({_reason(exc)})")
            return None


def _reason(exc: Exception) -> str:
    """One line: our own errors already say what is wrong; foreign ones also say what they are."""
    return str(exc).splitlines()[0] if isinstance(exc, ModelError) and str(exc) else first_line(exc)
