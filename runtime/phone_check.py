"""Whether a transcript fits a recording, judged by a CTC phone recogniser over the whole phoneme inventory.

The aligner (runtime/aligner.py) scores a frame only among the sentence's own tokens, so an unheard
accent's right transcript can cost as much as a wrong one. The phone recogniser (trained by
reader/training/acoustic/phone_recognizer.py) gives, every second frame, log-probabilities over the 39
ARPAbet phonemes and the CTC blank. Scores of (recording, transcript phones), higher = worse fit:
ctc_gap, ctc_gap_per_phone (what the check uses), phone_error_rate and
ctc_gap_per_phone+alignment_cost (score_kinds).

The manifest's `phone_check` block names the score and its calibrated threshold. The check also says
where the recogniser heard phones (heard_frames), from which reader transfer cuts a source to its
speech. numpy + onnxruntime only. The scores' definitions and measurements: docs/phone-check.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .acoustic import AcousticModel, TokenInputs
from .errors import RuntimeModelError

BLANK = 0
SCORE_DESCRIPTIONS = {
    "ctc_gap": "CTC negative log-likelihood of the transcript's phones minus that of the recogniser's best frame-by-frame path, per recogniser frame (runtime/phone_check.py)",
    "ctc_gap_per_phone": "CTC negative log-likelihood of the transcript's phones minus that of the recogniser's best frame-by-frame path, per transcript phone (runtime/phone_check.py)",
    "phone_error_rate": "edit distance between the recogniser's greedy phones and the transcript's, per transcript phone (runtime/phone_check.py)",
    "ctc_gap_per_phone+alignment_cost": "ctc_gap_per_phone (CTC negative log-likelihood of the transcript's phones minus that of the recogniser's best frame-by-frame path, per transcript phone) plus the aligner's alignment cost (runtime/phone_check.py, runtime/aligner.py)",
}
# score kinds that add the aligner's cost of the same transcript
NEEDS_ALIGNMENT_COST = ("ctc_gap_per_phone+alignment_cost",)


def ctc_frames_needed(phones: np.ndarray) -> int:
    """Recogniser frames a CTC path through `phones` needs: one per phone, and a blank between repeats."""
    return int(phones.size + np.sum(phones[1:] == phones[:-1]))


def ctc_negative_log_likelihood(log_probs: np.ndarray, phones: np.ndarray) -> float:
    """-log p(phones | recording) under CTC for (frames, classes) log-probabilities (class 0 = blank);
    infinite where the recording has too few frames to hold the phones (ctc_frames_needed)."""
    n_frames, n_phones = log_probs.shape[0], phones.size
    if n_phones == 0 or n_frames < ctc_frames_needed(phones):
        return float("inf")
    labels = np.full(2 * n_phones + 1, BLANK, np.int64)  # blank, phone 1, blank, phone 2, ..., blank
    labels[1::2] = phones
    # a state may skip the blank before it when it is a phone unlike the phone two states back
    can_skip = np.zeros(labels.size, bool)
    can_skip[3::2] = phones[1:] != phones[:-1]
    alpha = np.full(labels.size, -np.inf)
    alpha[:2] = log_probs[0, labels[:2]]
    minus_inf = np.array([-np.inf])
    for t in range(1, n_frames):
        from_previous = np.concatenate([minus_inf, alpha[:-1]])
        from_skip = np.where(can_skip, np.concatenate([minus_inf, minus_inf, alpha[:-2]]), -np.inf)
        alpha = np.logaddexp(np.logaddexp(alpha, from_previous), from_skip) + log_probs[t, labels]
    return float(-np.logaddexp(alpha[-1], alpha[-2]))


def greedy_phones(log_probs: np.ndarray) -> np.ndarray:
    """The recogniser's best path with repeats merged and blanks dropped."""
    best = log_probs.argmax(-1)
    kept = (best != BLANK) & np.concatenate([[True], best[1:] != best[:-1]])
    return best[kept]


def edit_distance(a: np.ndarray, b: np.ndarray) -> int:
    """Levenshtein distance between two sequences (a row of the table at a time, vectorised over b)."""
    row = np.arange(b.size + 1)
    for i, x in enumerate(a, 1):
        substituted = row[:-1] + (b != x)
        deleted = row[1:] + 1
        best = np.minimum(substituted, deleted)
        row = np.concatenate([[i], best])
        row = np.minimum.accumulate(row - np.arange(row.size)) + np.arange(row.size)  # insertions along the row
    return int(row[-1])


def score_kinds(log_probs: np.ndarray, phones: np.ndarray, alignment_cost: float | None = None) -> dict[str, float]:
    """Every score of SCORE_DESCRIPTIONS for (frames, classes) recogniser log-probabilities and the
    transcript's (phones,) 1-based phone indices; those of NEEDS_ALIGNMENT_COST only with the
    aligner's cost of the same transcript (reader_runtime.aligner.Alignment.cost)."""
    gap = ctc_negative_log_likelihood(log_probs, phones) + float(log_probs.max(-1).sum())
    scores = {
        "ctc_gap": gap / log_probs.shape[0],
        "ctc_gap_per_phone": gap / max(1, phones.size),
        "phone_error_rate": edit_distance(greedy_phones(log_probs), phones) / max(1, phones.size),
    }
    if alignment_cost is not None:
        scores["ctc_gap_per_phone+alignment_cost"] = scores["ctc_gap_per_phone"] + float(alignment_cost)
    return scores


def heard_frames(log_probs: np.ndarray, n_frames: int) -> tuple[int, int] | None:
    """[first, last) log-mel frames of an n_frames recording from the first recogniser frame whose best
    class is a phone to the last (recogniser frame i covers log-mel frames [i * s, (i + 1) * s), s =
    n_frames / its frame count, rounded up); None where it heard no phone."""
    heard = np.flatnonzero(log_probs.argmax(-1) != BLANK)
    if heard.size == 0:
        return None
    stride = -(-n_frames // log_probs.shape[0])
    return int(heard[0] * stride), int(min(n_frames, (heard[-1] + 1) * stride))


@dataclass(frozen=True)
class PhoneCheck:
    score: float  # the manifest's score kind: higher = the transcript fits the recording worse
    score_threshold: float  # above it the transcript does not match
    score_kind: str
    phone_error_rate: float  # of the recogniser's greedy phones against the transcript's, for messages
    speech_frames: tuple[int, int] | None  # heard_frames: where the recogniser heard phones

    @property
    def matches_transcript(self) -> bool:
        return self.score <= self.score_threshold


class RuntimePhoneCheck:
    """Judges whether a transcript fits a recording with an acoustic model's `phone_recognizer` graph."""

    def __init__(self, acoustic: AcousticModel) -> None:
        block = acoustic.manifest.get("phone_check")
        if "phone_recognizer" not in acoustic.manifest.get("files", {}) or not isinstance(block, dict):
            raise RuntimeModelError(f"acoustic model {acoustic.folder} has no phone recognizer (exported before it existed): re-export it")
        try:
            self.score_kind = str(block["score"])
            self.score_threshold = float(block["score_threshold"])
            phone_index = {phone: index + 1 for index, phone in enumerate(block["phones"])}
        except (KeyError, TypeError, ValueError):
            raise RuntimeModelError(f"acoustic model {acoustic.folder}: its manifest's phone_check block lacks score, score_threshold or phones") from None
        if self.score_kind not in SCORE_DESCRIPTIONS:
            raise RuntimeModelError(f"acoustic model {acoustic.folder}: unknown phone_check score {self.score_kind!r} (a newer engine's model?)")
        # token symbol id -> phone class (0: <bos>, breaks and padding, which are not phones)
        self.phone_of_symbol = np.array([phone_index.get(symbol, 0) for symbol in acoustic.symbols], np.int64)
        self.session = acoustic.encoder("phone_recognizer")
        n_classes = self.session.get_outputs()[0].shape[-1]
        if n_classes != len(phone_index) + 1:
            raise RuntimeModelError(f"acoustic model {acoustic.folder}: phone_recognizer gives {n_classes} classes, its manifest names {len(phone_index)} phones")

    def phones(self, tokens: TokenInputs) -> np.ndarray:
        """The transcript's phone classes (stress is a separate token feature: it is dropped)."""
        classes = self.phone_of_symbol[np.asarray(tokens.symbol_ids, np.int64)]
        return classes[classes > 0]

    def log_probs(self, log_mel: np.ndarray) -> np.ndarray:
        """(ceil(frames / 2), 1 + phones) recogniser log-probabilities of a (frames, n_mels) log-mel (reader_runtime.features)."""
        (log_probs,) = self.session.run(None, {"log_mel": np.asarray(log_mel, np.float32)[None]})
        return log_probs[0]

    @property
    def needs_alignment_cost(self) -> bool:
        return self.score_kind in NEEDS_ALIGNMENT_COST

    def check(self, tokens: TokenInputs, log_mel: np.ndarray, alignment_cost: float | None = None) -> PhoneCheck:
        """The check of the transcript's tokens against a (frames, n_mels) log-mel; alignment_cost: the
        aligner's cost of the same (reader_runtime.aligner), needed where needs_alignment_cost."""
        if self.needs_alignment_cost and alignment_cost is None:
            raise ValueError(f"the phone check's score {self.score_kind} needs the aligner's alignment cost of the transcript")
        log_probs = self.log_probs(log_mel)
        scores = score_kinds(log_probs, self.phones(tokens), alignment_cost)
        return PhoneCheck(scores[self.score_kind], self.score_threshold, self.score_kind, scores["phone_error_rate"], heard_frames(log_probs, len(log_mel)))
