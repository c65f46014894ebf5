"""runtime/features.py: mel filterbank, log-mel, energy and F0 grid on synthetic signals and a real clip."""

from __future__ import annotations

import numpy as np
import pytest

from reader.paths import data_dir
from reader_runtime.features import (
    LOG_FLOOR,
    FeatureSettings,
    continuous_log_f0,
    f0_on_frame_grid,
    frame_log_energy,
    hz_to_mel,
    log_mel_spectrogram,
    mel_filterbank,
    mel_to_hz,
)

SETTINGS = FeatureSettings()
REAL_CLIP = data_dir() / "kathleen_arctic" / "wavs" / "arctic_a0001.flac"


def sine(frequency: float, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SETTINGS.sample_rate)) / SETTINGS.sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_slaney_mel_scale_is_linear_below_1khz_and_invertible():
    assert hz_to_mel(1000.0) == pytest.approx(15.0)
    assert hz_to_mel(500.0) == pytest.approx(7.5)
    hz = np.array([0.0, 60.0, 999.0, 1000.0, 4000.0, 8000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz)), hz, atol=1e-6)


def test_filterbank_shape_peaks_and_unit_area():
    bank = mel_filterbank(SETTINGS)
    assert bank.shape == (80, 513)
    assert (bank >= 0).all() and (bank.sum(axis=1) > 0).all()
    peaks = bank.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all()
    # Slaney normalisation: each triangle has unit area in Hz (checked where filters span many bins).
    bin_hz = SETTINGS.sample_rate / SETTINGS.n_fft
    np.testing.assert_allclose(bank[40:].sum(axis=1) * bin_hz, 1.0, rtol=0.05)
    assert bank[:, np.fft.rfftfreq(SETTINGS.n_fft, 1 / SETTINGS.sample_rate) > SETTINGS.f_max].max() == 0


def test_sine_lights_the_mel_band_of_its_frequency():
    mel = log_mel_spectrogram(sine(1000.0), SETTINGS)
    assert mel.shape == (1 + SETTINGS.sample_rate // SETTINGS.hop_length, 80)
    assert mel.dtype == np.float32
    centres = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(8000.0), 82))[1:-1]
    loudest_band = int(np.median(mel[5:-5].argmax(axis=1)))
    assert abs(centres[loudest_band] - 1000.0) <= np.diff(centres)[loudest_band]
    energy = frame_log_energy(sine(1000.0), SETTINGS)
    assert energy.shape == (mel.shape[0],)
    assert np.ptp(energy[5:-5]) < 1e-3  # a steady tone has steady energy
    # Parseval over the half spectrum: |X|^2 = n_fft / 2 * sum((x w)^2) = 512 * A^2 / 2 * sum(hann^2 = 3/8 * 1024).
    assert np.exp(energy[40]) == pytest.approx(np.sqrt(512 * 0.5**2 / 2 * 384), rel=0.01)


def test_silence_sits_at_the_log_floor():
    mel = log_mel_spectrogram(np.zeros(4096, dtype=np.float32), SETTINGS)
    assert mel.shape == (17, 80)
    np.testing.assert_allclose(mel, np.log(LOG_FLOOR))


def test_f0_track_is_put_on_the_frame_grid_with_voicing_from_the_nearest_point():
    times = np.array([0.00, 0.05, 0.10, 0.15, 0.20])
    f0 = np.array([0.0, 100.0, 200.0, 0.0, 0.0])
    grid = f0_on_frame_grid(times, f0, n_frames=20, settings=SETTINGS)
    frame_times = np.arange(20) / SETTINGS.frame_rate
    assert (grid[frame_times < 0.02] == 0).all()
    middle = (frame_times > 0.05) & (frame_times < 0.10)
    np.testing.assert_allclose(grid[middle], 100.0 + 2000.0 * (frame_times[middle] - 0.05), rtol=1e-5)
    assert (grid[frame_times > 0.13] == 0).all()
    filled = continuous_log_f0(grid)
    assert np.all(np.isfinite(filled)) and filled[0] == pytest.approx(np.log(100.0))


@pytest.mark.skipif(not REAL_CLIP.is_file(), reason="speech data not available")
def test_real_clip_features():
    import soundfile as sf

    from reader.training.acoustic.data import extract_features

    audio, sample_rate = sf.read(str(REAL_CLIP), dtype="float32")
    features = extract_features(audio, sample_rate, SETTINGS)
    frames = SETTINGS.n_frames(audio.size)
    assert features.log_mel.shape == (frames, 80)
    assert features.f0_hz.shape == features.log_energy.shape == (frames,)
    assert np.isfinite(features.log_mel).all()
    assert np.log(LOG_FLOOR) <= features.log_mel.min() and features.log_mel.max() < 5.0
    voiced = features.f0_hz[features.f0_hz > 0]
    assert 0.25 < voiced.size / frames < 0.9  # speech with pauses
    assert 120.0 < np.median(voiced) < 300.0  # an adult female voice
    # Speech is louder than the leading silence of the untrimmed clip.
    assert features.log_energy.max() - features.log_energy[:5].mean() > 3.0
