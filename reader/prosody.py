"""The prosody plan: a break level and an intonation-reset flag at every word gap of a sentence.

Decided by a small classifier over syntactic distance, punctuation, position and part of speech,
fitted to the pauses and pitch resets of real long-form speech (LJ Speech train clips; see
`reader/training/fit_breaks.py`). The fitted weights ship as `reader/data/break_model.json`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ModelError

BREAK_MODEL_PATH = Path(__file__).resolve().parent / "data" / "break_model.json"
BREAK_MODEL_FORMAT = 1


class BreakLevel(IntEnum):
    """How strongly speech breaks after a word."""

    NONE = 0
    MINOR = 1  # minor phrase: a short pause or just lengthening
    MAJOR = 2  # major (intonational) phrase: a clear pause
    SENTENCE = 3
    PARAGRAPH = 4


# Punctuation classes at a gap; the order fixes the feature layout.
PUNCT_CLASSES = {
    "comma": ",",
    "colon": ";:",
    "dash": "—–-",
    "open": "([{“\"‘'",
    "close": ")]}”\"’'",
    "stop": ".!?…",
}

_NEXT_POS = {
    "next_cc": ("CC",),
    "next_in": ("IN", "TO"),
    "next_wh": ("WDT", "WP", "WP$", "WRB"),
    "next_vb": ("VB", "MD"),
    "next_dt": ("DT", "PDT", "PRP$"),
}
_THIS_POS = {"this_nn": ("NN", "PRP", "CD"), "this_vb": ("VB",), "this_jj": ("JJ", "RB")}

FEATURE_NAMES: tuple[str, ...] = (
    "height_rel",
    "height_rank",
    "height_is_max",
    "height_log",
    "rise_from_left",
    "fall_to_right",
    *(f"punct_{name}" for name in PUNCT_CLASSES),
    "any_punct",
    "position",
    "log_words_since_punct",
    "log_words_until_punct",
    "log_sentence_words",
    *_NEXT_POS,
    *_THIS_POS,
)


def punct_classes(punct: str) -> list[float]:
    """One flag per punctuation class present in the punctuation string at a gap."""
    return [1.0 if any(ch in chars for ch in punct) else 0.0 for chars in PUNCT_CLASSES.values()]


def gap_features(distances: Sequence[int], punct_after: Sequence[str], pos: Sequence[str]) -> np.ndarray:
    """Features of the n-1 gaps of an n-word sentence (rows follow FEATURE_NAMES).

    `punct_after[i]` is the punctuation between word i and word i+1; `pos[i]` is word i's Penn tag.
    """
    n = len(pos)
    gaps = n - 1
    if gaps <= 0:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    d = np.asarray(distances[:gaps], dtype=np.float64)
    top = max(d.max(), 1.0)
    has_punct = [bool(punct_after[i].strip()) for i in range(gaps)]
    since = []
    run = 0
    for i in range(gaps):
        run += 1
        since.append(run)
        if has_punct[i]:
            run = 0
    until = [0] * gaps
    run = 0
    for i in reversed(range(gaps)):
        run += 1
        until[i] = run
        if i > 0 and has_punct[i - 1]:
            run = 0
    rows = []
    for i in range(gaps):
        left = d[i - 1] if i > 0 else 0.0
        right = d[i + 1] if i + 1 < gaps else 0.0
        classes = punct_classes(punct_after[i])
        nxt, this = pos[i + 1], pos[i]
        rows.append(
            [
                d[i] / top,
                float(np.mean(d < d[i])),
                1.0 if d[i] == top else 0.0,
                math.log1p(d[i]),
                (d[i] - left) / top,
                (d[i] - right) / top,
                *classes,
                1.0 if has_punct[i] else 0.0,
                (i + 1) / n,
                math.log(since[i]),
                math.log(until[i]),
                math.log(n),
                *(1.0 if nxt.startswith(tags) else 0.0 for tags in _NEXT_POS.values()),
                *(1.0 if this.startswith(tags) else 0.0 for tags in _THIS_POS.values()),
            ]
        )
    return np.asarray(rows, dtype=np.float32)


@dataclass
class BreakModel:
    """Multinomial logistic regression for break levels (none/minor/major) and a logistic reset model."""

    mean: np.ndarray
    scale: np.ndarray
    break_weights: np.ndarray  # (features, 3)
    break_bias: np.ndarray  # (3,)
    reset_weights: np.ndarray  # (features,)
    reset_bias: float
    reset_threshold: float
    metadata: dict

    def predict(self, features: np.ndarray) -> tuple[list[BreakLevel], list[bool]]:
        if len(features) == 0:
            return [], []
        x = (features - self.mean) / self.scale
        levels = np.argmax(x @ self.break_weights + self.break_bias, axis=1)
        reset_logit = x @ self.reset_weights + self.reset_bias
        resets = 1.0 / (1.0 + np.exp(-reset_logit)) >= self.reset_threshold
        return [BreakLevel(int(v)) for v in levels], [bool(v) for v in resets]

    def to_json(self) -> dict:
        return {
            "format": BREAK_MODEL_FORMAT,
            "feature_names": list(FEATURE_NAMES),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "break_weights": self.break_weights.tolist(),
            "break_bias": self.break_bias.tolist(),
            "reset_weights": self.reset_weights.tolist(),
            "reset_bias": self.reset_bias,
            "reset_threshold": self.reset_threshold,
            "metadata": self.metadata,
        }

    def save(self, path: Path = BREAK_MODEL_PATH) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path = BREAK_MODEL_PATH) -> "BreakModel":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"break model not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"break model is corrupt: {path} ({exc})") from None
        if data.get("format") != BREAK_MODEL_FORMAT or data.get("feature_names") != list(FEATURE_NAMES):
            raise ModelError(f"break model {path} was fitted for another feature set; refit it")
        try:
            model = cls(
                mean=np.asarray(data["mean"], dtype=np.float32),
                scale=np.asarray(data["scale"], dtype=np.float32),
                break_weights=np.asarray(data["break_weights"], dtype=np.float32),
                break_bias=np.asarray(data["break_bias"], dtype=np.float32),
                reset_weights=np.asarray(data["reset_weights"], dtype=np.float32),
                reset_bias=float(data["reset_bias"]),
                reset_threshold=float(data["reset_threshold"]),
                metadata=dict(data.get("metadata", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"break model is corrupt: {path} ({exc})") from None
        width = len(FEATURE_NAMES)
        if model.break_weights.shape != (width, 3) or model.reset_weights.shape != (width,):
            raise ModelError(f"break model is corrupt: {path} (weight shapes do not match the features)")
        return model


def plan_breaks(
    model: BreakModel,
    distances: Sequence[int],
    punct_after: Sequence[str],
    pos: Sequence[str],
    final: BreakLevel,
) -> tuple[list[BreakLevel], list[bool]]:
    """Break level and reset after each word; the last word gets `final` (sentence or paragraph) and a reset."""
    levels, resets = model.predict(gap_features(distances, punct_after, pos))
    # A reset is the start of a new intonational phrase, so it only follows a break.
    resets = [r and lvl > BreakLevel.NONE for r, lvl in zip(resets, levels)]
    return levels + [final], resets + [True]
