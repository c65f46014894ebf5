"""Fit the break model (break level and intonation reset at every word gap) to real long-form speech.

    python -m reader.training.fit_breaks [--labels ~/.cache/reader/lj_pause_labels.json]

Trains on the LJ long-form train clips, picks the regularisation and the reset threshold on the
valid clips, and writes reader/data/break_model.json. The test clips are only used by
benchmarks/break_eval.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from ..analysis import Analyzer
from ..prosody import BREAK_MODEL_PATH, BreakModel
from .break_data import DEFAULT_LABELS, MAJOR_PAUSE_MS, MINOR_PAUSE_MS, load_gaps, predict, scores, zero_break_model

REGULARISATION = (0.03, 0.1, 0.3, 1.0, 3.0)
RESET_THRESHOLDS = np.linspace(0.2, 0.8, 25)


def _fit_breaks(x, y, c: float, balanced: bool) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=2000, class_weight="balanced" if balanced else None).fit(x, y)


def fit(labels: Path) -> BreakModel:
    analyzer = Analyzer(break_model=zero_break_model())
    train, valid = load_gaps("train", analyzer, labels), load_gaps("valid", analyzer, labels)
    mean = train.features.mean(axis=0)
    scale = np.maximum(train.features.std(axis=0), 1e-3)
    xt, xv = (train.features - mean) / scale, (valid.features - mean) / scale

    # Model selection on the valid clips: mean of break-detection F1 and major-break F1.
    best = None
    for c in REGULARISATION:
        for balanced in (False, True):
            clf = _fit_breaks(xt, train.level, c, balanced)
            levels = clf.predict(xv)
            f_any = scores(levels > 0, valid.level > 0).f1
            f_major = scores(levels == 2, valid.level == 2).f1
            score = (f_any + f_major) / 2
            if best is None or score > best[0]:
                best = (score, c, balanced, clf)
    _, c, balanced, clf = best
    # sklearn orders classes by value; the model stores weights for classes 0, 1, 2.
    assert list(clf.classes_) == [0, 1, 2], clf.classes_

    known_t, known_v = ~np.isnan(train.reset), ~np.isnan(valid.reset)
    reset_clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(xt[known_t], train.reset[known_t] > 0)
    model = BreakModel(
        mean=mean.astype(np.float32),
        scale=scale.astype(np.float32),
        break_weights=clf.coef_.T.astype(np.float32),
        break_bias=clf.intercept_.astype(np.float32),
        reset_weights=reset_clf.coef_[0].astype(np.float32),
        reset_bias=float(reset_clf.intercept_[0]),
        reset_threshold=0.5,
        metadata={},
    )
    # The reset threshold is chosen on valid gaps, through the same gating as at run time.
    best_threshold, best_f1 = 0.5, -1.0
    for threshold in RESET_THRESHOLDS:
        model.reset_threshold = float(threshold)
        _, resets = predict(model, valid)
        f1 = scores(resets[known_v], valid.reset[known_v] > 0).f1
        if f1 > best_f1:
            best_threshold, best_f1 = float(threshold), f1
    model.reset_threshold = best_threshold
    levels, _ = predict(model, valid)
    model.metadata = {
        "fitted_on": "ljspeech_longform train clips (splits.json); selection on valid clips",
        "train_gaps": int(len(train.level)),
        "valid_gaps": int(len(valid.level)),
        "minor_pause_ms": MINOR_PAUSE_MS,
        "major_pause_ms": MAJOR_PAUSE_MS,
        "regularisation_C": c,
        "class_weight_balanced": balanced,
        "valid_break_f1": scores(levels > 0, valid.level > 0).f1,
        "valid_major_f1": scores(levels == 2, valid.level == 2).f1,
        "valid_reset_f1": best_f1,
    }
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--out", type=Path, default=BREAK_MODEL_PATH)
    args = parser.parse_args(argv)
    if not args.labels.is_file():
        print(f"labels not found: {args.labels}; run python -m reader.training.pause_labels first", file=sys.stderr)
        return 2
    model = fit(args.labels)
    model.save(args.out)
    print(json.dumps(model.metadata, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
