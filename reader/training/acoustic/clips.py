"""Recorded clips for the aligner fine-tune and the phone recogniser: the runtime's log-mel of each
recording with its transcript's token arrays (cached), loaded per split, augmented and batched.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from reader_runtime.features import FeatureSettings

from reader.model_inputs import SYMBOLS
from reader.paths import cache_dir

from ..manifests import load_manifest
from .data import DataConfig, Utterance, length_bucketed_batches, read_manifest
from .export import TOKEN_INPUTS

CACHE_VERSION = 1


@dataclass
class ClipRunConfig:
    """A training run over recorded clips (aligner fine-tune, phone recogniser): which clips it reads,
    how they are batched and augmented, and the settings of its loop that both runs share."""

    corpora: list[str] = field(default_factory=lambda: ["ljspeech_longform", "kathleen_arctic", "speechocean762_adults"])
    data_root: str = ""  # empty: reader.paths.data_dir()
    max_utterances_per_corpus: int = 0  # 0: the whole train split
    # Train speakers left out of training, as a development set of voices the run never heard
    # (their train clips, each aligned to its own and to the speaker's next clip's transcript).
    holdout_speakers: list[str] = field(default_factory=list)
    max_frames_per_batch: int = 4000
    max_frames_per_utterance: int = 1100
    corpus_weights: dict[str, float] = field(default_factory=dict)  # batches drawn per corpus in proportion; empty: by clip count
    # Augmentation towards other voices and rooms (0: none), each clip with augment_probability: a gain
    # (log-mel offset, uniform in +-augment_gain nats), a warp of the mel axis (factor uniform in
    # 1 +- augment_warp) and a noise floor (its log uniform in augment_noise_floor .. + 3).
    augment_probability: float = 0.0
    augment_gain: float = 0.5
    augment_warp: float = 0.1
    augment_noise_floor: float = -9.0
    seed: int = 1234
    threads: int = 1
    checkpoint_every_minutes: float = 4.0
    max_minutes: float = 0.0  # 0: no limit; otherwise stop (checkpointed) after this much training time in this run

    def data_config(self, corpora: list[str] | None = None) -> DataConfig:
        return DataConfig(
            corpora=list(corpora or self.corpora), data_root=self.data_root, max_utterances_per_corpus=self.max_utterances_per_corpus,
            max_frames_per_utterance=self.max_frames_per_utterance,
        )  # fmt: skip


class TrainingBatches:
    """A run's batches, epoch after epoch: each epoch's corpus_batches drawn with the generator seeded
    seed + epoch (state["epoch"] counts the epochs; `rng` serves the epoch's augmentation too)."""

    def __init__(self, clips: list[Clip], config: ClipRunConfig, state: dict, position: int = 0) -> None:
        self.clips, self.config, self.state = clips, config, state
        self._start_epoch(position)

    def _start_epoch(self, position: int = 0) -> None:
        self.rng = np.random.default_rng(self.config.seed + self.state["epoch"])
        self.batches, self.position = corpus_batches(self.clips, self.config, self.rng), position

    def next(self) -> list[Clip]:
        if self.position >= len(self.batches):
            self.state["epoch"] += 1
            self._start_epoch()
        self.position += 1
        return self.batches[self.position - 1]


def feature_settings(acoustic_folder: Path) -> FeatureSettings:
    """The feature settings in an exported acoustic folder's manifest."""
    manifest = load_manifest(acoustic_folder)
    return FeatureSettings(**{k: v for k, v in manifest["features"].items() if k in FeatureSettings.__dataclass_fields__})


@dataclass(frozen=True)
class Clip:
    utterance: Utterance
    tokens: dict[str, np.ndarray]  # TOKEN_INPUTS -> (N,) int64
    log_mel: np.ndarray  # (T, n_mels) float32, reader_runtime.features of the recording at the model rate

    @property
    def n_frames(self) -> int:
        return int(self.log_mel.shape[0])


def recording_log_mel(path: Path, settings: FeatureSettings) -> np.ndarray:
    """The runtime's log-mel of a whole recording, loaded as `reader transfer` loads a source (reader.transfer_source.load_source)."""
    from reader_runtime.features import log_mel_spectrogram

    from reader.transfer_source import load_source

    return log_mel_spectrogram(load_source(path, settings.sample_rate).samples, settings).astype(np.float32)


class ClipCache:
    """One .npz per clip (log-mel + token arrays) under cache_dir()/aligner/<key>/<corpus>/<id>.npz."""

    def __init__(self, settings: FeatureSettings = FeatureSettings(), root: Path | None = None):
        self.settings = settings
        key = json.dumps({**asdict(settings), "symbols": list(SYMBOLS), "v": CACHE_VERSION}, sort_keys=True)
        self.root = (root or cache_dir()) / "aligner" / hashlib.sha1(key.encode()).hexdigest()[:12]
        self._analyzer = None

    def analyzer(self):
        if self._analyzer is None:
            from reader.frontend.analysis import Analyzer

            self._analyzer = Analyzer()
        return self._analyzer

    def load(self, utterance: Utterance) -> Clip | None:
        """The clip, computed and cached on first use; None (reported) if its audio or transcript fails."""
        from reader.errors import ReaderError
        from reader.model_inputs import transcript_to_inputs

        path = self.root / utterance.corpus / f"{utterance.utterance_id}.npz"
        if path.is_file():
            try:
                with np.load(path) as stored:
                    return Clip(utterance, {name: stored[name] for name in TOKEN_INPUTS}, stored["log_mel"])
            except (OSError, ValueError, KeyError):
                pass  # a torn cache file: recomputed below
        try:
            log_mel = recording_log_mel(utterance.audio_path, self.settings)
            inputs = transcript_to_inputs(utterance.text, self.analyzer())
        except (OSError, RuntimeError, ReaderError, ValueError) as error:
            print(f"skipping {utterance.audio_path}: {error}", file=sys.stderr)
            return None
        tokens = {name: np.asarray(getattr(inputs, name), np.int64) for name in TOKEN_INPUTS}
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.npz")
        np.savez(partial, log_mel=log_mel, **tokens)
        partial.replace(path)
        return Clip(utterance, tokens, log_mel)


def load_clips(config: ClipRunConfig, split: str, cache: ClipCache, holdout: bool | None = None) -> list[Clip]:
    """The split's clips of every configured corpus (read_manifest refuses the test split), without
    those too long to train on or with fewer frames than tokens; holdout True: only those of the
    holdout speakers, False: none of them, None: all."""
    clips = []
    for utterance in read_manifest(config.data_config(), split):
        if holdout is not None and (utterance.speaker in config.holdout_speakers) != holdout:
            continue
        clip = cache.load(utterance)
        if clip is not None and len(clip.tokens["symbol_ids"]) <= clip.n_frames <= config.max_frames_per_utterance:
            clips.append(clip)
    return clips


def augment(log_mel: np.ndarray, config: ClipRunConfig, rng: np.random.Generator) -> np.ndarray:
    """A training clip's log-mel as another voice in another room might give it (see ClipRunConfig)."""
    n_mels = log_mel.shape[1]
    warp = 1 + rng.uniform(-config.augment_warp, config.augment_warp)
    source_bins = np.clip(np.arange(n_mels) / warp, 0, n_mels - 1)
    low = np.floor(source_bins).astype(int)
    high = np.minimum(low + 1, n_mels - 1)
    weight = (source_bins - low).astype(np.float32)
    warped = log_mel[:, low] * (1 - weight) + log_mel[:, high] * weight
    noise = rng.uniform(config.augment_noise_floor, config.augment_noise_floor + 3)
    gain = rng.uniform(-config.augment_gain, config.augment_gain)
    return (np.logaddexp(warped + gain, noise)).astype(np.float32)


def mismatch_pairs(clips: list[Clip], by: str = "corpus") -> list[tuple[Clip, Clip]]:
    """(clip, the next clip with other words of its corpus (as export.calibrate_aligner pairs them) or
    of its speaker (by="speaker", as the benchmark does)) for every clip."""
    pairs = []
    for key in dict.fromkeys(getattr(c.utterance, by) for c in clips):
        group = [c for c in clips if getattr(c.utterance, by) == key]
        for i, clip in enumerate(group):
            other = next((o for o in group[i + 1 :] + group[:i] if o.utterance.text != clip.utterance.text), None)
            if other is not None:
                pairs.append((clip, other))
    return pairs


def corpus_batches(clips: list[Clip], config: ClipRunConfig, rng: np.random.Generator) -> list[list[Clip]]:
    """One epoch of length-bucketed batches per corpus, interleaved at random (each corpus's share of the
    batches as corpus_weights asks, by repeating or cutting its batches; by clip count by default)."""
    per_corpus = {}
    for corpus in dict.fromkeys(c.utterance.corpus for c in clips):
        group = [c for c in clips if c.utterance.corpus == corpus]
        indices = length_bucketed_batches([c.n_frames for c in group], config.max_frames_per_batch, rng)
        per_corpus[corpus] = [[group[i] for i in batch] for batch in indices]
    if config.corpus_weights:
        total = sum(len(b) for b in per_corpus.values())
        weight_sum = sum(config.corpus_weights.get(corpus, 1.0) for corpus in per_corpus)
        for corpus, batches in per_corpus.items():
            wanted = max(1, round(total * config.corpus_weights.get(corpus, 1.0) / weight_sum))
            per_corpus[corpus] = [batches[i % len(batches)] for i in rng.permutation(max(wanted, len(batches)))[:wanted] % len(batches)]
    epoch = [batch for batches in per_corpus.values() for batch in batches]
    return [epoch[i] for i in rng.permutation(len(epoch))]
