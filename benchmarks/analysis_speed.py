"""Speed of the text front end on long-form prose.

    python benchmarks/analysis_speed.py      # writes benchmarks/results/analysis_speed.json

Analyses real book prose (the LJ Speech texts, read from ../shared/data) in one document and reports
sentences and words per second, and how far ahead of real-time speech the front end runs (speech at
~150 words per minute, LJ's rate).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path

from reader.frontend.analysis import Analyzer
from reader.paths import data_dir

RESULTS = Path(__file__).resolve().parent / "results"
SPEECH_WORDS_PER_SECOND = 150 / 60


def book_text(clips: int) -> str:
    lines = (data_dir() / "ljspeech_longform" / "ljspeech_all_texts.csv").read_text(encoding="utf-8").splitlines()
    texts = [line.split("|")[1] for line in lines[:clips]]
    # ten clips to a paragraph: long-form prose with paragraph structure
    return "\n\n".join(" ".join(texts[i : i + 10]) for i in range(0, len(texts), 10))


def main() -> None:
    text = book_text(2000)
    start = time.perf_counter()
    analyzer = Analyzer()
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    sentences = list(analyzer.iter_sentences(analyzer.split(text)))
    elapsed = time.perf_counter() - start
    words = sum(len(s.words) for s in sentences)
    result = {
        "characters": len(text),
        "sentences": len(sentences),
        "words": words,
        "load_seconds": round(load_s, 2),
        "analysis_seconds": round(elapsed, 2),
        "sentences_per_second": round(len(sentences) / elapsed, 1),
        "words_per_second": round(words / elapsed, 1),
        "times_faster_than_speech": round(words / elapsed / SPEECH_WORDS_PER_SECOND, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analysis_speed.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
