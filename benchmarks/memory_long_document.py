"""Peak memory on book-length documents: 100,000 and 1,000,000 characters.

    python benchmarks/memory_long_document.py                 # writes benchmarks/results/memory_long_document.json
    python benchmarks/memory_long_document.py --full          # also renders the whole 1 M document (~20 h of audio)

The documents are LJ Speech's texts in reading order. Each measurement runs in a fresh process with
the models loaded: peak RSS, and the RSS at 25/50/75/100 % of the work (flat memory stays level), for
the whole front end and for Reader.render's path. Details: docs/benchmark-methods.md#peak-memory-on-long-documents.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import aclosing
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (100_000, 1_000_000)
CLIPS_PER_PARAGRAPH = 8
PARAGRAPHS_PER_CHAPTER = 100
SAMPLE_SECONDS = 0.5


def document_text(chars: int) -> str:
    """At least `chars` characters of LJ book prose (whole paragraphs), with chapter lines."""
    from reader.paths import data_dir

    rows = (data_dir() / "ljspeech_longform" / "ljspeech_all_texts.csv").read_text(encoding="utf-8").splitlines()
    clips = [row.split("|")[1] for row in rows]
    paragraphs = [" ".join(clips[i : i + CLIPS_PER_PARAGRAPH]) for i in range(0, len(clips), CLIPS_PER_PARAGRAPH)]
    parts: list[str] = []
    length = 0
    while length < chars:
        for index, paragraph in enumerate(paragraphs):
            if index % PARAGRAPHS_PER_CHAPTER == 0:
                parts.append(f"CHAPTER {len(parts) // PARAGRAPHS_PER_CHAPTER + 1}")
            parts.append(paragraph)
            length += len(paragraph) + 2
            if length >= chars:
                break
    return "\n\n".join(parts)


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Sampler(threading.Thread):
    """RSS every SAMPLE_SECONDS, with how far through the work the measurement was (0..1)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.progress = 0.0
        self.samples: list[tuple[float, float]] = []  # (progress, rss MB)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(SAMPLE_SECONDS):
            self.samples.append((self.progress, rss_mb()))

    def summary(self) -> dict:
        self.stopped.set()
        self.join()
        self.samples.append((self.progress, rss_mb()))
        at = {}
        for quarter in (0.25, 0.5, 0.75, 1.0):
            reached = [mb for progress, mb in self.samples if progress >= quarter * self.progress]
            at[f"rss_mb_at_{int(quarter * 100)}pct"] = round(reached[0], 1)
        return at


def measure(kind: str, chars: int, audio_minutes: float | None) -> dict:
    from reader import Reader
    from reader.io.sinks import FileSink

    text = document_text(chars)
    reader = Reader(threads=1)
    reader.synthesize("Warm up.")  # first-run allocations belong to loading, not to the document
    loaded_mb = rss_mb()
    sampler = Sampler()
    sampler.start()
    started = time.perf_counter()
    result: dict = {"measure": kind, "document_chars": len(text), "rss_mb_models_loaded": round(loaded_mb, 1)}
    if kind == "front_end":
        sentences = 0
        for request in reader.requests(text):
            sentences += 1
            sampler.progress = request.char_span[1] / len(text)
        result |= {"sentences": sentences}
    else:
        limit = None if audio_minutes is None else audio_minutes * 60 * reader.sample_rate

        async def render(sink: FileSink) -> int:
            samples = 0
            async with aclosing(reader.stream(text)) as chunks:
                async for chunk in chunks:
                    await asyncio.to_thread(sink.write, chunk.samples)
                    samples += len(chunk.samples)
                    if limit:
                        sampler.progress = samples / limit
                        if samples >= limit:
                            break
                    elif chunk.sentences:
                        sampler.progress = chunk.sentences[0].end_char / len(text)
            return samples

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "book.flac"
            with FileSink(reader.sample_rate, path) as sink:
                samples = asyncio.run(render(sink))
            result |= {"audio_minutes": round(samples / reader.sample_rate / 60, 1), "whole_document": limit is None or samples < limit, "flac_mb": round(path.stat().st_size / 2**20, 1)}
    result |= {"seconds": round(time.perf_counter() - started, 1), **sampler.summary()}
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def in_subprocess(kind: str, chars: int, audio_minutes: float | None) -> dict:
    command = [sys.executable, __file__, "--measure", kind, "--chars", str(chars)]
    if audio_minutes is not None:
        command += ["--audio-minutes", str(audio_minutes)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio-minutes", type=float, help="audio rendered from the 1 M document (default 30)")
    parser.add_argument("--full", action="store_true", help="render the whole 1 M document")
    parser.add_argument("--measure", choices=("front_end", "render"), help=argparse.SUPPRESS)
    parser.add_argument("--chars", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.chars, args.audio_minutes)))
        return
    runs = [in_subprocess("front_end", chars, None) for chars in SIZES]
    runs.append(in_subprocess("render", SIZES[0], None))
    runs.append(in_subprocess("render", SIZES[1], None if args.full else args.audio_minutes or 30.0))
    RESULTS.mkdir(exist_ok=True)
    report = {
        "command": "python benchmarks/memory_long_document.py" + (" --full" if args.full else f" --audio-minutes {args.audio_minutes or 30.0:g}"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), onnxruntime threads=1",
        "what": "peak RSS (ru_maxrss, models included) of one process per run; rss_mb_at_Npct: RSS when N % of the run's work was done",
        "runs": runs,
    }
    (RESULTS / "memory_long_document.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
