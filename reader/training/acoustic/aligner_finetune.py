"""Fine-tune the exported aligner on more voices, then re-export and recalibrate it (issue 17).

    python -m reader.training.acoustic.aligner_finetune --config configs/aligner_finetune.toml
    python -m reader.training.acoustic.aligner_finetune --config configs/aligner_finetune.toml --export-only [--ship]
    python -m reader.training.acoustic.aligner_finetune --config configs/aligner_finetune.toml --recalibrate

The acoustic model's aligner (token embedding + keys/queries, runtime/aligner.py) was trained on the
two training voices only, and its transcript-mismatch threshold calibrated on them; on speakers it never
heard (other sexes, accents, 16-kHz recordings) it let wrong transcripts through and refused right ones.
The torch checkpoint is gone, so the aligner is rebuilt from aligner.onnx's initializers (checked
against the ONNX graph on a real clip), fine-tuned with the training's own forward-sum (CTC) loss over
its log-probabilities (soft alignment plus the beta-binomial prior) and, optionally, its binarisation
term, on the train splits of the configured corpora (the test split is never read), exported with the
same inputs and outputs, and recalibrated on the valid splits of the same corpora and on the train
clips of the held-out speakers, voices it never heard (export.py's calibrate_aligner); --recalibrate
does only that, in place, for the shipped aligner (after a change to how runtime/aligner.py scores).
The aligner's input is what the runtime gives it (runtime.features' log-mel of the recording
resampled to the model rate, as reader.transfer.load_source does), so the runtime needs no change; it
trains on whole clips, where reader transfer cuts a source to its speech first (reader.transfer.speech_only).

Log-mels and token arrays are cached under cache_dir()/aligner/<key>/<corpus>/<id>.npz. The run
checkpoints to <run_dir>/checkpoint.pt every few minutes and resumes from it. The export writes a full
acoustic folder to <run_dir>/acoustic (the source folder's other graphs, the new aligner.onnx and an
updated manifest) for benchmarking; --ship also copies aligner.onnx and manifest.json into the source
folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reader.model_inputs import SYMBOLS
from reader.paths import cache_dir, models_dir
from reader_runtime.features import FeatureSettings
from reader_runtime.manifest import file_entry

from ..onnx_weights import weights_from_graph
from .align import forward_sum_loss
from .data import DataConfig, Utterance, length_bucketed_batches, read_manifest
from .export import ALIGNER_INPUTS, TOKEN_INPUTS, calibrate_aligner, export_aligner
from .model import Aligner, ModelConfig, TokenEmbedding

CACHE_VERSION = 1


@dataclass
class FinetuneConfig:
    corpora: list[str] = field(default_factory=lambda: ["ljspeech_longform", "kathleen_arctic", "speechocean762_adults"])
    data_root: str = ""  # empty: reader.paths.data_dir()
    max_utterances_per_corpus: int = 0  # 0: the whole train split
    source_models: str = ""  # the acoustic folder whose aligner.onnx is fine-tuned; empty: <models_dir>/acoustic
    run_dir: str = "checkpoints/aligner_finetune"
    steps: int = 3000
    learning_rate: float = 3e-4
    train_embeddings: bool = True  # the aligner graph has its own copy: text_to_mel's embedding is not touched
    embedding_learning_rate: float = 1e-4
    binarisation_weight: float = 0.0  # RAD-TTS's pull of the soft alignment towards the hard path
    # Contrast: each clip is also aligned to another clip's transcript (the next in its batch, same
    # corpus); hinge losses pull the runtime's alignment cost of the right transcript below
    # contrast_threshold - contrast_margin and push that of the wrong one above threshold + margin.
    contrast_weight: float = 0.0
    contrast_threshold: float = 1.2
    contrast_margin: float = 0.4
    # Train speakers left out of training, as a development set of voices the fine-tune never heard
    # (their train clips, each aligned to its own and to the speaker's next clip's transcript).
    holdout_speakers: list[str] = field(default_factory=list)
    # Augmentation of training clips towards other voices and rooms (0: none): a gain (log-mel offset,
    # uniform in +-augment_gain nats), a warp of the mel axis (vocal-tract length, factor uniform in
    # 1 +- augment_warp) and a noise floor added to the magnitudes (log of it uniform between
    # augment_noise_floor and that + 3), each clip with probability augment_probability.
    augment_probability: float = 0.0
    augment_gain: float = 0.5
    augment_warp: float = 0.1
    augment_noise_floor: float = -9.0
    max_frames_per_batch: int = 4000
    max_frames_per_utterance: int = 1100
    corpus_weights: dict[str, float] = field(default_factory=dict)  # batches drawn per corpus in proportion; empty: by clip count
    gradient_clip: float = 1.0
    seed: int = 1234
    threads: int = 1
    log_every_steps: int = 20
    checkpoint_every_minutes: float = 4.0
    max_minutes: float = 0.0  # 0: no limit; otherwise stop (checkpointed) after this much training time in this run

    def data_config(self, corpora: list[str] | None = None) -> DataConfig:
        return DataConfig(
            corpora=list(corpora or self.corpora), data_root=self.data_root, max_utterances_per_corpus=self.max_utterances_per_corpus,
            max_frames_per_utterance=self.max_frames_per_utterance,
        )  # fmt: skip


def load_config(path: str | Path) -> FinetuneConfig:
    with open(path, "rb") as handle:
        return FinetuneConfig(**tomllib.load(handle))


class AlignerModel(nn.Module):
    """The aligner graph's torch half: TokenEmbedding + Aligner, under the names AlignerGraph exports
    (`embedding.*`, `aligner.*`), so that export.AlignerGraph(AlignerModel) is aligner.onnx's graph."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = TokenEmbedding(config.hidden)
        self.aligner = Aligner(config)

    def forward(self, symbol_ids, stress_ids, word_position_ids, break_ids, log_mel, text_lengths, frame_lengths) -> torch.Tensor:
        return self.aligner(self.embedding(symbol_ids, stress_ids, word_position_ids, break_ids), log_mel, text_lengths, frame_lengths)


def load_aligner(acoustic_folder: Path) -> AlignerModel:
    """The AlignerModel of an exported acoustic folder (architecture from its manifest's training config):
    the aligner trained with the decoder (`joint_aligner`) where the folder keeps one beside a fine-tuned
    `aligner`, so a rerun starts where the first fine-tune did."""
    manifest = json.loads((acoustic_folder / "manifest.json").read_text(encoding="utf-8"))
    model = AlignerModel(ModelConfig(**manifest["training"]["config"]["model"]))
    source = manifest["files"].get("joint_aligner", manifest["files"]["aligner"])
    state = weights_from_graph(acoustic_folder / source["file"])  # AlignerGraph wraps it as `model`
    missing, unexpected = set(model.state_dict()) - set(state), set(state) - set(model.state_dict())
    if missing or unexpected:
        raise ValueError(f"{acoustic_folder}: aligner weights do not fit the architecture (missing {sorted(missing)}, unexpected {sorted(unexpected)})")
    model.load_state_dict(state)
    return model.eval()


def single_log_probs(model: AlignerModel, token_arrays: dict[str, np.ndarray], log_mel: np.ndarray) -> np.ndarray:
    """(T, N) log-probabilities of one clip, as the ONNX graph computes them."""
    tensors = {name: torch.from_numpy(np.asarray(token_arrays[name], np.int64))[None] for name in TOKEN_INPUTS}
    with torch.no_grad():
        out = model(
            **tensors, log_mel=torch.from_numpy(np.asarray(log_mel, np.float32))[None],
            text_lengths=torch.tensor([len(token_arrays["symbol_ids"])]), frame_lengths=torch.tensor([log_mel.shape[0]]),
        )  # fmt: skip
    return out[0].numpy()


def max_difference_to_onnx(model: AlignerModel, onnx_path: Path, token_arrays: dict[str, np.ndarray], log_mel: np.ndarray) -> float:
    """Largest absolute difference between the torch model's and the ONNX graph's log-probabilities."""
    from reader_runtime.session import SessionOptions, load_session

    session = load_session(onnx_path, SessionOptions(intra_op_threads=1, inter_op_threads=1))
    feeds = {name: np.asarray(token_arrays[name], np.int64)[None] for name in TOKEN_INPUTS} | {"log_mel": np.asarray(log_mel, np.float32)[None]}
    (reference,) = session.run(None, {name: feeds[name] for name in ALIGNER_INPUTS})
    return float(np.max(np.abs(single_log_probs(model, token_arrays, log_mel) - reference[0])))


# --- data ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    utterance: Utterance
    tokens: dict[str, np.ndarray]  # TOKEN_INPUTS -> (N,) int64
    log_mel: np.ndarray  # (T, n_mels) float32, runtime.features of the recording at the model rate

    @property
    def n_frames(self) -> int:
        return int(self.log_mel.shape[0])


def recording_log_mel(path: Path, settings: FeatureSettings) -> np.ndarray:
    """The runtime's log-mel of a whole recording, loaded as `reader transfer` loads a source (reader.transfer.load_source)."""
    from reader.transfer import load_source
    from reader_runtime.features import log_mel_spectrogram

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


def load_clips(config: FinetuneConfig, split: str, cache: ClipCache, holdout: bool | None = None) -> list[Clip]:
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


def augment(log_mel: np.ndarray, config: FinetuneConfig, rng: np.random.Generator) -> np.ndarray:
    """A training clip's log-mel as another voice in another room might give it (see FinetuneConfig)."""
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


def collate(clips: list[Clip]) -> dict[str, torch.Tensor]:
    max_tokens = max(len(c.tokens["symbol_ids"]) for c in clips)
    max_frames = max(c.n_frames for c in clips)
    batch = {name: np.zeros((len(clips), max_tokens), np.int64) for name in TOKEN_INPUTS}
    log_mel = np.zeros((len(clips), max_frames, clips[0].log_mel.shape[1]), np.float32)
    for row, clip in enumerate(clips):
        for name in TOKEN_INPUTS:
            batch[name][row, : len(clip.tokens[name])] = clip.tokens[name]
        log_mel[row, : clip.n_frames] = clip.log_mel
    return {
        **{name: torch.from_numpy(array) for name, array in batch.items()},
        "log_mel": torch.from_numpy(log_mel),
        "text_lengths": torch.tensor([len(c.tokens["symbol_ids"]) for c in clips]),
        "frame_lengths": torch.tensor([c.n_frames for c in clips]),
    }


def alignment_losses(model: AlignerModel, batch: dict[str, torch.Tensor], contrast: tuple[float, float] | None = None) -> dict[str, torch.Tensor]:
    """The acoustic training's aligner losses: forward-sum (CTC) over the log-probabilities (prior
    included) and the binarisation term at the most likely monotonic path (MAS); with contrast =
    (threshold, margin), also the hinge losses on the alignment costs of the right transcripts and of
    the batch's next clip's transcript (see FinetuneConfig)."""
    from reader_runtime.aligner import monotonic_alignment_search

    from .align import alignment_matrix

    log_probs = model(**batch)
    losses = {"forward_sum": forward_sum_loss(log_probs, batch["text_lengths"], batch["frame_lengths"])}
    durations = monotonic_alignment_search(log_probs.detach().numpy(), batch["text_lengths"].numpy(), batch["frame_lengths"].numpy())
    path = alignment_matrix(torch.from_numpy(durations), log_probs.shape[1])
    frame_mask = (torch.arange(log_probs.shape[1])[None, :] < batch["frame_lengths"][:, None]).float()
    at_path = (torch.softmax(log_probs, dim=-1) * path).sum(-1)
    losses["binarisation"] = -(torch.log(at_path.clamp(min=1e-8)) * frame_mask).sum() / frame_mask.sum()
    if contrast is not None:
        threshold, margin = contrast
        matched = path_costs(log_probs, path, frame_mask)
        other = torch.roll(torch.arange(len(matched)), 1)
        same_text = (batch["text_lengths"][other] == batch["text_lengths"]) & (batch["symbol_ids"][other] == batch["symbol_ids"]).all(-1)
        usable = (batch["text_lengths"][other] <= batch["frame_lengths"]) & ~same_text
        if usable.any():
            wrong = {name: batch[name][other] for name in (*TOKEN_INPUTS, "text_lengths")}
            wrong_log_probs = model(**{**batch, **wrong})
            wrong_durations = monotonic_alignment_search(wrong_log_probs.detach().numpy(), wrong["text_lengths"].numpy(), batch["frame_lengths"].numpy())
            wrong_path = alignment_matrix(torch.from_numpy(wrong_durations), log_probs.shape[1])
            mismatched = path_costs(wrong_log_probs, wrong_path, frame_mask)[usable]
            losses["contrast"] = torch.relu(matched - (threshold - margin)).mean() + torch.relu(threshold + margin - mismatched).mean()
            losses["cost_matched"], losses["cost_mismatched"] = matched.detach().mean(), mismatched.detach().mean()
    return losses


def path_costs(log_probs: torch.Tensor, path: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """(B,) the runtime's alignment cost (runtime.aligner.alignment_of) of each clip along a fixed path:
    mean over frames of the best token's log-probability minus the path token's."""
    gap = log_probs.max(-1).values - (log_probs * path).sum(-1)
    return (gap * frame_mask).sum(-1) / frame_mask.sum(-1)


# --- evaluation on the valid splits ----------------------------------------------------------------------


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


def valid_costs(model: AlignerModel, pairs: list[tuple[Clip, Clip]], prefix: str = "") -> dict[str, np.ndarray]:
    """Per corpus, runtime alignment costs of each valid clip with its own and with another transcript."""
    from reader_runtime.aligner import alignment_of

    def cost(tokens, log_mel) -> float:
        if log_mel.shape[0] < len(tokens["symbol_ids"]):
            return float("inf")
        return alignment_of(single_log_probs(model, tokens, log_mel), float("nan")).cost

    model.eval()
    costs: dict[str, list] = {}
    for clip, other in pairs:
        costs.setdefault(prefix + clip.utterance.corpus, []).append((cost(clip.tokens, clip.log_mel), cost(other.tokens, clip.log_mel)))
    return {corpus: np.asarray(values) for corpus, values in costs.items()}


def separation_report(costs: dict[str, np.ndarray], extra: dict[str, np.ndarray] | None = None) -> dict:
    """The best single threshold over all corpora (export.mismatch_threshold) and, per corpus (and per
    group of `extra`, e.g. the holdout speakers, judged at the same threshold), the share of matched
    clips accepted and of mismatched ones refused at it."""
    from .export import mismatch_threshold

    matched = np.concatenate([c[:, 0] for c in costs.values()])
    mismatched = np.concatenate([c[:, 1] for c in costs.values()])
    threshold = mismatch_threshold(matched, mismatched)
    report = {"threshold": round(threshold, 4), "errors": int((matched > threshold).sum() + (mismatched <= threshold).sum())}
    for corpus, c in {**costs, **(extra or {})}.items():
        report[corpus] = {
            "accepted": round(float(np.mean(c[:, 0] <= threshold)), 3), "refused": round(float(np.mean(c[:, 1] > threshold)), 3),
            "matched_median": round(float(np.median(c[:, 0])), 3), "mismatched_median": round(float(np.median(c[:, 1])), 3),
            "auc": round(float(np.mean(c[:, 1][None, :] > c[:, 0][:, None])), 4),  # P(a wrong transcript costs more than a right one)
        }  # fmt: skip
    return report


# --- training ---------------------------------------------------------------------------------------------


def source_folder(config: FinetuneConfig) -> Path:
    return Path(config.source_models) if config.source_models else models_dir() / "acoustic"


def make_optimiser(model: AlignerModel, config: FinetuneConfig) -> torch.optim.Optimizer:
    for parameter in model.embedding.parameters():
        parameter.requires_grad_(config.train_embeddings)
    groups = [{"params": list(model.aligner.parameters()), "lr": config.learning_rate}]
    if config.train_embeddings:
        groups.append({"params": list(model.embedding.parameters()), "lr": config.embedding_learning_rate})
    return torch.optim.Adam(groups)


def corpus_batches(clips: list[Clip], config: FinetuneConfig, rng: np.random.Generator) -> list[list[Clip]]:
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


def save_checkpoint(path: Path, model: AlignerModel, optimiser, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(), **state}, partial)
    partial.replace(path)


def train(config: FinetuneConfig, log=print) -> Path:
    """Fine-tune (resuming from <run_dir>/checkpoint.pt if there is one); returns the checkpoint path."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    run_dir = Path(config.run_dir)
    checkpoint_path = run_dir / "checkpoint.pt"
    folder = source_folder(config)
    model = load_aligner(folder)
    cache = ClipCache(FeatureSettings(**{k: v for k, v in json.loads((folder / "manifest.json").read_text())["features"].items() if k in FeatureSettings.__dataclass_fields__}))
    started = time.perf_counter()
    train_clips = load_clips(config, "train", cache, holdout=False)
    valid_pairs = mismatch_pairs(load_clips(config, "valid", cache))
    holdout_pairs = mismatch_pairs(load_clips(config, "train", cache, holdout=True), by="speaker") if config.holdout_speakers else []
    log(f"{len(train_clips)} train clips, {len(valid_pairs)} valid pairs, {len(holdout_pairs)} holdout pairs ({time.perf_counter() - started:.0f} s to load)")

    def evaluate() -> dict:
        return separation_report(valid_costs(model, valid_pairs), valid_costs(model, holdout_pairs, "holdout:") if holdout_pairs else None)

    if not checkpoint_path.is_file():
        onnx_path = folder / "aligner.onnx"
        clip = valid_pairs[0][0]
        difference = max_difference_to_onnx(model, onnx_path, clip.tokens, clip.log_mel)
        log(f"torch rebuild vs {onnx_path} on {clip.utterance.utterance_id}: max |difference| {difference:.2e}")
        if difference > 1e-3:
            raise RuntimeError(f"the rebuilt aligner does not reproduce {onnx_path} (max difference {difference})")
    optimiser = make_optimiser(model, config)
    state = {"step": 0, "epoch": 0, "config": asdict(config), "source": str(folder), "history": [], "train_clips": len(train_clips)}
    if checkpoint_path.is_file():
        stored = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        model.load_state_dict(stored["model"])
        optimiser.load_state_dict(stored["optimiser"])
        state.update({k: stored[k] for k in ("step", "epoch", "history", "source") if k in stored})
        log(f"resumed from {checkpoint_path} at step {state['step']}")
    else:
        report = evaluate()
        state["history"].append({"step": 0, "valid": report})
        log(f"step 0 valid: {report}")

    rng = np.random.default_rng(config.seed + state["epoch"])
    batches, position = corpus_batches(train_clips, config, rng), 0
    last_checkpoint = run_start = time.perf_counter()
    running: dict[str, list[float]] = {}
    while state["step"] < config.steps:
        if position >= len(batches):
            state["epoch"] += 1
            rng = np.random.default_rng(config.seed + state["epoch"])
            batches, position = corpus_batches(train_clips, config, rng), 0
        model.train()
        contrast = (config.contrast_threshold, config.contrast_margin) if config.contrast_weight else None
        batch_clips = batches[position]
        if config.augment_probability:
            batch_clips = [Clip(c.utterance, c.tokens, augment(c.log_mel, config, rng)) if rng.random() < config.augment_probability else c for c in batch_clips]
        losses = alignment_losses(model, collate(batch_clips), contrast)
        position += 1
        total = losses["forward_sum"] + config.binarisation_weight * losses["binarisation"] + config.contrast_weight * losses.get("contrast", 0.0)
        optimiser.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.gradient_clip)
        optimiser.step()
        state["step"] += 1
        for name, value in losses.items():
            running.setdefault(name, []).append(float(value.detach()))
        if state["step"] % config.log_every_steps == 0:
            log(f"step {state['step']} " + " ".join(f"{k} {np.mean(v):.4f}" for k, v in running.items()) + f" ({time.perf_counter() - run_start:.0f} s)")
            running = {}
        out_of_time = config.max_minutes and time.perf_counter() - run_start > 60 * config.max_minutes
        if time.perf_counter() - last_checkpoint > 60 * config.checkpoint_every_minutes or state["step"] >= config.steps or out_of_time:
            report = evaluate()
            state["history"].append({"step": state["step"], "valid": report})
            log(f"step {state['step']} valid: {report}")
            save_checkpoint(checkpoint_path, model, optimiser, state)
            last_checkpoint = time.perf_counter()
            if out_of_time:
                break
    return checkpoint_path


# --- export ---------------------------------------------------------------------------------------------


def export(config: FinetuneConfig, ship: bool = False, log=print) -> Path:
    """<run_dir>/acoustic: the source acoustic folder with the fine-tuned aligner.onnx, recalibrated on the
    valid splits of the configured corpora, and its manifest updated (aligner section, files entry,
    training lineage). With ship, aligner.onnx and manifest.json are then copied over the source's."""
    torch.set_num_threads(config.threads)
    folder = source_folder(config)
    stored = torch.load(Path(config.run_dir) / "checkpoint.pt", map_location="cpu", weights_only=False)
    model = load_aligner(folder)
    model.load_state_dict(stored["model"])
    model.eval()
    out_dir = Path(config.run_dir) / "acoustic"
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["files"].values():
        if entry["file"] != "aligner.onnx":
            shutil.copy2(folder / entry["file"], out_dir / entry["file"])
    aligner_path = export_aligner(model, out_dir / "aligner.onnx")
    cache = ClipCache(FeatureSettings(**{k: v for k, v in manifest["features"].items() if k in FeatureSettings.__dataclass_fields__}))
    clip = mismatch_pairs(load_clips(config, "valid", cache))[0][0]
    difference = max_difference_to_onnx(model, aligner_path, clip.tokens, clip.log_mel)
    log(f"exported {aligner_path}: max |torch - onnx| {difference:.2e}")
    if difference > 1e-3:
        raise RuntimeError(f"the exported aligner differs from the fine-tuned one (max difference {difference})")
    previous = {"sha256": manifest["files"]["aligner"]["sha256"], **manifest["aligner"]}
    manifest["aligner"] = calibrate_aligner(aligner_path, config.data_config(), config.holdout_speakers)
    manifest["files"]["aligner"] = file_entry(aligner_path)
    manifest["training"]["aligner_finetune"] = {
        "module": "reader.training.acoustic.aligner_finetune",
        "from": "the aligner of this acoustic model's training (the lineage above), rebuilt from its aligner.onnx",
        "previous_aligner": {"sha256": previous["sha256"], "cost_threshold": previous["cost_threshold"], "calibration": previous["calibration"]},
        "corpora": list(config.corpora),
        "split": "train",
        "utterances": stored.get("train_clips"),
        "steps": stored["step"],
        "losses": "forward-sum (CTC) over the aligner's log-probabilities (soft alignment + beta-binomial prior)"
        + (f" + {config.binarisation_weight} x binarisation" if config.binarisation_weight else "")
        + (
            f" + {config.contrast_weight} x contrast (hinge on the alignment cost of the right transcript below {config.contrast_threshold} - {config.contrast_margin}"
            f" and of the next clip's above {config.contrast_threshold} + {config.contrast_margin})"
            if config.contrast_weight
            else ""
        ),
        "holdout_speakers": list(config.holdout_speakers),
        "config": stored["config"],
        "valid_history": stored.get("history", [])[-3:],
        "hardware": f"CPU, {config.threads} thread(s)",
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log(f"calibration: {json.dumps(manifest['aligner']['calibration'])} threshold {manifest['aligner']['cost_threshold']}")
    if ship:
        shutil.copy2(aligner_path, folder / "aligner.onnx")
        shutil.copy2(out_dir / "manifest.json", folder / "manifest.json")
        log(f"shipped into {folder}")
    return out_dir


def recalibrate(config: FinetuneConfig, log=print) -> Path:
    """Recalibrate the source acoustic folder's shipped aligner in place (after a change to how the runtime
    scores an alignment): its manifest's `aligner` section, from the valid splits of the configured corpora."""
    folder = source_folder(config)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    previous = manifest["aligner"]["cost_threshold"]
    manifest["aligner"] = calibrate_aligner(folder / manifest["files"]["aligner"]["file"], config.data_config(), config.holdout_speakers)
    if "joint_aligner" in manifest:  # its threshold is on the same cost, though only its durations are used
        manifest["joint_aligner"]["cost_threshold"] = calibrate_aligner(folder / manifest["files"]["joint_aligner"]["file"], config.data_config(), config.holdout_speakers)["cost_threshold"]
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log(f"calibration: {json.dumps(manifest['aligner']['calibration'])} threshold {previous} -> {manifest['aligner']['cost_threshold']}")
    return manifest_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fine-tune the exported aligner on more voices; export and recalibrate it")
    parser.add_argument("--config", default="configs/aligner_finetune.toml")
    parser.add_argument("--export-only", action="store_true", help="export and recalibrate the run's checkpoint without training")
    parser.add_argument("--no-export", action="store_true", help="train only")
    parser.add_argument("--ship", action="store_true", help="also copy aligner.onnx and manifest.json into the source acoustic folder")
    parser.add_argument("--recalibrate", action="store_true", help="only recalibrate the source folder's shipped aligner in place")
    args = parser.parse_args(argv)
    config = load_config(args.config)

    def log(message: str) -> None:
        print(message, flush=True)

    if args.recalibrate:
        recalibrate(config, log)
        return
    if not args.export_only:
        train(config, log)
    if not args.no_export:
        export(config, ship=args.ship, log=log)


if __name__ == "__main__":
    main()
