"""The prosody transfer's source recording: loaded and checked, cut to its speech, and its F0 on the
model's frame grid (Praat in two passes). The evidence for each constant: docs/transfer.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .errors import ReaderError

# Longer sources are refused: one alignment is quadratic in memory (frames x tokens).
MAX_SOURCE_SECONDS = 30.0
# Peak below this (-50 dBFS) is silence or room noise, not speech to take prosody from.
SILENT_PEAK = 10 ** (-50 / 20)
# The source is cut to the recogniser's first and last phone, with these margins: the aligner never
# learned long lead-ins (docs/transfer.md#speech-cut).
SPEECH_LEAD_SECONDS = 0.05
SPEECH_TAIL_SECONDS = 0.2
# Source F0: a wide first Praat pass, then a second within 0.75 x Q1 .. 1.5 x Q3 of the first (Hirst 2011).
F0_WIDE_FLOOR_HZ = 50.0
F0_WIDE_CEILING_HZ = 700.0
F0_FLOOR_FROM_Q1 = 0.75
F0_CEILING_FROM_Q3 = 1.5
# A voiced frame this many octaves from the median of its neighbours (13 frames either side, 0.15 s)
# is an octave error: moved one octave towards that median.
OCTAVE_JUMP = 0.7
OCTAVE_NEIGHBOURHOOD_FRAMES = 13
# Speech keeps energy above 4 kHz (20-40 dB under the band below); telephone audio is 80-90 dB under:
# such a source is transferred with a warning.
UPPER_BAND_HZ = 4000.0
NARROW_BAND_DB = -55.0


@dataclass(frozen=True)
class SourceRecording:
    samples: np.ndarray  # float32 mono at `sample_rate` (the model's)
    sample_rate: int
    name: str  # the file, for messages
    original_sample_rate: int


def load_source(path: str | Path, sample_rate: int) -> SourceRecording:
    """Read and check a source recording: audio, not silent, at most MAX_SOURCE_SECONDS; mono (channels
    averaged) and resampled to `sample_rate` (soxr)."""
    import soundfile
    import soxr

    path = Path(path)
    if path.is_dir():
        raise ReaderError(f"{path} is a folder, not a recording")
    if not path.is_file():
        raise ReaderError(f"source recording not found: {path}")
    try:
        audio, original_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception:  # soundfile raises LibsndfileError / RuntimeError / TypeError for non-audio
        raise ReaderError(f"{path} is not an audio file that can be read (use WAV, FLAC or OGG)") from None
    audio = audio.mean(axis=1)
    if audio.size == 0:
        raise ReaderError(f"{path} holds no audio")
    seconds = audio.size / original_rate
    if seconds > MAX_SOURCE_SECONDS:
        raise ReaderError(f"{path} is {seconds:.1f} s long; transfer takes at most {MAX_SOURCE_SECONDS:.0f} s: split it into sentences")
    if not np.all(np.isfinite(audio)) or np.max(np.abs(audio)) < SILENT_PEAK:
        raise ReaderError(f"{path} is silent (no sound above -50 dBFS)")
    if original_rate != sample_rate:
        audio = soxr.resample(audio, original_rate, sample_rate).astype(np.float32)
    return SourceRecording(audio, sample_rate, str(path), int(original_rate))


def speech_only(recording: SourceRecording, frames: tuple[int, int], hop_length: int) -> SourceRecording:
    """The recording from SPEECH_LEAD_SECONDS before log-mel frame frames[0] to SPEECH_TAIL_SECONDS
    after frame frames[1] (frame i centred on sample i * hop_length)."""
    rate = recording.sample_rate
    start = max(0, frames[0] * hop_length - round(SPEECH_LEAD_SECONDS * rate))
    end = min(recording.samples.size, frames[1] * hop_length + round(SPEECH_TAIL_SECONDS * rate))
    return replace(recording, samples=recording.samples[start:end])


def upper_band_db(samples: np.ndarray, sample_rate: int, n_fft: int = 1024) -> float:
    """Power at UPPER_BAND_HZ-8 kHz relative to 0-UPPER_BAND_HZ (dB), over the frames within 30 dB of the loudest."""
    if samples.size < n_fft:
        samples = np.pad(samples, (0, n_fft - samples.size))
    frames = np.lib.stride_tricks.sliding_window_view(samples, n_fft)[:: n_fft // 2] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    energy = power.sum(1)
    loud = power[energy >= energy.max() * 1e-3]
    frequencies = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    upper = loud[:, (frequencies >= UPPER_BAND_HZ) & (frequencies < 8000.0)].sum()
    lower = loud[:, frequencies < UPPER_BAND_HZ].sum()
    return float(10 * np.log10(max(upper, 1e-20) / max(lower, 1e-20)))


def source_doubts(recording: SourceRecording) -> tuple[str, ...]:
    """What makes a source doubtful though it can be transferred (said as warnings)."""
    if recording.original_sample_rate <= 2 * UPPER_BAND_HZ or upper_band_db(recording.samples, recording.sample_rate) < NARROW_BAND_DB:
        return (f"{recording.name} has no sound above {UPPER_BAND_HZ / 1000:.0f} kHz (telephone-band audio, or not speech), and the models learned from full-band speech",)
    return ()


def praat_f0(samples: np.ndarray, sample_rate: int, frame_rate: float, floor_hz: float, ceiling_hz: float):
    """Praat's autocorrelation pitch: (times in s, F0 in Hz with 0 where unvoiced)."""
    import parselmouth

    pitch = parselmouth.Sound(np.asarray(samples, np.float64), sample_rate).to_pitch_ac(
        time_step=1.0 / frame_rate, pitch_floor=floor_hz, pitch_ceiling=ceiling_hz
    )
    return pitch.xs(), pitch.selected_array["frequency"]


def speaker_pitch_range(f0_hz: np.ndarray) -> tuple[float, float]:
    """(floor, ceiling) Hz for the second pass, from the first pass's voiced quartiles."""
    q1, q3 = np.percentile(f0_hz[f0_hz > 0], [25, 75])
    return max(F0_WIDE_FLOOR_HZ, F0_FLOOR_FROM_Q1 * q1), min(F0_WIDE_CEILING_HZ, F0_CEILING_FROM_Q3 * q3)


def without_octave_jumps(f0_hz: np.ndarray) -> np.ndarray:
    """Voiced frames more than OCTAVE_JUMP octaves from the median of the voiced frames around them
    moved one octave towards it (0 = unvoiced, kept)."""
    voiced = np.flatnonzero(f0_hz > 0)
    octaves = np.log2(f0_hz[voiced])
    corrected = f0_hz.copy()
    half = OCTAVE_NEIGHBOURHOOD_FRAMES
    for k, frame in enumerate(voiced):
        # the voiced frames within `half` frames of this one, in time (not in index: pauses separate)
        near = octaves[np.searchsorted(voiced, frame - half) : np.searchsorted(voiced, frame + half, side="right")]
        offset = octaves[k] - np.median(near)
        if abs(offset) > OCTAVE_JUMP:
            corrected[frame] = f0_hz[frame] * 2.0 ** (-np.sign(offset))
    return corrected


def frame_f0(samples: np.ndarray, sample_rate: int, hop_length: int, n_frames: int) -> np.ndarray:
    """(n_frames,) F0 in Hz on the model's frame grid (reader_runtime.features), 0 where unvoiced: Praat in
    two passes, the second within the speaker's own range, then octave jumps corrected."""
    from reader_runtime.features import FeatureSettings, f0_on_frame_grid

    settings = FeatureSettings(sample_rate=sample_rate, hop_length=hop_length)
    times, f0 = praat_f0(samples, sample_rate, settings.frame_rate, F0_WIDE_FLOOR_HZ, F0_WIDE_CEILING_HZ)
    if np.count_nonzero(f0) >= 4:  # enough voicing to estimate a range from
        times, f0 = praat_f0(samples, sample_rate, settings.frame_rate, *speaker_pitch_range(f0))
    return without_octave_jumps(f0_on_frame_grid(times, f0, n_frames, settings))


def source_token_log_f0(recording: SourceRecording, durations: np.ndarray, hop_length: int) -> np.ndarray:
    """(tokens,) mean log F0 (Hz) over each token's frames, unvoiced frames interpolated (as the
    model's pitch targets are built); all NaN if Praat finds no voicing in the clip."""
    return token_mean_log_f0(frame_f0(recording.samples, recording.sample_rate, hop_length, int(durations.sum())), durations)


def token_mean_log_f0(f0: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """(tokens,) mean log F0 over each token's frames of a (frames,) Hz track (0 = unvoiced, which is
    interpolated); all NaN when no frame is voiced."""
    from reader_runtime.features import continuous_log_f0

    if not np.any(f0 > 0):
        return np.full(durations.size, np.nan, np.float32)
    token_of_frame = np.repeat(np.arange(durations.size), durations)
    return (np.bincount(token_of_frame, continuous_log_f0(f0), minlength=durations.size) / np.maximum(durations, 1)).astype(np.float32)
