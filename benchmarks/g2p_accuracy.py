"""Held-out word accuracy and speed of the shipped G2P model (ONNX, through the reader's runtime).

    python benchmarks/g2p_accuracy.py [--model exported_models/g2p]

Held-out words: CMUdict words with zlib.crc32(word) % 100 < 5, never trained on. A prediction
is correct if it equals any of the word's dictionary pronunciations (stress included); the
second figure ignores stress digits. Writes benchmarks/results/g2p_accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import asdict
from pathlib import Path

from reader.paths import PROJECT_ROOT, models_dir
from reader.training.g2p import HELD_OUT_RULE, evaluate

RESULTS_PATH = PROJECT_ROOT / "benchmarks" / "results" / "g2p_accuracy.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=models_dir() / "g2p", help="folder with g2p.onnx and g2p.json")
    args = parser.parse_args()

    result = evaluate(args.model)
    onnx_path = args.model / "g2p.onnx"
    report = {
        **asdict(result),
        "accuracy": round(result.accuracy, 4),
        "accuracy_without_stress": round(result.accuracy_without_stress, 4),
        "words_per_second": round(result.words_per_second),
        "held_out_rule": HELD_OUT_RULE,
        "model": str(onnx_path),
        "model_megabytes": round(onnx_path.stat().st_size / 1e6, 2),
        "inference": "onnxruntime, CPU, 1 thread, batches of 256 words, greedy CTC decoding, then one primary stress per word",
        "machine": platform.processor() or platform.machine(),
    }
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS_PATH}")


if __name__ == "__main__":
    main()
