"""What SSML's voice controls do to the rendered audio, measured (the real models, CPU).

    python benchmarks/ssml_audio.py      # writes benchmarks/results/ssml_audio.{json,md}

One news sentence, plain and with each control on a span: the span's duration (word timings), its
median F0 (Praat, through parselmouth) and its RMS level, against the plain reading; break times
and sentence pauses as the gap between the words around them.
"""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path

import numpy as np
import parselmouth

from reader.engine import Reader

RESULTS = Path(__file__).resolve().parent / "results"
SENTENCE = "The committee will publish its findings on the economy next week."
SPAN = "its findings on the economy"
VARIANTS = {
    "prosody rate=150%": f'<prosody rate="150%">{SPAN}</prosody>',
    "prosody rate=x-slow": f'<prosody rate="x-slow">{SPAN}</prosody>',
    "prosody pitch=+4st": f'<prosody pitch="+4st">{SPAN}</prosody>',
    "prosody pitch=-4st": f'<prosody pitch="-4st">{SPAN}</prosody>',
    "prosody pitch=x-high": f'<prosody pitch="x-high">{SPAN}</prosody>',
    "prosody volume=-6dB": f'<prosody volume="-6dB">{SPAN}</prosody>',
    "prosody volume=x-loud": f'<prosody volume="x-loud">{SPAN}</prosody>',
    "emphasis strong": f'<emphasis level="strong">{SPAN}</emphasis>',
    "emphasis moderate": f'<emphasis level="moderate">{SPAN}</emphasis>',
    "emphasis reduced": f'<emphasis level="reduced">{SPAN}</emphasis>',
}


def measure(reader: Reader, body: str) -> dict:
    text = f"<speak>{SENTENCE.replace(SPAN, body)}</speak>"
    audio = reader.synthesize(text)
    after = text.index("publish")
    inside = [w for w in audio.words if w.start_char > after and text[w.start_char : w.end_char] in SPAN.split()]
    start, end = inside[0].start, inside[-1].end
    sr = audio.sample_rate
    segment = audio.samples[int(start * sr) : int(end * sr)].astype(np.float64)
    pitch = parselmouth.Sound(segment, sampling_frequency=sr).to_pitch(time_step=0.01, pitch_floor=60, pitch_ceiling=500).selected_array["frequency"]
    voiced = pitch[pitch > 0]
    return {"span_seconds": end - start, "median_f0_hz": float(np.median(voiced)), "rms": float(np.sqrt(np.mean(segment**2)))}


def gap(reader: Reader, text: str, before: str, after: str) -> float:
    audio = reader.synthesize(text)
    words = {text[w.start_char : w.end_char]: w for w in audio.words}
    return words[after].start - words[before].end


def main() -> None:
    reader = Reader(threads=1)
    plain = measure(reader, SPAN)
    rows = {}
    for name, body in VARIANTS.items():
        m = measure(reader, body)
        rows[name] = {
            "duration_ratio": round(m["span_seconds"] / plain["span_seconds"], 3),
            "f0_semitones": round(12 * math.log2(m["median_f0_hz"] / plain["median_f0_hz"]), 2),
            "level_db": round(20 * math.log10(m["rms"] / plain["rms"]), 2),
        }
    gaps = {
        'break time="1500ms"': round(gap(reader, '<speak>Good morning <break time="1500ms"/> everyone.</speak>', "morning", "everyone"), 3),
        'break strength="strong"': round(gap(reader, '<speak>Good morning <break strength="strong"/> everyone.</speak>', "morning", "everyone"), 3),
        "sentence_pause=1.2": round(gap(Reader(threads=1, sentence_pause=1.2), "Good morning. Here is the news.", "morning", "Here"), 3),
    }
    result = {"plain": {k: round(v, 4) for k, v in plain.items()}, "controls": rows, "gaps_seconds": gaps}
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ssml_audio.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# SSML voice controls in the audio (benchmarks/ssml_audio.py)",
        "",
        f'Span "{SPAN}" of "{SENTENCE}", against the plain reading (span {plain["span_seconds"]:.2f} s, median F0 {plain["median_f0_hz"]:.0f} Hz).',
        "",
        "| control | duration x | F0 (st) | level (dB) |",
        "|---|---|---|---|",
        *(f"| {name} | {r['duration_ratio']:.3f} | {r['f0_semitones']:+.2f} | {r['level_db']:+.2f} |" for name, r in rows.items()),
        "",
        "Gaps between the words around a pause (word timings): " + ", ".join(f"{k}: {v:.3f} s" for k, v in gaps.items()) + ".",
        "",
    ]
    (RESULTS / "ssml_audio.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
