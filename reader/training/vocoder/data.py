"""Training data for the vocoder: train-split clips of the configured corpora, random ~1 s segments.

What the vocoder learns to produce (`target`): the recording itself, or the teacher vocoder's rendering
of it (teacher.py: aligned with the recording sample for sample, and a deterministic function of the
mel, so its phase can be regressed). What it hears (`gta_share`): the recording's own log-mel, or, for
that share of segments, the acoustic model's teacher-forced mel of the clip (gta.py), frame for frame,
so it learns to render the model's smoother mels as the recording sounds.

Each clip's log-mel is computed once with reader_runtime.features.log_mel_spectrogram (the exact features the
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
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from reader.paths import cache_dir
from reader.training.acoustic.data import Utterance, read_manifest
from reader_runtime.features import FeatureSettings, log_mel_spectrogram

MEL_CACHE_VERSION = 1
TARGETS = ("recording", "teacher")


@dataclass
class DataConfig:
    corpora: list[str] = field(default_factory=lambda: ["ljspeech_longform", "kathleen_arctic"])
    data_root: str = ""  # empty: reader.paths.data_dir()
    max_utterances_per_corpus: int = 0  # 0: the whole split
    segment_frames: int = 86  # ~1 s at hop 256 / 22,050 Hz
    batch_size: int = 8
    valid_utterances: int = 8  # valid-split clips vocoded whole at each checkpoint to pick the best
    target: str = "recording"  # or "teacher": the teacher vocoder's rendering (teacher.py)
    gta_share: float = 0.0  # share of segments whose input is the acoustic model's teacher-forced mel
    gta_models: str = ""  # models folder whose acoustic model made those mels; empty: the shipped one
    gta_postnet: bool = True  # those mels after the acoustic model's post-net, as the runtime hears them

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"data.target must be one of {TARGETS}, not {self.target!r}")
        if not 0.0 <= self.gta_share <= 1.0:
            raise ValueError(f"data.gta_share must lie in [0, 1], not {self.gta_share}")


@dataclass(frozen=True)
class Clip:
    utterance_id: str
    audio: np.ndarray  # (samples,) float32 in [-1, 1]: what the vocoder should produce (the target)
    log_mel: np.ndarray  # (frames, n_mels) float32, frames = 1 + samples // hop, of the recording
    gta_mel: np.ndarray | None = None  # the acoustic model's teacher-forced mel, same frames


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


def with_training_pairs(clip: Clip, utterance: Utterance, config: DataConfig, gta_folder: Path | None) -> Clip | None:
    """The clip with its configured target audio and teacher-forced mel; None if either is missing
    (load_clips counts those and says so once)."""
    from .gta import gta_path
    from .teacher import read_label

    audio, gta_mel = clip.audio, None
    if config.target == "teacher":
        audio = read_label(utterance)
        if audio is None:  # not labelled (yet): counted by load_clips
            return None
        # The teacher renders floor(n / hop) * hop samples: every whole segment of the sampler fits.
        audio = np.pad(audio, (0, max(0, clip.audio.size - audio.size)))
    if gta_folder is not None:
        path = gta_path(gta_folder, utterance)
        gta_mel = np.load(path) if path.is_file() else None
        if gta_mel is None or gta_mel.shape != clip.log_mel.shape:
            return None
    return Clip(clip.utterance_id, audio, clip.log_mel, gta_mel)


def load_clips(config: DataConfig, split: str, settings: FeatureSettings = FeatureSettings()) -> list[Clip]:
    from reader.paths import models_dir

    from .gta import gta_folder

    utterances = read_manifest(config, split)
    if split == "valid" and config.valid_utterances:
        # An even spread over the corpora rather than the first corpus only.
        utterances = utterances[:: max(1, len(utterances) // config.valid_utterances)][: config.valid_utterances]
    folder = gta_folder(Path(config.gta_models) if config.gta_models else models_dir(), config.gta_postnet) if config.gta_share > 0 else None
    clips, unpaired = [], 0
    for utterance in utterances:
        clip = load_clip(utterance, settings)
        if clip is not None and (config.target != "recording" or folder is not None):
            # Validation always scores against the recording: that is what the vocoder should sound like.
            clip = with_training_pairs(clip, utterance, replace(config, target="recording") if split == "valid" else config, folder)
            unpaired += clip is None
        if clip is not None:
            clips.append(clip)
    if unpaired:
        print(f"{unpaired} of {len(utterances)} {split} clips left out: no teacher label or teacher-forced mel yet "
              "(python -m reader.training.vocoder.teacher / gta)", file=sys.stderr)
    return clips


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

    def positions(self, rng: np.random.Generator) -> Iterator[tuple[Clip, int]]:
        """A batch of (clip, first frame) of random segments (drawn lazily, one at a time)."""
        for index in rng.choice(len(self.clips), size=self.config.batch_size, p=self.probabilities):
            clip = self.clips[index]
            yield clip, int(rng.integers(0, clip.log_mel.shape[0] - self.config.segment_frames))

    def sample(self, rng: np.random.Generator) -> Segments:
        frames, hop = self.config.segment_frames, self.hop
        mels, audios = [], []
        for clip, start in self.positions(rng):
            use_gta = clip.gta_mel is not None and rng.random() < self.config.gta_share
            mels.append((clip.gta_mel if use_gta else clip.log_mel)[start : start + frames])
            audios.append(clip.audio[start * hop : (start + frames) * hop])
        return Segments(torch.from_numpy(np.stack(mels)), torch.from_numpy(np.stack(audios)))
