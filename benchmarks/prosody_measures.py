"""Part 2's measures of benchmarks/prosody_selection.py: an utterance's F0, pauses, rate and WER, and
how a synthesis compares with its recording.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reader.training.pause_labels import (
    energy_track,
    label_audio,
    pitch_semitones,
    transcript_words,
    whisper_words,
)
from reader.training.word_alignment import letters, spoken_whisper_words


CORPUS = "ljspeech_longform"
CONTOUR_POINTS = 100
PAUSE_MS = 100.0


@dataclass(frozen=True)
class F0Track:
    """An utterance's F0 in semitones (re 100 Hz) over its voiced frames, in time order."""

    semitones: np.ndarray

    @classmethod
    def of(cls, semitones: np.ndarray) -> F0Track:
        voiced = semitones[np.isfinite(semitones)]
        return cls(voiced if len(voiced) >= 10 else np.full(10, np.nan))

    @property
    def std(self) -> float:
        return float(np.std(self.semitones))

    @property
    def range(self) -> float:  # 95th - 5th percentile
        return float(np.percentile(self.semitones, 95) - np.percentile(self.semitones, 5))

    @property
    def final_movement(self) -> float:  # median of the last 20 % minus the median of all (a question's rise)
        return float(np.median(self.semitones[int(0.8 * len(self.semitones)) :]) - np.median(self.semitones))

    def contour(self) -> np.ndarray:
        """Resampled to CONTOUR_POINTS: aligns two renditions of a text by relative duration."""
        return np.interp(np.linspace(0, len(self.semitones) - 1, CONTOUR_POINTS), np.arange(len(self.semitones)), self.semitones)


@dataclass(frozen=True)
class VowelF0:
    """F0 per vowel token in semitones (re 100 Hz), with the vowels' symbol ids: two renditions of a
    text are compared vowel by vowel when their vowel sequences are the same."""

    symbol_ids: np.ndarray
    semitones: np.ndarray


@dataclass
class Measure:
    audio_f0: F0Track  # Praat on the audio (what a listener hears; needs a decent vocoder)
    model_f0: F0Track | None  # the acoustic model's own F0 over its vowel frames (synthesis only)
    vowel_f0: VowelF0 | None  # synthesis: the model's; recording: Praat over the runtime aligner's vowels
    words_per_second: float  # over the speech, leading and trailing silence excluded
    pauses_ms: np.ndarray  # at each transcript word gap (Whisper times + silence detector)
    wer: float


def measure(audio: np.ndarray, sample_rate: int, text: str, whisper, model_semitones: np.ndarray | None = None, vowel_f0: VowelF0 | None = None) -> Measure:
    start, end = energy_track(audio, sample_rate).speech_span()
    words, _ = transcript_words(text)
    pauses, wer = np.full(max(len(words) - 1, 0), np.nan), np.nan
    if whisper is not None:
        import ctranslate2
        import jiwer

        ctranslate2.set_random_seed(0)  # Whisper's temperature fallback samples: same audio, same words
        heard = whisper_words(audio, sample_rate, whisper)
        hypothesis = " ".join(filter(None, (letters(w.text) for w in spoken_whisper_words(heard))))
        wer = jiwer.wer(" ".join(filter(None, (letters(w) for w in words))), hypothesis) if hypothesis else 1.0
        if hypothesis:
            pauses = np.array([gap.pause_ms for gap in label_audio("", audio, sample_rate, text, heard).gaps])
    return Measure(
        audio_f0=F0Track.of(pitch_semitones(audio, sample_rate)[1]),
        model_f0=None if model_semitones is None else F0Track.of(model_semitones),
        vowel_f0=vowel_f0,
        words_per_second=len(words) / max(end - start, 1e-3),
        pauses_ms=pauses,
        wer=float(wer),
    )


def compare(synthesis: Measure, recording: Measure) -> dict:
    paused_syn, paused_rec = synthesis.pauses_ms >= PAUSE_MS, recording.pauses_ms >= PAUSE_MS
    row = {}
    for source, track in (("model", synthesis.model_f0), ("audio", synthesis.audio_f0)):
        a, b = track.contour(), recording.audio_f0.contour()
        row |= f0_agreement(source, a, b, track.std, recording.audio_f0.std)
    ours, theirs = synthesis.vowel_f0, recording.vowel_f0
    same_vowels = len(ours.symbol_ids) == len(theirs.symbol_ids) and bool(np.all(ours.symbol_ids == theirs.symbol_ids))
    if same_vowels and len(ours.semitones) > 2 and np.all(np.isfinite(theirs.semitones)):
        row |= f0_agreement("aligned", ours.semitones, theirs.semitones, float(np.std(ours.semitones)), float(np.std(theirs.semitones)))
    else:  # the front end read the transcript differently from the text, or Praat heard no voicing
        row |= {key: np.nan for key in F0_KEYS if key.startswith("aligned_")}
    return row | {
        "pause_true_positives": int((paused_syn & paused_rec).sum()),
        "pause_predicted": int(paused_syn.sum()),
        "pause_actual": int(paused_rec.sum()),
        "pause_length_error_ms": float(np.nanmean(np.abs(synthesis.pauses_ms - recording.pauses_ms))) if len(paused_rec) else np.nan,
        "rate_ratio": synthesis.words_per_second / recording.words_per_second,
        "wer": synthesis.wer,
    }


F0_SOURCES = ("model", "audio", "aligned")
F0_KEYS = [f"{source}_{key}" for source in F0_SOURCES for key in ("f0_std_st", "f0_std_gap_st", "log_f0_rmse_st", "log_f0_correlation")]


def f0_agreement(source: str, synthesis: np.ndarray, recording: np.ndarray, synthesis_std: float, recording_std: float) -> dict:
    """Two F0 sequences of equal length (semitones) compared point by point."""
    return {
        f"{source}_f0_std_st": synthesis_std,
        f"{source}_f0_std_gap_st": abs(synthesis_std - recording_std),
        f"{source}_log_f0_rmse_st": float(np.sqrt(np.mean((synthesis - recording) ** 2))),
        f"{source}_log_f0_correlation": float(np.corrcoef(synthesis, recording)[0, 1]),
    }


def summarise_long_form(per_clip: list[dict]) -> dict:
    def mean(key: str) -> float:
        return round(float(np.nanmean([c[key] for c in per_clip])), 4)

    tp, predicted, actual = (sum(c[k] for c in per_clip) for k in ("pause_true_positives", "pause_predicted", "pause_actual"))
    return {
        **{key: mean(key) for key in (*F0_KEYS, "pause_length_error_ms", "wer", "rate_ratio")},
        "pause_f1": round(2 * tp / max(predicted + actual, 1), 4),
        "aligned_clips": int(np.isfinite([c["aligned_log_f0_rmse_st"] for c in per_clip]).sum()),
    }
