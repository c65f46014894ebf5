"""Fit the break model (break level and intonation reset at every word gap) to real long-form speech.

    python -m reader.training.fit_breaks [--labels ~/.cache/reader/lj_pause_labels.json]

Fits on the LJ long-form train and valid clips. The valid split alone is too small to choose
anything (about 260 gaps, under 40 pauses), so the regularisation and each head's decision
threshold are chosen by 5-fold cross-validation grouped by clip over train + valid (out-of-fold
F1), then the heads are refitted on all of it. The test clips are only used by
benchmarks/break_eval.py. Writes exported_models/break/break_model.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from ..frontend.analysis import Analyzer
from reader_runtime.manifest import record_files

from ..frontend.prosody import BREAK_MODEL_FORMAT, BreakModel, LogisticHead, break_model_path
from .break_data import DEFAULT_LABELS, MAJOR_PAUSE_MS, MINOR_PAUSE_MS, GapSet, load_gaps, scores, zero_break_model

REGULARISATION = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
THRESHOLDS = np.round(np.linspace(0.1, 0.9, 33), 3)
FOLDS = 5


def _concat(a: GapSet, b: GapSet) -> GapSet:
    return GapSet(
        features=np.concatenate([a.features, b.features]),
        pause_ms=np.concatenate([a.pause_ms, b.pause_ms]),
        reset=np.concatenate([a.reset, b.reset]),
        punct=a.punct + b.punct,
        clip_ids=a.clip_ids + b.clip_ids,
        joined=np.concatenate([a.joined, b.joined]),
    )


def fit_head(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[LogisticHead, dict]:
    """A logistic head with C and threshold maximising out-of-fold F1 (folds grouped by clip)."""
    best = None
    for c in REGULARISATION:
        out_of_fold = np.zeros(len(y))
        for train_idx, test_idx in GroupKFold(n_splits=FOLDS).split(x, y, groups):
            clf = LogisticRegression(C=c, max_iter=2000).fit(x[train_idx], y[train_idx])
            out_of_fold[test_idx] = clf.predict_proba(x[test_idx])[:, 1]
        for threshold in THRESHOLDS:
            f1 = scores(out_of_fold >= threshold, y).f1
            if best is None or f1 > best[0]:
                best = (f1, c, float(threshold))
    f1, c, threshold = best
    clf = LogisticRegression(C=c, max_iter=2000).fit(x, y)
    head = LogisticHead(clf.coef_[0].astype(np.float32), float(clf.intercept_[0]), threshold)
    return head, {"C": c, "threshold": threshold, "cross_validated_f1": f1, "positives": int(y.sum()), "gaps": int(len(y))}


def fit(labels: Path) -> BreakModel:
    analyzer = Analyzer(break_model=zero_break_model())
    data = _concat(load_gaps("train", analyzer, labels), load_gaps("valid", analyzer, labels))
    mean = data.features.mean(axis=0)
    scale = np.maximum(data.features.std(axis=0), 1e-3)
    x = (data.features - mean) / scale
    groups = np.asarray(data.clip_ids)
    any_head, any_info = fit_head(x, data.level >= 1, groups)
    major_head, major_info = fit_head(x, data.level >= 2, groups)
    known = ~np.isnan(data.reset)
    reset_head, reset_info = fit_head(x[known], data.reset[known] > 0, groups[known])
    return BreakModel(
        mean=mean.astype(np.float32),
        scale=scale.astype(np.float32),
        any_break=any_head,
        major_break=major_head,
        reset=reset_head,
        metadata={
            "fitted_on": "ljspeech_longform train + valid clips (splits.json); test clips never used",
            "labels": "pauses from Whisper word times refined by silence detection; resets = F0 jump >= 3 semitones",
            "minor_pause_ms": MINOR_PAUSE_MS,
            "major_pause_ms": MAJOR_PAUSE_MS,
            "any_break": any_info,
            "major_break": major_info,
            "reset": reset_info,
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--out", type=Path, default=break_model_path())
    args = parser.parse_args(argv)
    if not args.labels.is_file():
        print(f"labels not found: {args.labels}; run python -m reader.training.pause_labels first", file=sys.stderr)
        return 2
    model = fit(args.labels)
    model.save(args.out)
    record_files(args.out.parent, {"break_model": args.out.name}, BREAK_MODEL_FORMAT)  # the manifest checked when a Reader starts
    print(json.dumps(model.metadata, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
