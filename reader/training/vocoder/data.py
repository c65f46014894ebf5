"""Training data for the vocoder: train-split clips of the configured corpora, random ~1 s segments.

Each clip's log-mel is computed once with runtime.features.log_mel_spectrogram (the exact features the
acoustic model predicts and the runtime feeds the vocoder) and cached under cache_dir()/vocoder/mels/,
outside git. Audio and mels are then held in memory (~0.6 GB for both corpora). A segment is a run of
whole mel frames plus the audio they cover: frames [k, k + F) -> samples [k * hop, (k + F) * hop),
the same frame/sample correspondence as the runtime's inverse STFT. Missing or unreadable audio is
reported on stderr and skipped. The test split is never read here (read_manifest refuses it).
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field

import numpy as np
import soundfile as sf
import torch

from reader.paths import cache_dir
from reader.training.acoustic.data import Utterance, read_manifest
from runtime.features import FeatureSettings, log_mel_spectrogram

MEL_CACHE_VERSION = 1


@dataclass
class DataConfig:
    corpora: list[str] = field(default_factory=lambda: ["ljspeech_longform", "kathleen_arctic"])
    data_root: str = ""  # empty: reader.paths.data_dir()
    max_utterances_per_corpus: int = 0  # 0: the whole split
    segment_frames: int = 86  # ~1 s at hop 256 / 22,050 Hz
    batch_size: int = 8
    valid_utterances: int = 8  # valid-split clips vocoded whole at each checkpoint to pick the best


@dataclass(frozen=True)
class Clip:
    utterance_id: str
    audio: np.ndarray  # (samples,) float32 in [-1, 1]
    log_mel: np.ndarray  # (frames, n_mels) float32, frames = 1 + samples // hop


@dataclass
class Segments:
    log_mel: torch.Tensor  # (B, F, n_mels)
    audio: torch.Tensor  # (B, F * hop)


def _mel_cache_dir(settings: FeatureSettings):
    key = hashlib.sha1(json.dumps({**asdict(settings), "v": MEL_CACHE_VERSION}, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / "vocoder" / "mels" / key


def load_clip(utterance: Utterance, settings: FeatureSettings = FeatureSettings()) -> Clip | None:
    """Audio and log-mel of one clip, or None (with a message) if its audio is missing or unusable."""
    try:
        audio, sample_rate = sf.read(utterance.audio_path, dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError or OSError
        print(f"skipping {utterance.audio_path}: unreadable audio ({exc})", file=sys.stderr)
        return None
    if sample_rate != settings.sample_rate or audio.shape[0] == 0:
        print(f"skipping {utterance.audio_path}: {sample_rate} Hz, {audio.shape[0]} samples (need {settings.sample_rate} Hz)", file=sys.stderr)
        return None
    audio = audio.mean(axis=1)
    cached = _mel_cache_dir(settings) / utterance.corpus / f"{utterance.utterance_id}.npy"
    log_mel = np.load(cached) if cached.is_file() else None
    if log_mel is None or log_mel.shape[0] != settings.n_frames(audio.size):
        log_mel = log_mel_spectrogram(audio, settings)
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial.npy")
        np.save(partial, log_mel)
        partial.replace(cached)
    return Clip(utterance.utterance_id, audio, log_mel)


def load_clips(config: DataConfig, split: str, settings: FeatureSettings = FeatureSettings()) -> list[Clip]:
    utterances = read_manifest(config, split)
    if split == "valid" and config.valid_utterances:
        # An even spread over the corpora rather than the first corpus only.
        utterances = utterances[:: max(1, len(utterances) // config.valid_utterances)][: config.valid_utterances]
    return [clip for clip in (load_clip(u, settings) for u in utterances) if clip is not None]


class SegmentSampler:
    """Random segments, clips drawn in proportion to their length so every second is equally likely."""

    def __init__(self, clips: list[Clip], config: DataConfig, settings: FeatureSettings = FeatureSettings()):
        # A segment needs F frames whose samples [k*hop, (k+F)*hop) lie inside the clip.
        self.clips = [c for c in clips if c.log_mel.shape[0] - 1 >= config.segment_frames]
        if not self.clips:
            raise ValueError(f"no clip is longer than {config.segment_frames} frames")
        lengths = np.array([c.log_mel.shape[0] - config.segment_frames for c in self.clips], dtype=np.float64)
        self.probabilities = lengths / lengths.sum()
        self.config = config
        self.hop = settings.hop_length

    def sample(self, rng: np.random.Generator) -> Segments:
        frames, hop = self.config.segment_frames, self.hop
        mels, audios = [], []
        for index in rng.choice(len(self.clips), size=self.config.batch_size, p=self.probabilities):
            clip = self.clips[index]
            start = int(rng.integers(0, clip.log_mel.shape[0] - frames))
            mels.append(clip.log_mel[start : start + frames])
            audios.append(clip.audio[start * hop : (start + frames) * hop])
        return Segments(torch.from_numpy(np.stack(mels)), torch.from_numpy(np.stack(audios)))
