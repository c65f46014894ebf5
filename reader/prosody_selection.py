"""Linguistics-driven acoustic embedding selection (Tyagi et al., Interspeech 2020; issue 5).

A VAE acoustic model needs one utterance embedding per sentence. `centroid` takes the speaker's
centroid of its training embeddings; `syntactic` (SyntacticFeatures), `bert` (SentenceEncoder) and
`bert+syntactic` give the sentence a linguistic vector and take the acoustic embedding of the same
speaker's training utterance nearest to it (the paper's look-up, no learned projection). The bank is
built by `python -m reader.training.embedding_bank`.

A bank that is missing, corrupt, empty for the speaker or built for another acoustic model, and a
sentence that gives no usable vector, fall back to the centroid with a logged warning; a method asked
for by name whose bank or encoder cannot be used raises ModelError. The choices the paper leaves open
and their measurements: docs/prosody.md (benchmarks/results/prosody_selection.md).
"""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Sequence

import numpy as np

from .errors import ModelError

logger = logging.getLogger(__name__)

SELECTORS = ("centroid", "syntactic", "bert", "bert+syntactic")
BANK_FORMAT_VERSION = 2  # 2: every utterance names its recording session
BERT_FORMAT_VERSION = 1

PROFILE_BINS = 8
SUMMARY_WEIGHT = 0.5
# Words at which the log-length feature reaches 1: the front end's longest synthesis unit.
LENGTH_SCALE_WORDS = 40
# bert+syntactic similarity = (1 - w) * cos(bert) + w * cos(syntax).
BERT_SYNTAX_WEIGHT = 0.75
# Long-form: do not reuse a neighbour chosen for any of the last this many sentences.
AVOID_RECENT = 3
MAX_BERT_TOKENS = 256


class BankError(Exception):
    """The bank cannot be used (missing, corrupt, or built for another model)."""


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), so dot products are cosine similarities."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.where(norms > 0, vectors / np.where(norms > 0, norms, 1.0), 0.0).astype(np.float32)


@dataclass(frozen=True)
class SyntacticFeatures:
    """How distance sequences of any length become comparable vectors (defaults: the measured choice)."""

    profile_bins: int = PROFILE_BINS
    summary_weight: float = SUMMARY_WEIGHT

    def vector(self, distances: Sequence[float], n_words: int) -> np.ndarray:
        """Profile of rank-scaled distances on fixed bins, then weighted tree summaries (not unit length)."""
        if n_words < 1 or len(distances) != n_words - 1:
            raise ValueError(f"{len(distances)} distances for {n_words} words")
        values = np.asarray(distances, np.float64)
        profile = np.zeros(self.profile_bins)
        largest_at, levels = 0.5, 1
        if len(values):
            levels_sorted, ranks = np.unique(values, return_inverse=True)
            levels = len(levels_sorted)
            scaled = 2.0 * ranks / (levels - 1) - 1.0 if levels > 1 else np.zeros(len(values))
            # Gap i covers [i/n, (i+1)/n) of the sentence; each bin takes the highest gap it overlaps.
            n = len(values)
            for b in range(self.profile_bins):
                lo = int(np.floor(b * n / self.profile_bins))
                hi = max(lo + 1, int(np.ceil((b + 1) * n / self.profile_bins)))
                profile[b] = scaled[lo:hi].max()
            largest_at = (int(np.argmax(values)) + 0.5) / n
        summary = np.array([
            2.0 * largest_at - 1.0,
            np.log(n_words) / np.log(LENGTH_SCALE_WORDS),
            (levels - 1) / max(len(values), 1),
        ])  # fmt: skip
        return np.concatenate([profile, self.summary_weight * summary]).astype(np.float32)


class SentenceEncoder:
    """MiniLM sentence vectors from the exported int8 ONNX graph (onnxruntime + tokenizers; no torch)."""

    def __init__(self, session, tokenizer, graph_sha256: str) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.graph_sha256 = graph_sha256  # the bank records it: its vectors must come from the same graph

    @classmethod
    def load(cls, folder: Path, threads: int = 1) -> SentenceEncoder:
        from tokenizers import Tokenizer

        from reader_runtime.manifest import read_manifest
        from reader_runtime.session import SessionOptions, load_session

        manifest = read_manifest(folder, "BERT", BERT_FORMAT_VERSION)  # RuntimeModelError if unusable
        graph, tokenizer_file = manifest.file("graph"), manifest.file("tokenizer")
        session = load_session(graph, SessionOptions(intra_op_threads=threads))
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        tokenizer.enable_truncation(MAX_BERT_TOKENS)
        return cls(session, tokenizer, manifest.files["graph"].sha256)

    def encode(self, texts: Sequence[str], batch_size: int = 16, pooling: str = "mean") -> np.ndarray:
        """(len(texts), 384) unit vectors: mean of the last hidden state over real tokens (or the [CLS] state)."""
        pooled = []
        for start in range(0, len(texts), batch_size):
            encodings = self.tokenizer.encode_batch(list(texts[start : start + batch_size]))
            width = max(len(e.ids) for e in encodings)
            feeds = {
                name: np.array([getattr(e, attribute) + [0] * (width - len(e.ids)) for e in encodings], np.int64)
                for name, attribute in (("input_ids", "ids"), ("attention_mask", "attention_mask"), ("token_type_ids", "type_ids"))
            }
            (hidden,) = self.session.run(None, feeds)
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled.append(hidden[:, 0] if pooling == "cls" else (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1.0))
        return unit(np.concatenate(pooled)) if pooled else np.zeros((0, 384), np.float32)

    def word_vectors(self, text: str, spans: Sequence[tuple[int, int]]) -> np.ndarray:
        """(len(spans), 384) contextual vectors of the words at character `spans` of `text`: the mean of
        the last hidden states of the word pieces that overlap each span (zeros where none does, e.g.
        past the truncation limit)."""
        encoding = self.tokenizer.encode(text)
        feeds = {
            name: np.array([getattr(encoding, attribute)], np.int64)
            for name, attribute in (("input_ids", "ids"), ("attention_mask", "attention_mask"), ("token_type_ids", "type_ids"))
        }
        (hidden,) = self.session.run(None, feeds)
        offsets = np.array(encoding.offsets, np.int64).reshape(-1, 2)
        real = offsets[:, 1] > offsets[:, 0]  # [CLS], [SEP] have empty offsets
        vectors = np.zeros((len(spans), hidden.shape[-1]), np.float32)
        for i, (start, end) in enumerate(spans):
            pieces = real & (offsets[:, 0] < end) & (offsets[:, 1] > start)
            if pieces.any():
                vectors[i] = hidden[0, pieces].mean(0)
        return vectors


@dataclass(frozen=True)
class BankUtterance:
    id: str
    speaker: str
    text: str
    session: str  # the recording session (book section, prompt set) the clip comes from


def recording_session(utterance_id: str) -> str:
    """The clip's book section or prompt set, read off its id: "LJ001-0042" -> "LJ001", "arctic_b0123" ->
    "arctic_b": the closest the corpora come to naming a recording session."""
    return re.sub(r"[-_]?\d+$", "", utterance_id) or utterance_id


def without_session_offsets(embeddings: np.ndarray, utterances: Sequence[BankUtterance]) -> np.ndarray:
    """Each embedding moved by its speaker's mean minus its session's mean: the selector then chooses
    among within-session prosody around one register and recording colour per voice."""
    result = embeddings.copy()
    speakers = np.array([u.speaker.lower() for u in utterances])
    sessions = np.array([u.session for u in utterances])
    for speaker in np.unique(speakers):
        of_speaker = speakers == speaker
        for session in np.unique(sessions[of_speaker]):
            rows = of_speaker & (sessions == session)
            result[rows] += embeddings[of_speaker].mean(0) - embeddings[rows].mean(0)
    return result


@dataclass(frozen=True)
class ProsodyBank:
    """Training utterances with their acoustic embeddings and linguistic keys (rows aligned)."""

    utterances: list[BankUtterance]
    acoustic_embeddings: np.ndarray  # (N, E)
    syntactic_vectors: np.ndarray  # (N, D) unit rows, made from the stored distances with `features`
    bert_vectors: np.ndarray  # (N, 384) unit rows
    bert_graph_sha256: str = ""  # the sentence encoder that made bert_vectors
    features: SyntacticFeatures = SyntacticFeatures()

    @classmethod
    def load(
        cls, folder: Path, text_to_mel_sha256: str, embedding_dim: int, features: SyntacticFeatures = SyntacticFeatures(), session_normalised: bool = True
    ) -> ProsodyBank:
        """Read and check a bank folder; any problem raises BankError with a one-line reason.
        session_normalised: take each recording session's offset out of the embeddings (module docstring)."""
        from reader_runtime.errors import RuntimeModelError
        from reader_runtime.manifest import read_manifest

        try:
            checked = read_manifest(folder, "prosody bank", BANK_FORMAT_VERSION)
            manifest = checked.data
            if manifest.get("acoustic_text_to_mel_sha256") != text_to_mel_sha256:
                raise BankError("built for another acoustic model version (text_to_mel sha256 differs); rebuild it with `python -m reader.training.embedding_bank`")
            arrays = {name: np.load(entry.path, allow_pickle=False) for name, entry in checked.files.items()}
            rows = manifest["utterances"]
            utterances = [BankUtterance(row["id"], row["speaker"], row["text"], row["session"]) for row in rows]
            syntactic = np.stack([features.vector(row["distances"], row["n_words"]) for row in rows]) if rows else np.zeros((0, 0))
        except BankError:
            raise
        except RuntimeModelError as exc:
            raise BankError(str(exc)) from None
        except FileNotFoundError as exc:
            raise BankError(f"missing file {Path(exc.filename).name if exc.filename else exc}") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BankError(f"corrupt ({type(exc).__name__}: {exc})") from None
        acoustic, bert = arrays.get("acoustic_embeddings"), arrays.get("bert_vectors")
        if not utterances:
            raise BankError("empty")
        if acoustic is None or bert is None or acoustic.shape != (len(rows), embedding_dim) or len(bert) != len(rows):
            raise BankError("array shapes do not match the utterance list or the acoustic model's embedding size")
        acoustic = acoustic.astype(np.float32)
        if session_normalised:
            acoustic = without_session_offsets(acoustic, utterances)
        return cls(utterances, acoustic, unit(syntactic), unit(bert.astype(np.float32)), manifest.get("bert_graph_sha256", ""), features)


@dataclass(frozen=True)
class Selection:
    """The acoustic embedding chosen for one sentence (None = the speaker's centroid)."""

    selector: str
    embedding: np.ndarray | None
    utterance: BankUtterance | None = None
    similarity: float | None = None
    row: int | None = None  # in the bank

    def as_json(self) -> dict:
        return {
            "selector": self.selector,
            "utterance_id": self.utterance.id if self.utterance else None,
            "utterance_text": self.utterance.text if self.utterance else None,
            "similarity": None if self.similarity is None else round(self.similarity, 4),
        }


CENTROID = Selection("centroid", None)


def first_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def warn_centroid(method: str, reason: str) -> None:
    """The one-line warning of every fallback (the logger's last-resort handler prints it to stderr)."""
    logger.warning("prosody %s: %s; using the centroid", method, " ".join(reason.split()))


class ProsodySelector:
    """Chooses each sentence's acoustic embedding, called in reading order (the long-form history)."""

    def __init__(
        self,
        method: str,
        bank: ProsodyBank | None = None,
        speaker: str = "",
        encoder: SentenceEncoder | None = None,
        bert_syntax_weight: float = BERT_SYNTAX_WEIGHT,
        avoid_recent: int = AVOID_RECENT,
    ) -> None:
        if method not in SELECTORS:
            raise ValueError(f"unknown prosody selector {method!r}: use one of {', '.join(SELECTORS)}")
        self.method = method
        self.encoder = encoder
        self.bert_syntax_weight = bert_syntax_weight
        self.avoid_recent = avoid_recent
        self.rows = np.zeros(0, np.int64)  # the bank rows of this speaker
        if method != "centroid" and bank is not None:
            self.rows = np.flatnonzero([u.speaker.lower() == speaker.lower() for u in bank.utterances])  # "LJ" in the data, maybe "lj" as a voice
            if not len(self.rows):
                warn_centroid(method, f"the prosody bank has no utterances of voice {speaker!r}")
                self.method = "centroid"
        self.bank = bank

    @classmethod
    def load(cls, method: str, models: Path, acoustic, speaker, required: bool = False, **options) -> ProsodySelector:
        """A selector over models/prosody_bank for `speaker` of the loaded runtime AcousticModel.
        A bank or sentence encoder that cannot be used falls back to the centroid with a warning, or,
        when `required` (a method the user asked for by name), raises ModelError."""
        if method == "centroid":
            return cls(method)
        try:
            bank = ProsodyBank.load(models / "prosody_bank", acoustic.manifest["files"]["text_to_mel"]["sha256"], acoustic.utterance_embedding_dim)
            encoder = SentenceEncoder.load(models / "bert") if "bert" in method else None
            if encoder is not None and encoder.graph_sha256 != bank.bert_graph_sha256:
                raise BankError("its BERT vectors come from another sentence encoder; rebuild it with `python -m reader.training.embedding_bank`")
        except Exception as exc:  # onnxruntime and tokenizers raise their own types for bad files
            reason = f"prosody bank unusable ({exc})" if isinstance(exc, BankError) else f"BERT sentence encoder unusable ({first_line(exc)})"
            if required:
                raise ModelError(f"prosody {method}: {' '.join(reason.split())}") from None
            warn_centroid(method, reason)
            return cls("centroid")
        return cls(method, bank, speaker.name, encoder, **options)

    def similarities(self, sentence) -> np.ndarray:
        """Cosine similarity of `sentence` (a SentenceAnalysis) to each of the speaker's bank rows."""
        scores = []
        if "syntactic" in self.method:
            query = unit(self.bank.features.vector(sentence.distances, len(sentence.words)))
            scores.append(self.bank.syntactic_vectors[self.rows] @ query)
        if "bert" in self.method:
            query = self.encoder.encode([sentence.text])[0]
            scores.append(self.bank.bert_vectors[self.rows] @ query)
        if len(scores) == 2:
            return (1.0 - self.bert_syntax_weight) * scores[1] + self.bert_syntax_weight * scores[0]
        return scores[0]

    def reading(self) -> Reading:
        """A fresh long-form memory for one document (selection itself is stateless, so the same text
        always gets the same embeddings, and concurrent streams do not share a history)."""
        return Reading(self)

    def select(self, sentence, avoid: Collection[int] = ()) -> Selection:
        """The best bank row for `sentence` that is not in `avoid` (unless all are)."""
        if self.method == "centroid":
            return CENTROID
        try:
            scores = self.similarities(sentence)
        except Exception as exc:  # a sentence the front end could not structure, or text BERT cannot read
            warn_centroid(self.method, f"no linguistic vector for {sentence.text[:60]!r} ({first_line(exc)})")
            return CENTROID
        if not np.all(np.isfinite(scores)):
            warn_centroid(self.method, f"no finite similarity for {sentence.text[:60]!r}")
            return CENTROID
        order = np.argsort(-scores, kind="stable")
        best = next((i for i in order if int(self.rows[i]) not in avoid), order[0])
        row = int(self.rows[best])
        return Selection(self.method, self.bank.acoustic_embeddings[row], self.bank.utterances[row], float(scores[best]), row)


class Reading:
    """One document read in order: remembers the bank rows of the last `avoid_recent` sentences."""

    def __init__(self, selector: ProsodySelector) -> None:
        self.selector = selector
        self.recent: deque[int] = deque(maxlen=max(selector.avoid_recent, 1))

    def select(self, sentence) -> Selection:
        selection = self.selector.select(sentence, self.recent if self.selector.avoid_recent > 0 else ())
        if selection.row is not None:
            self.recent.append(selection.row)
        return selection
