"""Acoustic features in numpy: log-mel spectrogram, frame energy, F0 resampled onto the frame grid.

Numpy only, because the runtime computes the same mel from a reference recording for prosody
transfer as training computed from the corpora. F0 extraction itself needs a pitch tracker (Praat
through parselmouth), which lives in training code; `f0_on_frame_grid` is the shared piece that puts
any tracker's output onto this module's frame grid.

Conventions (those of librosa / HiFi-GAN style vocoders):
- STFT with a periodic Hann window, frames centred on t = i * hop (signal reflect-padded by n_fft // 2),
  so a clip of n samples has 1 + n // hop frames.
- Mel scale and filter normalisation are Slaney's (librosa `htk=False, norm='slaney'`): linear below
  1 kHz, logarithmic above, each triangle scaled to unit area so bands of different widths compare.
- log-mel is the natural log of the magnitude (not power) mel spectrogram, floored at 1e-5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG_FLOOR = 1e-5


@dataclass(frozen=True)
class FeatureSettings:
    """How audio becomes frames; stored in each exported model's manifest."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def n_frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop_length


# Slaney mel scale: linear (200/3 Hz per mel) below 1 kHz, log above with 27 mels per octave-ish step.
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    logarithmic = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, logarithmic, linear)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * _F_SP
    logarithmic = _MIN_LOG_HZ * np.exp(_LOG_STEP * (mel - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, logarithmic, linear)


def mel_filterbank(settings: FeatureSettings = FeatureSettings()) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) Slaney-normalised triangular filters, as librosa.filters.mel computes them."""
    fft_hz = np.linspace(0.0, settings.sample_rate / 2, settings.n_fft // 2 + 1)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(settings.f_min), hz_to_mel(settings.f_max), settings.n_mels + 2))
    widths = np.diff(edges_hz)
    offsets = edges_hz[:, None] - fft_hz[None, :]
    rising = -offsets[:-2] / widths[:-1, None]
    falling = offsets[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights.astype(np.float32)


def _hann_window(settings: FeatureSettings) -> np.ndarray:
    """Periodic Hann window of win_length, zero-padded to n_fft and centred (as torch/librosa do)."""
    n = np.arange(settings.win_length)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / settings.win_length)
    left = (settings.n_fft - settings.win_length) // 2
    return np.pad(window, (left, settings.n_fft - settings.win_length - left))


def stft(audio: np.ndarray, settings: FeatureSettings = FeatureSettings()) -> np.ndarray:
    """(frames, n_fft // 2 + 1) complex STFT of a mono float signal, frame i centred on sample i * hop."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {audio.shape}")
    pad = settings.n_fft // 2
    # Reflect padding needs more than `pad` samples; pad very short clips with zeros instead.
    padded = np.pad(audio, pad, mode="reflect" if audio.size > pad else "constant")
    n_frames = settings.n_frames(audio.size)
    frames = np.lib.stride_tricks.sliding_window_view(padded, settings.n_fft)[:: settings.hop_length][:n_frames]
    return np.fft.rfft(frames * _hann_window(settings), axis=-1)


def magnitude_spectrogram(audio: np.ndarray, settings: FeatureSettings = FeatureSettings()) -> np.ndarray:
    """(frames, n_fft // 2 + 1) STFT magnitudes of a mono float signal."""
    return np.abs(stft(audio, settings)).astype(np.float32)


def log_mel_from_magnitudes(magnitudes: np.ndarray, settings: FeatureSettings = FeatureSettings()) -> np.ndarray:
    return np.log(np.maximum(magnitudes @ mel_filterbank(settings).T, LOG_FLOOR)).astype(np.float32)


def log_mel_spectrogram(audio: np.ndarray, settings: FeatureSettings = FeatureSettings()) -> np.ndarray:
    """(frames, n_mels) natural-log mel magnitudes of a mono signal at settings.sample_rate."""
    return log_mel_from_magnitudes(magnitude_spectrogram(audio, settings), settings)


def log_energy_from_magnitudes(magnitudes: np.ndarray) -> np.ndarray:
    """(frames,) log of each frame's spectral L2 norm (FastSpeech 2's energy, in log so it is scale-free)."""
    return np.log(np.maximum(np.linalg.norm(magnitudes, axis=-1), LOG_FLOOR)).astype(np.float32)


def frame_log_energy(audio: np.ndarray, settings: FeatureSettings = FeatureSettings()) -> np.ndarray:
    return log_energy_from_magnitudes(magnitude_spectrogram(audio, settings))


def f0_on_frame_grid(
    track_times: np.ndarray, track_f0: np.ndarray, n_frames: int, settings: FeatureSettings = FeatureSettings()
) -> np.ndarray:
    """(n_frames,) F0 in Hz at the frame centres t = i * hop / sr, 0 where unvoiced.

    `track_times`/`track_f0` are a pitch tracker's output (seconds, Hz, 0 = unvoiced). Voicing is taken
    from the nearest track point (interpolating a 0/1 decision would blur voicing edges); voiced values
    are interpolated linearly between voiced track points.
    """
    track_times = np.asarray(track_times, dtype=np.float64)
    track_f0 = np.asarray(track_f0, dtype=np.float64)
    frame_times = np.arange(n_frames) / settings.frame_rate
    if track_times.size == 0 or not np.any(track_f0 > 0):
        return np.zeros(n_frames, dtype=np.float32)
    nearest = np.clip(np.searchsorted(track_times, frame_times), 1, max(track_times.size - 1, 1))
    if track_times.size > 1:
        take_left = np.abs(frame_times - track_times[nearest - 1]) <= np.abs(track_times[nearest] - frame_times)
        nearest = np.where(take_left, nearest - 1, nearest)
    else:
        nearest = np.zeros_like(nearest)
    voiced = track_f0[nearest] > 0
    is_voiced_point = track_f0 > 0
    values = np.interp(frame_times, track_times[is_voiced_point], track_f0[is_voiced_point])
    return np.where(voiced, values, 0.0).astype(np.float32)


def continuous_log_f0(frame_f0: np.ndarray) -> np.ndarray:
    """log F0 with unvoiced frames filled by linear interpolation (ends held), so every frame has a pitch."""
    frame_f0 = np.asarray(frame_f0, dtype=np.float64)
    voiced = frame_f0 > 0
    if not voiced.any():
        return np.zeros_like(frame_f0, dtype=np.float32)
    index = np.arange(frame_f0.size)
    return np.interp(index, index[voiced], np.log(frame_f0[voiced])).astype(np.float32)
