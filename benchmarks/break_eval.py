"""Break prediction against the pauses and pitch resets of the held-out LJ long-form test clips.

    python benchmarks/break_eval.py          # writes benchmarks/results/break_eval.{json,md}

Compares the shipped break model with a punctuation-only baseline: precision, recall and F1 of
(a) any break (pause >= MINOR_PAUSE_MS), (b) major breaks (pause >= MAJOR_PAUSE_MS), (c) resets.
A third row, "measured pauses", predicts from the recordings' own pauses (a break where the speaker
paused, a reset at every such break): the ceiling of any plan that resets only at phrase breaks.
Also counted: resets the model plans at gaps it leaves unbroken (must be 0).
Needs the labels from `python -m reader.training.pause_labels` (Whisper word times + silence + F0).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

import numpy as np

from reader.frontend.analysis import Analyzer
from reader.frontend.prosody import BreakModel
from reader.training.break_data import (
    DEFAULT_LABELS,
    MAJOR_PAUSE_MS,
    MINOR_PAUSE_MS,
    load_gaps,
    predict,
    punctuation_baseline,
    scores,
)
from common import write_results  # benchmarks/ is on sys.path when run as a script

RESULTS = Path(__file__).resolve().parent / "results"


def evaluate(labels: Path) -> dict:
    model = BreakModel.load()
    gaps = load_gaps("test", Analyzer(break_model=model), labels)
    known = ~np.isnan(gaps.reset)
    measured = np.minimum(gaps.level, 2)
    systems = {
        "punctuation only": punctuation_baseline(gaps.punct),
        "break model": predict(model, gaps),
        "measured pauses (ceiling)": (measured, measured > 0),
    }
    table = {}
    for name, (levels, resets) in systems.items():
        table[name] = {
            "any break": asdict(scores(levels > 0, gaps.level > 0)),
            "major break": asdict(scores(levels == 2, gaps.level == 2)),
            "reset": asdict(scores(resets[known], gaps.reset[known] > 0)),
        }
    levels, resets = systems["break model"]
    return {
        "resets_at_unbroken_gaps": int(np.sum(resets & (levels == 0))),
        "test_clips": len(set(gaps.clip_ids)),
        "test_gaps": int(len(gaps.level)),
        "gaps_with_pause": {"minor_or_more": int((gaps.level > 0).sum()), "major": int((gaps.level == 2).sum())},
        "thresholds_ms": {"minor": MINOR_PAUSE_MS, "major": MAJOR_PAUSE_MS},
        "systems": table,
    }


def markdown(result: dict) -> str:
    lines = [
        f"Held-out LJ long-form test clips: {result['test_clips']} clips, {result['test_gaps']} word gaps "
        f"(pause >= {result['thresholds_ms']['minor']:.0f} ms at {result['gaps_with_pause']['minor_or_more']}, "
        f">= {result['thresholds_ms']['major']:.0f} ms at {result['gaps_with_pause']['major']}).",
        "",
        "| system | target | precision | recall | F1 |",
        "|---|---|---|---|---|",
    ]
    for system, targets in result["systems"].items():
        for target, s in targets.items():
            lines.append(f"| {system} | {target} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} |")
    lines += ["", f"Resets the break model plans at gaps it leaves unbroken: {result['resets_at_unbroken_gaps']}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    args = parser.parse_args()
    result = evaluate(args.labels)
    write_results(RESULTS / "break_eval", result, markdown(result))


if __name__ == "__main__":
    main()
