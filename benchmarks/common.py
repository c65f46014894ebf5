"""Helpers shared by the benchmarks: the held-out test clips and Praat pitch tracking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import parselmouth

CORPORA = ("ljspeech_longform", "kathleen_arctic")
# Praat's autocorrelation tracker over the range the acoustic feature cache uses (reader/training/acoustic/data.py).
F0_FLOOR_HZ, F0_CEILING_HZ = 65.0, 600.0


def held_out_clips(root: Path, split: str = "test") -> list[tuple[str, str, str, Path]]:
    """(corpus, id, transcript, audio path) of every clip of a split (the held-out test clips unless
    told: "valid" is for choosing between candidates), corpus by corpus in split order."""
    splits = json.loads((root / "splits.json").read_text(encoding="utf-8"))
    clips = []
    for corpus in CORPORA:
        texts = dict(line.split("|", 2)[0::2] for line in (root / corpus / "metadata.csv").read_text(encoding="utf-8").splitlines() if line.strip())
        clips += [(corpus, clip_id, texts[clip_id], root / corpus / "wavs" / f"{clip_id}.flac") for clip_id in splits[corpus][split]]
    return clips


def praat_pitch(audio: np.ndarray, sample_rate: int, time_step: float) -> tuple[np.ndarray, np.ndarray]:
    """(times in s, F0 in Hz with 0 = unvoiced) of a mono signal, one point per time_step."""
    pitch = parselmouth.Sound(audio.astype(np.float64), sample_rate).to_pitch_ac(time_step=time_step, pitch_floor=F0_FLOOR_HZ, pitch_ceiling=F0_CEILING_HZ)
    return pitch.xs(), pitch.selected_array["frequency"]


def semitones(hz: np.ndarray) -> np.ndarray:
    """Log F0 in semitones re 100 Hz (0 Hz, unvoiced, floored far below any voice)."""
    return 12 * np.log2(np.maximum(hz, 1e-3) / 100)


def write_results(out: Path, result: dict, report: str) -> None:
    """A benchmark's results: `out` with .json (everything) and .md (the report, also printed)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(report, encoding="utf-8")
    print(report)
