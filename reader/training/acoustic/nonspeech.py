"""Non-speech audio generated with numpy, for teaching the phone recogniser that it holds no phones.

Training on these clips with an empty CTC target (every frame blank) makes the recogniser sure that
noise holds no phones, so forcing a transcript's phones through it costs much (runtime/phone_check.py).
TRAIN_KINDS: noises, hum, tones, synthetic music, clicks, near-silence, sweeps and sirens;
DEV_ONLY_KINDS (mixtures, bells, bursts) are never trained on. Each clip goes through the runtime's
log-mel as speech does. The kinds in detail: docs/training.md#non-speech-clips.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from reader_runtime.features import FeatureSettings, log_mel_spectrogram

TRAIN_KINDS = ("white", "pink", "brown", "hum", "tone", "harmonic", "music", "clicks", "room", "sweep")
# the development set's kinds, in the order its clips are drawn (new kinds only ever appended, so that
# the clips of the others stay the same); those not in TRAIN_KINDS are never trained on
DEV_KINDS = ("white", "pink", "brown", "hum", "tone", "harmonic", "music", "clicks", "room", "sweep", "mixture", "bells", "bursts")
DEV_ONLY_KINDS = tuple(kind for kind in DEV_KINDS if kind not in TRAIN_KINDS)
MIXED_KINDS = ("white", "pink", "brown", "hum", "tone", "harmonic", "music", "clicks")  # what "mixture" mixes, two at a time
# the development set's seed; training draws from its own generator (the run's seed and epoch)
DEV_SEED = 20_261_202


def _rms_normalised(audio: np.ndarray, level_db: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(audio**2))) or 1.0
    scaled = audio * (10 ** (level_db / 20) / rms)
    peak = float(np.max(np.abs(scaled)))
    return scaled / peak * 0.99 if peak > 0.99 else scaled  # no clipping


def coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown), by shaping white noise's spectrum."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequency = np.arange(spectrum.size, dtype=np.float64)
    frequency[0] = 1.0
    noise = np.fft.irfft(spectrum / frequency ** (exponent / 2), n)
    return noise / (np.std(noise) or 1.0)


def _slow_modulation(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """A level that drifts by up to about +-6 dB a few times a second."""
    t = np.arange(n) / rate
    wobble = sum(rng.uniform(0, 3) * np.sin(2 * np.pi * rng.uniform(0.1, 4) * t + rng.uniform(0, 2 * np.pi)) for _ in range(2))
    return 10 ** (wobble / 20)


def _harmonic_tone(rng: np.random.Generator, f0: np.ndarray | float, n: int, rate: int, harmonics: int, rolloff: float) -> np.ndarray:
    """A sum of harmonics of f0 (a constant or one value per sample) below the Nyquist frequency."""
    phase = 2 * np.pi * np.cumsum(np.broadcast_to(np.asarray(f0, np.float64), (n,))) / rate
    top = float(np.max(f0))
    tone = np.zeros(n)
    for k in range(1, harmonics + 1):
        if k * top >= rate / 2 - 200:
            break
        tone += np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k**rolloff
    return tone


def _music(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Notes and chords of harmonic tones with envelopes, at a steady tempo, sometimes with percussion."""
    audio = np.zeros(n)
    beat = rng.uniform(0.15, 0.8)  # seconds
    root = rng.integers(40, 70)  # MIDI note of the key
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])
    plucked = rng.random() < 0.5  # piano/guitar-like decay, else organ/strings-like sustain
    harmonics, rolloff = int(rng.integers(3, 16)), rng.uniform(0.7, 2.0)
    start = 0
    while start < n:
        length = int(beat * rate * rng.choice([1, 1, 2, 0.5]))
        notes = root + rng.choice(scale, size=int(rng.integers(1, 4)), replace=False)
        t = np.arange(min(length + int(0.3 * rate), n - start)) / rate
        attack = rng.uniform(0.003, 0.05)
        envelope = np.minimum(1.0, t / attack)
        envelope *= np.exp(-t / rng.uniform(0.15, 0.8)) if plucked else np.where(t < length / rate, 1.0, np.exp(-(t - length / rate) / 0.05))
        for note in notes:
            f0 = 440.0 * 2 ** ((note - 69) / 12) * (1 + 0.004 * np.sin(2 * np.pi * 5.5 * t) * (not plucked))
            audio[start : start + t.size] += envelope * _harmonic_tone(rng, f0, t.size, rate, harmonics, rolloff)
        start += length
    if rng.random() < 0.4:  # percussion: decaying noise bursts on the beats
        hit = coloured_noise(rng, int(0.15 * rate), rng.uniform(0, 1.5)) * np.exp(-np.arange(int(0.15 * rate)) / (0.03 * rate))
        for onset in range(0, n, int(beat * rate)):
            audio[onset : onset + hit.size] += 2 * hit[: n - onset]
    return audio


def _clicks(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    audio = 0.01 * coloured_noise(rng, n, 1.0)
    for onset in rng.integers(0, n, int(rng.integers(1, 20) * n / rate) + 1):
        length = int(rng.integers(20, int(0.02 * rate)))
        click = rng.standard_normal(length) * np.exp(-np.arange(length) / max(1.0, length / 5)) * rng.uniform(0.2, 1)
        audio[onset : onset + length] += click[: n - onset]
    return audio


def _hum(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    mains = rng.choice([50.0, 60.0]) * rng.uniform(0.995, 1.005)
    return _harmonic_tone(rng, mains, n, rate, int(rng.integers(1, 12)), rng.uniform(0.3, 1.5)) + rng.uniform(0, 0.3) * coloured_noise(rng, n, 1.0)


def _bells(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Struck bells or bars: inharmonic partials decaying at their own rates, struck at random times."""
    audio = np.zeros(n)
    ratios = np.sort(np.concatenate([[1.0], rng.uniform(1.2, 9.0, int(rng.integers(3, 8)))]))
    for onset in np.sort(rng.integers(0, n, int(rng.integers(1, 3 + 2 * n // rate)))):
        t = np.arange(n - onset) / rate
        f0 = np.exp(rng.uniform(np.log(150), np.log(1500)))
        for ratio in ratios[ratios * f0 < rate / 2 - 200]:
            audio[onset:] += np.sin(2 * np.pi * ratio * f0 * t) * np.exp(-t * ratio / rng.uniform(0.3, 3.0)) / ratio**0.5
    return audio


def _bursts(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Rain, typing or applause: short bursts of coloured noise at random times over a faint floor."""
    audio = 0.02 * coloured_noise(rng, n, 1.0)
    for onset in rng.integers(0, n, int(rng.uniform(2, 25) * n / rate) + 1):
        length = int(rng.uniform(0.005, 0.12) * rate)
        burst = coloured_noise(rng, length, rng.uniform(-0.5, 1.5)) * np.exp(-np.arange(length) / (length / 4)) * rng.uniform(0.2, 1)
        audio[onset : onset + length] += burst[: n - onset]
    return audio


def synthesize(kind: str, rng: np.random.Generator, seconds: float, sample_rate: int = 22050) -> np.ndarray:
    """`seconds` of one kind of non-speech at sample_rate (float32, RMS between about -75 and -6 dBFS)."""
    n = max(1, int(seconds * sample_rate))
    rate = sample_rate
    level = rng.uniform(-50, -6)
    if kind in ("white", "pink", "brown"):
        audio = coloured_noise(rng, n, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind] + rng.uniform(-0.2, 0.2))
        if rng.random() < 0.5:
            audio *= _slow_modulation(rng, n, rate)
    elif kind == "hum":
        audio = _hum(rng, n, rate)
    elif kind == "tone":
        t = np.arange(n) / rate
        audio = np.sin(2 * np.pi * np.exp(rng.uniform(np.log(80), np.log(6000))) * t) * (_slow_modulation(rng, n, rate) if rng.random() < 0.3 else 1)
    elif kind == "harmonic":
        t = np.arange(n) / rate
        f0 = np.exp(rng.uniform(np.log(70), np.log(800))) * (1 + rng.uniform(0, 0.01) * np.sin(2 * np.pi * rng.uniform(3, 7) * t))
        audio = _harmonic_tone(rng, f0, n, rate, int(rng.integers(2, 30)), rng.uniform(0.5, 2.0))
    elif kind == "music":
        audio = _music(rng, n, rate)
    elif kind == "clicks":
        audio = _clicks(rng, n, rate)
    elif kind == "room":
        audio = coloured_noise(rng, n, rng.uniform(1.0, 2.2))
        if rng.random() < 0.3:
            audio += rng.uniform(0.05, 0.5) * _hum(rng, n, rate)
        level = rng.uniform(-75, -50)
    elif kind == "sweep":
        t = np.arange(n) / rate
        low, high = np.exp(rng.uniform(np.log(60), np.log(500))), np.exp(rng.uniform(np.log(1000), np.log(8000)))
        frequency = low * (high / low) ** ((t / max(t[-1], 1e-9)) if rng.random() < 0.5 else (0.5 - 0.5 * np.cos(2 * np.pi * t / rng.uniform(0.5, 3))))
        audio = np.sin(2 * np.pi * np.cumsum(frequency) / rate)
    elif kind == "bells":
        audio = _bells(rng, n, rate)
    elif kind == "bursts":
        audio = _bursts(rng, n, rate)
    elif kind == "mixture":
        first, second = rng.choice(MIXED_KINDS, size=2, replace=False)
        audio = synthesize(str(first), rng, seconds, rate) + synthesize(str(second), rng, seconds, rate) * 10 ** (rng.uniform(-20, 0) / 20)
    else:
        raise ValueError(f"unknown non-speech kind {kind!r}")
    return _rms_normalised(np.asarray(audio, np.float64)[:n], level).astype(np.float32)


def nonspeech_log_mel(kind: str, rng: np.random.Generator, seconds: float, settings: FeatureSettings = FeatureSettings()) -> np.ndarray:
    """(frames, n_mels) runtime log-mel of generated non-speech; a third of the clips are made at 16 kHz
    and resampled to the model rate with soxr, as reader.transfer_source.load_source reads a 16-kHz recording."""
    if rng.random() < 1 / 3 and settings.sample_rate != 16000:
        import soxr

        audio = soxr.resample(synthesize(kind, rng, seconds, 16000), 16000, settings.sample_rate).astype(np.float32)
        n = max(1, int(seconds * settings.sample_rate))
        audio = np.pad(audio[:n], (0, max(0, n - audio.size)))  # as many samples as made at the model rate
    else:
        audio = synthesize(kind, rng, seconds, settings.sample_rate)
    return log_mel_spectrogram(audio, settings).astype(np.float32)


@dataclass(frozen=True)
class NonSpeech:
    kind: str
    seconds: float
    log_mel: np.ndarray


def development_set(settings: FeatureSettings = FeatureSettings(), per_kind: int = 2, lengths: tuple[float, ...] = (1.5, 3.0, 6.0, 10.0)) -> Iterator[NonSpeech]:
    """The fixed development set: `per_kind` clips of every kind of DEV_KINDS (those never trained on too)
    at each length, from DEV_SEED (the same clips on every call)."""
    rng = np.random.default_rng(DEV_SEED)
    for kind in DEV_KINDS:
        for seconds in lengths:
            for _ in range(per_kind):
                yield NonSpeech(kind, seconds, nonspeech_log_mel(kind, rng, seconds, settings))
