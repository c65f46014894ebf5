"""The prosody plan: a break level and an intonation-reset flag at every word gap of a sentence.

Decided by a small classifier over syntactic distance, punctuation, position and part of speech,
fitted to the pauses and pitch resets of real long-form speech (LJ Speech train clips; see
`reader/training/fit_breaks.py`). The fitted weights ship as `exported_models/break/break_model.json`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import ModelError



def break_model_path() -> Path:
    """The shipped break model, with the other models (reader.paths.models_dir)."""
    from ..paths import models_dir

    return models_dir() / "break" / "break_model.json"


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

# Punctuation after which there is always at least a minor break.
BREAK_AFTER_PUNCTUATION = frozenset(")]}…")

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
    "log_left_span",
    "log_right_span",
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
    # Words on each side of the gap under its lowest common ancestor: a long subject before a gap
    # makes a pause likelier than a short one at the same height.
    # Each span runs to the nearest gap at least as high (found with a monotonic stack: linear time,
    # where walking outwards from every gap is quadratic on the long right-branching runs of a
    # thousand-word sentence).
    left_span = _span_to_higher(d, range(gaps))
    right_span = _span_to_higher(d, reversed(range(gaps)))
    lower_share = np.searchsorted(np.sort(d), d, side="left") / gaps
    rows = []
    for i in range(gaps):
        left = d[i - 1] if i > 0 else 0.0
        right = d[i + 1] if i + 1 < gaps else 0.0
        classes = punct_classes(punct_after[i])
        nxt, this = pos[i + 1], pos[i]
        rows.append(
            [
                d[i] / top,
                float(lower_share[i]),
                1.0 if d[i] == top else 0.0,
                math.log1p(d[i]),
                (d[i] - left) / top,
                (d[i] - right) / top,
                math.log(left_span[i]),
                math.log(right_span[i]),
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


def _span_to_higher(d: np.ndarray, order: Iterable[int]) -> list[int]:
    """For each gap, visited in `order`: how many gaps from it back to (not including) the nearest
    earlier-visited gap at least as high, or to the start."""
    spans = [0] * len(d)
    stack: list[tuple[int, int]] = []  # (gap, visit count), heights non-increasing
    for count, i in enumerate(order):
        while stack and d[stack[-1][0]] < d[i]:
            stack.pop()
        spans[i] = count - (stack[-1][1] if stack else -1)
        stack.append((i, count))
    return spans


@dataclass
class LogisticHead:
    """One binary logistic decision over standardised gap features."""

    weights: np.ndarray  # (features,)
    bias: float
    threshold: float

    def probability(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(x @ self.weights + self.bias)))

    def decide(self, x: np.ndarray) -> np.ndarray:
        return self.probability(x) >= self.threshold

    def to_json(self) -> dict:
        return {"weights": self.weights.tolist(), "bias": self.bias, "threshold": self.threshold}

    @classmethod
    def from_json(cls, data: dict) -> "LogisticHead":
        weights = np.asarray(data["weights"], dtype=np.float32)
        if weights.shape != (len(FEATURE_NAMES),):
            raise ValueError("weight shape does not match the features")
        return cls(weights, float(data["bias"]), float(data["threshold"]))


@dataclass
class BreakModel:
    """Ordinal break decision (any break, then major break) and an intonation-reset decision.

    Three logistic heads over the same standardised features; a gap gets MAJOR if the major head
    fires, else MINOR if the any-break head fires, else NONE. A reset needs its own head to fire at
    a gap that breaks (see predict).
    """

    mean: np.ndarray
    scale: np.ndarray
    any_break: LogisticHead
    major_break: LogisticHead
    reset: LogisticHead
    metadata: dict

    def predict(
        self, features: np.ndarray, joined: Sequence[bool] | None = None, punct: Sequence[str] | None = None
    ) -> tuple[list[BreakLevel], list[bool]]:
        """Break level and reset at each gap. `joined` marks gaps inside a written word group
        ("year-on-year", a number read as several words), where speech never breaks; `punct` (the
        punctuation at each gap) gives at least a minor break after a closing bracket or an ellipsis,
        where listeners expect one and LJ's few examples leave the heads unsure.

        A reset starts a new intonational phrase, so it is only placed at a phrase break (MINOR or
        MAJOR) where the reset head also fires. The reset head alone fires at pitch accents as much
        as at phrase starts (its training label is any upward F0 jump of 3 semitones), which put
        resets after almost every word.
        """
        if len(features) == 0:
            return [], []
        x = (features - self.mean) / self.scale
        major = self.major_break.decide(x)
        minor = self.any_break.decide(x)
        reset = self.reset.decide(x)
        levels = np.where(major, BreakLevel.MAJOR, np.where(minor, BreakLevel.MINOR, BreakLevel.NONE))
        if punct is not None:
            expected = np.asarray([any(ch in BREAK_AFTER_PUNCTUATION for ch in p) for p in punct], dtype=bool)
            levels[expected] = np.maximum(levels[expected], BreakLevel.MINOR)
        if joined is not None:
            inside = np.asarray(joined, dtype=bool)
            levels[inside] = BreakLevel.NONE
            reset &= ~inside
        reset &= levels > BreakLevel.NONE
        return [BreakLevel(int(v)) for v in levels], [bool(v) for v in reset]

    def to_json(self) -> dict:
        return {
            "format": BREAK_MODEL_FORMAT,
            "feature_names": list(FEATURE_NAMES),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "any_break": self.any_break.to_json(),
            "major_break": self.major_break.to_json(),
            "reset": self.reset.to_json(),
            "metadata": self.metadata,
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path | None = None) -> "BreakModel":
        path = path or break_model_path()
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"break model not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"break model is corrupt: {path} ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != BREAK_MODEL_FORMAT or data.get("feature_names") != list(FEATURE_NAMES):
            raise ModelError(f"break model {path} was fitted for another feature set or format; refit it")
        try:
            return cls(
                mean=np.asarray(data["mean"], dtype=np.float32),
                scale=np.asarray(data["scale"], dtype=np.float32),
                any_break=LogisticHead.from_json(data["any_break"]),
                major_break=LogisticHead.from_json(data["major_break"]),
                reset=LogisticHead.from_json(data["reset"]),
                metadata=dict(data.get("metadata", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"break model is corrupt: {path} ({exc})") from None


def plan_breaks(
    model: BreakModel,
    distances: Sequence[int],
    punct_after: Sequence[str],
    pos: Sequence[str],
    final: BreakLevel,
    joined: Sequence[bool] | None = None,
) -> tuple[list[BreakLevel], list[bool]]:
    """Break level and reset after each word; the last word gets `final` (sentence or paragraph) and a reset.

    `joined` (one per gap) marks gaps inside a written word group, which never break.
    """
    levels, resets = model.predict(gap_features(distances, punct_after, pos), joined, punct_after[: max(len(pos) - 1, 0)])
    return levels + [final], resets + [True]
