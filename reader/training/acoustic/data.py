"""Training data for the acoustic model: manifest, cached features, examples and length-bucketed batches.

Features (log-mel, F0, log energy at 22,050 Hz, hop 256) are computed once per clip and cached under
cache_dir()/acoustic_features/<settings key>/, outside git. A missing or unreadable audio file is
reported on stderr and the clip skipped. Only the splits named in the config are read; the test split
is never loaded here.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from reader.errors import ReaderError
from reader.model_inputs import ModelInputs, transcript_to_inputs
from reader.paths import cache_dir, data_dir
from reader_runtime.features import (
    FeatureSettings,
    continuous_log_f0,
    f0_on_frame_grid,
    log_energy_from_magnitudes,
    log_mel_from_magnitudes,
    magnitude_spectrogram,
)

# Pitch range for Praat's autocorrelation tracker: both training voices are adult female; 65-600 Hz
# also covers male voices, so the same cache serves if speakers are added.
F0_FLOOR_HZ = 65.0
F0_CEILING_HZ = 600.0
FEATURE_CACHE_VERSION = 1


@dataclass
class DataConfig:
    corpora: list[str] = field(default_factory=lambda: ["ljspeech_longform", "kathleen_arctic"])
    data_root: str = ""  # empty: reader.paths.data_dir()
    max_utterances_per_corpus: int = 0  # 0: the whole split; the tiny test config takes a handful
    max_frames_per_batch: int = 6000
    max_frames_per_utterance: int = 1100  # ~12.8 s; longer clips are skipped (none in the corpora now)


@dataclass(frozen=True)
class Utterance:
    corpus: str
    utterance_id: str
    speaker: str
    text: str
    audio_path: Path


@dataclass(frozen=True)
class UtteranceFeatures:
    log_mel: np.ndarray  # (frames, n_mels) float32
    f0_hz: np.ndarray  # (frames,) float32, 0 = unvoiced
    log_energy: np.ndarray  # (frames,) float32


@dataclass(frozen=True)
class Example:
    utterance: Utterance
    speaker_id: int
    inputs: ModelInputs
    features: UtteranceFeatures

    @property
    def n_frames(self) -> int:
        return int(self.features.log_mel.shape[0])


def read_manifest(config: DataConfig, split: str) -> list[Utterance]:
    """The utterances of `split` ('train' or 'valid') of each configured corpus, in corpus order."""
    if split == "test":
        raise ValueError("the test split is held out: never read it for training or tuning")
    root = Path(config.data_root) if config.data_root else data_dir()
    splits = json.loads((root / "splits.json").read_text(encoding="utf-8"))
    utterances = []
    for corpus in config.corpora:
        wanted = splits[corpus][split]
        if config.max_utterances_per_corpus:
            wanted = wanted[: config.max_utterances_per_corpus]
        rows = {}
        for line in (root / corpus / "metadata.csv").read_text(encoding="utf-8").splitlines():
            if line.strip():
                utterance_id, speaker, text = line.split("|", 2)
                rows[utterance_id] = (speaker, text)
        for utterance_id in wanted:
            speaker, text = rows[utterance_id]
            utterances.append(Utterance(corpus, utterance_id, speaker, text, root / corpus / "wavs" / f"{utterance_id}.flac"))
    return utterances


def _settings_key(settings: FeatureSettings) -> str:
    description = json.dumps({**asdict(settings), "f0": [F0_FLOOR_HZ, F0_CEILING_HZ], "v": FEATURE_CACHE_VERSION}, sort_keys=True)
    return hashlib.sha1(description.encode()).hexdigest()[:12]


def extract_features(audio: np.ndarray, sample_rate: int, settings: FeatureSettings) -> UtteranceFeatures:
    """Features of a mono or multi-channel clip; resampled to settings.sample_rate if needed."""
    import parselmouth  # training-only dependency (praat-parselmouth)
    import soxr

    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if sample_rate != settings.sample_rate:
        audio = soxr.resample(audio, sample_rate, settings.sample_rate)
    magnitudes = magnitude_spectrogram(audio, settings)
    pitch = parselmouth.Sound(audio, settings.sample_rate).to_pitch_ac(
        time_step=1.0 / settings.frame_rate, pitch_floor=F0_FLOOR_HZ, pitch_ceiling=F0_CEILING_HZ
    )
    f0 = f0_on_frame_grid(pitch.xs(), pitch.selected_array["frequency"], magnitudes.shape[0], settings)
    return UtteranceFeatures(log_mel_from_magnitudes(magnitudes, settings), f0, log_energy_from_magnitudes(magnitudes))


class FeatureCache:
    """One .npz per clip under cache_dir()/acoustic_features/<settings key>/<corpus>/<id>.npz."""

    def __init__(self, settings: FeatureSettings = FeatureSettings(), root: Path | None = None):
        self.settings = settings
        self.root = (root or cache_dir()) / "acoustic_features" / _settings_key(settings)

    def load(self, utterance: Utterance) -> UtteranceFeatures | None:
        """The clip's features, computed and cached on first use; None (reported) if the audio is bad."""
        path = self.root / utterance.corpus / f"{utterance.utterance_id}.npz"
        if path.is_file():
            try:
                with np.load(path) as stored:
                    return UtteranceFeatures(stored["log_mel"], stored["f0_hz"], stored["log_energy"])
            except (OSError, ValueError, KeyError):
                pass  # a torn cache file (interrupted run) is recomputed below
        try:
            audio, sample_rate = sf.read(str(utterance.audio_path), dtype="float32")
        except (OSError, RuntimeError, sf.LibsndfileError) as error:
            print(f"skipping {utterance.audio_path}: unreadable audio ({error})", file=sys.stderr)
            return None
        if audio.size == 0:
            print(f"skipping {utterance.audio_path}: empty audio", file=sys.stderr)
            return None
        features = extract_features(audio, sample_rate, self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.npz")
        np.savez(partial, **asdict(features))
        partial.replace(path)
        return features


def build_examples(
    utterances: list[Utterance], speakers: list[str], analyzer, cache: FeatureCache, config: DataConfig
) -> list[Example]:
    """Examples with features and model inputs; clips with bad audio, a transcript the front end cannot
    analyse (e.g. a word needing a G2P model that is not installed), too many frames, or fewer frames
    than tokens (no monotonic alignment exists) are reported and skipped."""
    examples = []
    for utterance in utterances:
        features = cache.load(utterance)
        if features is None:
            continue
        try:
            inputs = transcript_to_inputs(utterance.text, analyzer)
        except (ReaderError, ValueError) as error:
            print(f"skipping {utterance.audio_path}: transcript not analysable ({error})", file=sys.stderr)
            continue
        n_frames = features.log_mel.shape[0]
        if n_frames > config.max_frames_per_utterance or n_frames < len(inputs):
            print(f"skipping {utterance.audio_path}: {n_frames} frames for {len(inputs)} tokens", file=sys.stderr)
            continue
        examples.append(Example(utterance, speakers.index(utterance.speaker), inputs, features))
    return examples


@dataclass(frozen=True)
class NormalisationStats:
    """Global mean/std of voiced log-F0 and of log energy, and the mean log-mel per bin, over the training frames."""

    log_f0_mean: float
    log_f0_std: float
    log_energy_mean: float
    log_energy_std: float
    log_mel_mean: list[float]

    @classmethod
    def from_examples(cls, examples: list[Example]) -> NormalisationStats:
        f0 = np.concatenate([e.features.f0_hz for e in examples])
        log_f0 = np.log(f0[f0 > 0]) if np.any(f0 > 0) else np.zeros(1)
        energy = np.concatenate([e.features.log_energy for e in examples])
        log_mel_mean = np.concatenate([e.features.log_mel for e in examples]).mean(axis=0)
        return cls(float(log_f0.mean()), float(log_f0.std() + 1e-3), float(energy.mean()), float(energy.std() + 1e-3), log_mel_mean.tolist())


@dataclass
class Batch:
    """Padded tensors; padding is 0 and masked out through text_lengths / frame_lengths."""

    symbol_ids: torch.Tensor  # (B, N) int64
    stress_ids: torch.Tensor
    word_position_ids: torch.Tensor
    break_ids: torch.Tensor
    text_lengths: torch.Tensor  # (B,)
    speaker_ids: torch.Tensor  # (B,)
    log_mel: torch.Tensor  # (B, T, n_mels)
    normalised_log_f0: torch.Tensor  # (B, T), unvoiced frames interpolated
    normalised_energy: torch.Tensor  # (B, T)
    frame_lengths: torch.Tensor  # (B,)

    def to(self, device: torch.device) -> Batch:
        return Batch(**{name: value.to(device) for name, value in vars(self).items()})


def collate(examples: list[Example], stats: NormalisationStats) -> Batch:
    batch, max_tokens = len(examples), max(len(e.inputs) for e in examples)
    max_frames = max(e.n_frames for e in examples)
    n_mels = examples[0].features.log_mel.shape[1]
    token_arrays = {name: np.zeros((batch, max_tokens), dtype=np.int64) for name in ("symbol_ids", "stress_ids", "word_position_ids", "break_ids")}
    log_mel = np.zeros((batch, max_frames, n_mels), dtype=np.float32)
    log_f0 = np.zeros((batch, max_frames), dtype=np.float32)
    energy = np.zeros((batch, max_frames), dtype=np.float32)
    for row, example in enumerate(examples):
        for name, array in token_arrays.items():
            array[row, : len(example.inputs)] = getattr(example.inputs, name)
        frames = example.n_frames
        log_mel[row, :frames] = example.features.log_mel
        log_f0[row, :frames] = (continuous_log_f0(example.features.f0_hz) - stats.log_f0_mean) / stats.log_f0_std
        energy[row, :frames] = (example.features.log_energy - stats.log_energy_mean) / stats.log_energy_std
    as_tensor = torch.from_numpy
    return Batch(
        **{name: as_tensor(array) for name, array in token_arrays.items()},
        text_lengths=torch.tensor([len(e.inputs) for e in examples]),
        speaker_ids=torch.tensor([e.speaker_id for e in examples]),
        log_mel=as_tensor(log_mel),
        normalised_log_f0=as_tensor(log_f0),
        normalised_energy=as_tensor(energy),
        frame_lengths=torch.tensor([e.n_frames for e in examples]),
    )


def length_bucketed_batches(frame_counts: list[int], max_frames_per_batch: int, rng: np.random.Generator) -> list[list[int]]:
    """Example indices grouped by similar length (little padding), each batch at most
    max_frames_per_batch padded frames, in a random order. Similar lengths come from sorting with a
    random tie-break inside a shuffled order, so batches differ between epochs."""
    order = rng.permutation(len(frame_counts))
    order = sorted(order, key=lambda index: frame_counts[index] // 50)
    batches, current, longest = [], [], 0
    for index in order:
        longest_if_added = max(longest, frame_counts[index])
        if current and longest_if_added * (len(current) + 1) > max_frames_per_batch:
            batches.append(current)
            current, longest_if_added = [], frame_counts[index]
        current.append(index)
        longest = longest_if_added
    if current:
        batches.append(current)
    return [batches[i] for i in rng.permutation(len(batches))]
