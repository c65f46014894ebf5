"""Gap-level training and evaluation data for the break model: front-end features of every word gap
of the LJ long-form clips, joined with the pauses and pitch resets measured in their recordings
(`reader.training.pause_labels`).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..frontend.analysis import Analyzer, word_groups
from ..paths import cache_dir, data_dir
from ..frontend.prosody import FEATURE_NAMES, PUNCT_CLASSES, BreakModel, LogisticHead, gap_features

CORPUS = "ljspeech_longform"
DEFAULT_LABELS = cache_dir() / "lj_pause_labels.json"

# Pause length classes. LJ's gaps are bimodal: most unpunctuated gaps have no silence at all, while
# commas mostly bring 150-400 ms and clause ends more; the thresholds sit in the valleys of the
# distribution (see the summary printed by pause_labels).
MINOR_PAUSE_MS = 100.0
MAJOR_PAUSE_MS = 300.0


@dataclass
class GapSet:
    """Aligned gaps: features, measured pause length, reset label (nan when F0 was unknown), punctuation."""

    features: np.ndarray
    pause_ms: np.ndarray
    reset: np.ndarray
    punct: list[str]
    clip_ids: list[str]
    joined: np.ndarray  # gap inside a written word group ("year-on-year"), where the front end never breaks

    @property
    def level(self) -> np.ndarray:
        """Measured break class: 0 none, 1 minor, 2 major."""
        return (self.pause_ms >= MINOR_PAUSE_MS).astype(int) + (self.pause_ms >= MAJOR_PAUSE_MS).astype(int)


def _key(word: str) -> str:
    return re.sub(r"[^a-z0-9]", "", word.lower())


def zero_break_model() -> BreakModel:
    """A model predicting no breaks: lets the front end run before a break model has been fitted."""
    width = len(FEATURE_NAMES)
    never = LogisticHead(np.zeros(width, np.float32), -10.0, 0.5)
    return BreakModel(
        mean=np.zeros(width, np.float32),
        scale=np.ones(width, np.float32),
        any_break=never,
        major_break=never,
        reset=never,
        metadata={"note": "no breaks; used only while fitting"},
    )


def read_metadata(corpus: str = CORPUS) -> dict[str, str]:
    lines = (data_dir() / corpus / "metadata.csv").read_text(encoding="utf-8").splitlines()
    return {parts[0]: parts[2] for parts in (line.split("|", 2) for line in lines) if len(parts) == 3}


def split_ids(split: str, corpus: str = CORPUS) -> list[str]:
    return json.loads((data_dir() / "splits.json").read_text())[corpus][split]


def load_gaps(split: str, analyzer: Analyzer, labels_path: Path = DEFAULT_LABELS) -> GapSet:
    """Every within-sentence word gap of the split's clips that aligns to a measured gap."""
    labels = json.loads(Path(labels_path).read_text())["clips"]
    texts = read_metadata()
    rows, pauses, resets, puncts, ids, joined = [], [], [], [], [], []
    for clip_id in split_ids(split):
        clip = labels.get(clip_id)
        if clip is None or clip_id not in texts:
            continue
        label_keys = [_key(w) for w in clip["words"]]
        for sentence in analyzer.analyze_text(texts[clip_id]).sentences:
            words = sentence.words
            if len(words) < 2:
                continue
            matcher = difflib.SequenceMatcher(a=[_key(w.text) for w in words], b=label_keys, autojunk=False)
            to_label = {}
            for block in matcher.get_matching_blocks():
                for k in range(block.size):
                    to_label[block.a + k] = block.b + k
            features = gap_features(sentence.distances, [w.punct_after for w in words], [w.pos for w in words])
            groups = word_groups(words, sentence.text, sentence.start)
            for i in range(len(words) - 1):
                j, k = to_label.get(i), to_label.get(i + 1)
                if j is None or k != j + 1:
                    continue
                gap = clip["gaps"][j]
                if not gap["reliable"]:
                    continue
                rows.append(features[i])
                pauses.append(gap["pause_ms"])
                resets.append(np.nan if gap["reset"] is None else float(gap["reset"]))
                puncts.append(words[i].punct_after)
                ids.append(clip_id)
                joined.append(groups[i])
    return GapSet(
        features=np.asarray(rows, np.float32).reshape(-1, len(FEATURE_NAMES)),
        pause_ms=np.asarray(pauses, np.float64),
        reset=np.asarray(resets, np.float64),
        punct=puncts,
        clip_ids=ids,
        joined=np.asarray(joined, bool),
    )


def punctuation_baseline(punct: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The baseline the learned model must beat: a break exactly where punctuation is.

    Commas give a minor break, other punctuation a major one; a reset follows every punctuated gap.
    """
    minor_chars = PUNCT_CLASSES["comma"]
    levels = np.array(
        [0 if not p.strip() else (1 if all(ch in minor_chars for ch in p.strip()) else 2) for p in punct], int
    )
    return levels, levels > 0


def predict(model: BreakModel, gaps: GapSet) -> tuple[np.ndarray, np.ndarray]:
    """Predicted break class (0 none, 1 minor, 2 major) and reset per gap."""
    levels, resets = model.predict(gaps.features, gaps.joined, gaps.punct)
    return np.asarray([int(v) for v in levels], int), np.asarray(resets, bool)


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    support: int  # true positives + false negatives


def scores(predicted: np.ndarray, truth: np.ndarray) -> Scores:
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    tp = int(np.sum(predicted & truth))
    precision = tp / max(int(predicted.sum()), 1)
    recall = tp / max(int(truth.sum()), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return Scores(round(precision, 4), round(recall, 4), round(f1, 4), int(truth.sum()))
