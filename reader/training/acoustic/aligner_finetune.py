"""Fine-tune the exported aligner on more voices, then re-export and recalibrate it (issue 17).

    python -m reader.training.acoustic.aligner_finetune --config configs/aligner_finetune.toml
    python -m reader.training.acoustic.aligner_finetune --config configs/aligner_finetune.toml --export-only [--ship]
    python -m reader.training.acoustic.aligner_finetune --config configs/aligner_finetune.toml --recalibrate

The aligner is rebuilt from aligner.onnx's initializers (the torch checkpoint is gone), fine-tuned with
training's forward-sum (CTC) loss on the train splits of the configured corpora (clips.py), exported
with the same inputs and outputs and recalibrated on the valid splits and the held-out speakers;
--recalibrate only recalibrates the shipped aligner in place. The run checkpoints to
<run_dir>/checkpoint.pt and resumes; the export writes <run_dir>/acoustic, --ship copies aligner.onnx
and manifest.json into the source folder. Why and how: docs/training.md#aligner-fine-tune.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from reader_runtime.manifest import file_entry
from torch import nn

from reader.paths import models_dir

from ..checkpoints import RunClock, save_atomically
from ..cli import log_line, run_stages, stage_parser
from ..config import load_config
from ..manifests import load_manifest, save_manifest
from ..onnx_weights import weights_from_graph
from .align import forward_sum_loss
from .clips import Clip, ClipCache, ClipRunConfig, TrainingBatches, augment, feature_settings, load_clips, mismatch_pairs
from .export import ALIGNER_INPUTS, TOKEN_INPUTS, calibrate_aligner, export_aligner
from .model import Aligner, ModelConfig, TokenEmbedding


@dataclass
class FinetuneConfig(ClipRunConfig):
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
    gradient_clip: float = 1.0
    log_every_steps: int = 20


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


def aligner_source(acoustic_folder: Path) -> Path:
    """The graph a fine-tune starts from: the aligner trained with the decoder (`joint_aligner`) where the
    folder keeps one beside a fine-tuned `aligner`, so a rerun starts where the first fine-tune did."""
    files = load_manifest(acoustic_folder)["files"]
    return acoustic_folder / files.get("joint_aligner", files["aligner"])["file"]


def load_aligner(acoustic_folder: Path) -> AlignerModel:
    """The AlignerModel of an exported acoustic folder (architecture from its manifest's training config),
    with the weights of its aligner_source."""
    manifest = load_manifest(acoustic_folder)
    model = AlignerModel(ModelConfig(**manifest["training"]["config"]["model"]))
    state = weights_from_graph(aligner_source(acoustic_folder))  # AlignerGraph wraps it as `model`
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
    """(B,) the runtime's alignment cost (reader_runtime.aligner.alignment_of) of each clip along a fixed path:
    mean over frames of the best token's log-probability minus the path token's."""
    gap = log_probs.max(-1).values - (log_probs * path).sum(-1)
    return (gap * frame_mask).sum(-1) / frame_mask.sum(-1)


# --- evaluation on the valid splits ----------------------------------------------------------------------


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


def train(config: FinetuneConfig, log=print) -> Path:
    """Fine-tune (resuming from <run_dir>/checkpoint.pt if there is one); returns the checkpoint path."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    run_dir = Path(config.run_dir)
    checkpoint_path = run_dir / "checkpoint.pt"
    folder = source_folder(config)
    model = load_aligner(folder)
    cache = ClipCache(feature_settings(folder))
    started = time.perf_counter()
    train_clips = load_clips(config, "train", cache, holdout=False)
    valid_pairs = mismatch_pairs(load_clips(config, "valid", cache))
    holdout_pairs = mismatch_pairs(load_clips(config, "train", cache, holdout=True), by="speaker") if config.holdout_speakers else []
    log(f"{len(train_clips)} train clips, {len(valid_pairs)} valid pairs, {len(holdout_pairs)} holdout pairs ({time.perf_counter() - started:.0f} s to load)")

    def evaluate() -> dict:
        return separation_report(valid_costs(model, valid_pairs), valid_costs(model, holdout_pairs, "holdout:") if holdout_pairs else None)

    if not checkpoint_path.is_file():
        onnx_path = aligner_source(folder)  # the graph the weights came from
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

    batches, clock = TrainingBatches(train_clips, config, state), RunClock(config)
    running: dict[str, list[float]] = {}
    while state["step"] < config.steps:
        batch_clips = batches.next()
        model.train()
        contrast = (config.contrast_threshold, config.contrast_margin) if config.contrast_weight else None
        if config.augment_probability:
            rng = batches.rng
            batch_clips = [Clip(c.utterance, c.tokens, augment(c.log_mel, config, rng)) if rng.random() < config.augment_probability else c for c in batch_clips]
        losses = alignment_losses(model, collate(batch_clips), contrast)
        total = losses["forward_sum"] + config.binarisation_weight * losses["binarisation"] + config.contrast_weight * losses.get("contrast", 0.0)
        optimiser.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.gradient_clip)
        optimiser.step()
        state["step"] += 1
        for name, value in losses.items():
            running.setdefault(name, []).append(float(value.detach()))
        if state["step"] % config.log_every_steps == 0:
            log(f"step {state['step']} " + " ".join(f"{k} {np.mean(v):.4f}" for k, v in running.items()) + f" ({clock.elapsed():.0f} s)")
            running = {}
        save_now, stop = clock.checkpoint_due(state["step"])
        if save_now:
            report = evaluate()
            state["history"].append({"step": state["step"], "valid": report})
            log(f"step {state['step']} valid: {report}")
            save_atomically(checkpoint_path, {"model": model.state_dict(), "optimiser": optimiser.state_dict(), **state})
            clock.checkpointed()
            if stop:
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
    manifest = load_manifest(folder)
    for entry in manifest["files"].values():
        if entry["file"] != "aligner.onnx":
            shutil.copy2(folder / entry["file"], out_dir / entry["file"])
    aligner_path = export_aligner(model, out_dir / "aligner.onnx")
    cache = ClipCache(feature_settings(folder))
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
    save_manifest(out_dir, manifest)
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
    manifest = load_manifest(folder)
    previous = manifest["aligner"]["cost_threshold"]
    manifest["aligner"] = calibrate_aligner(folder / manifest["files"]["aligner"]["file"], config.data_config(), config.holdout_speakers)
    if "joint_aligner" in manifest:  # its threshold is on the same cost, though only its durations are used
        manifest["joint_aligner"]["cost_threshold"] = calibrate_aligner(folder / manifest["files"]["joint_aligner"]["file"], config.data_config(), config.holdout_speakers)["cost_threshold"]
    log(f"calibration: {json.dumps(manifest['aligner']['calibration'])} threshold {previous} -> {manifest['aligner']['cost_threshold']}")
    return save_manifest(folder, manifest)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(
        "Fine-tune the exported aligner on more voices; export and recalibrate it", "configs/aligner_finetune.toml",
        ship_help="also copy aligner.onnx and manifest.json into the source acoustic folder",
    )  # fmt: skip
    parser.add_argument("--recalibrate", action="store_true", help="only recalibrate the source folder's shipped aligner in place")
    args = parser.parse_args(argv)
    config = load_config(args.config, FinetuneConfig)
    if args.recalibrate:
        recalibrate(config, log_line)
        return
    run_stages(args, lambda: train(config, log_line), lambda: export(config, ship=args.ship, log=log_line))


if __name__ == "__main__":
    main()
