"""Speed of the text front end on long-form prose.

    python benchmarks/analysis_speed.py      # writes benchmarks/results/analysis_speed.json
    python benchmarks/analysis_speed.py --ssml   # SSML parsing against analysis: results/analysis_speed_ssml.{json,md}

Analyses real book prose (the LJ Speech texts, read from ../shared/data) in one document and reports
sentences and words per second, and how far ahead of real-time speech the front end runs (speech at
~150 words per minute, LJ's rate).
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import statistics
import sys
import time
from pathlib import Path
from xml.sax.saxutils import escape

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


def ssml_book(clips: int) -> str:
    """The same prose as SSML, tagged the way news SSML is: paragraphs, a mark and a break in each,
    emphasis, prosody spans and say-as on numbers (about 100 kB from 860 clips)."""
    paragraphs = []
    for index, paragraph in enumerate(book_text(clips).split("\n\n")):
        words = [re.sub(r"(?<![\w.])(\d+)(?![\w.])", r'<say-as interpret-as="cardinal">\1</say-as>', w) for w in escape(paragraph).split(" ")]
        words[4] = f'<emphasis level="moderate">{words[4]}</emphasis>'
        middle = len(words) // 2
        words[middle] = f'<break time="300ms"/><prosody rate="110%" pitch="+1st">{words[middle]}'
        words[-1] += "</prosody>"
        paragraphs.append(f'<p><mark name="p{index}"/>{" ".join(words)}</p>')
    return '<?xml version="1.0" encoding="UTF-8"?>\n<speak version="1.1" xml:lang="en-US">\n' + "\n".join(paragraphs) + "\n</speak>\n"


def ssml_main() -> None:
    from reader.frontend.ssml import parse_ssml

    text = ssml_book(860)
    analyzer = Analyzer()
    parse_seconds = []
    for _ in range(5):
        start = time.perf_counter()
        document = parse_ssml(text)
        parse_seconds.append(time.perf_counter() - start)
    start = time.perf_counter()
    sentences = list(analyzer.iter_sentences(analyzer.split(text)))
    analysis_s = time.perf_counter() - start  # parsing included: the whole front end on SSML
    parse_s = statistics.median(parse_seconds)
    result = {
        "ssml_bytes": len(text.encode("utf-8")),
        "elements": text.count("<") - text.count("</") - 1,
        "paragraphs": sum(len(c.paragraphs) for c in document.chapters),
        "sentences": len(sentences),
        "words": sum(len(s.words) for s in sentences),
        "parse_seconds_median_of_5": round(parse_s, 4),
        "analysis_seconds": round(analysis_s, 2),
        "parse_share_of_analysis": round(parse_s / analysis_s, 4),
        "goal": "parse_share_of_analysis < 0.05",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analysis_speed_ssml.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "analysis_speed_ssml.md").write_text(
        "# SSML parsing cost (benchmarks/analysis_speed.py --ssml)\n\n"
        f"A {result['ssml_bytes'] / 1000:.0f} kB SSML document ({result['elements']} elements, {result['words']} words read) "
        f"parses in {parse_s * 1000:.0f} ms (median of 5); the whole front end on it takes {analysis_s:.1f} s: "
        f"parsing is {result['parse_share_of_analysis']:.1%} of analysis (goal: under 5 %). Machine: {result['machine']}.\n"
    )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    ssml_main() if "--ssml" in sys.argv[1:] else main()
