"""Train the acoustic model from a TOML config; resumable; data-parallel under torchrun.

    python -m reader.training.acoustic.train --config configs/acoustic_small.toml
    torchrun --nproc_per_node 2 -m reader.training.acoustic.train --config configs/acoustic_tiny.toml

The run folder holds `checkpoint.pt` (written atomically; a rerun resumes from it) and `log.jsonl`.
Under torchrun every process takes every world_size-th batch and DistributedDataParallel averages the
gradients; only rank 0 logs and writes checkpoints. The optimiser, KL and binarisation schedules:
docs/training.md#acoustic-model-training.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from reader_runtime.manifest import MANIFEST_NAME
from torch.nn.parallel import DistributedDataParallel

from reader.paths import PROJECT_ROOT

from ..checkpoints import save_atomically
from ..cli import run_training
from ..config import load_config as read_config
from .data import DataConfig, Example, FeatureCache, NormalisationStats, build_examples, collate, length_bucketed_batches, read_manifest
from .export import load_exported_model, rebuild_sources
from .model import AcousticModel, ModelConfig, count_parameters

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"


@dataclass
class LossWeights:
    mel: float = 1.0
    duration: float = 1.0
    pitch: float = 1.0
    energy: float = 1.0
    code_prediction: float = 1.0
    alignment_ctc: float = 1.0
    alignment_binarisation: float = 1.0
    kl_utterance: float = 5e-4  # final weights after annealing
    kl_copycat: float = 1e-2


@dataclass
class TrainConfig:
    run_dir: str = "checkpoints/acoustic"
    steps: int = 10000
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    gradient_clip: float = 1.0
    seed: int = 1234
    threads: int = 1
    log_every_steps: int = 10
    checkpoint_every_minutes: float = 5.0
    checkpoint_every_steps: int = 0  # 0: by time only
    kl_anneal_start: int = 500
    kl_anneal_end: int = 3000
    binarisation_start_step: int = 1000
    # A checkpoint, or an exported acoustic folder (rebuilt from its graphs), whose weights start a new
    # run (a fine-tune); tensors whose shapes differ (e.g. a wider prosody code) start fresh. Ignored
    # once the run folder has its own checkpoint.
    init_from: str = ""
    reinitialise: list[str] = field(default_factory=list)  # parameter-name prefixes not taken from init_from
    loss_weights: LossWeights = field(default_factory=LossWeights)


@dataclass
class Config:
    data: DataConfig
    model: ModelConfig
    train: TrainConfig


def load_config(path: str | Path) -> Config:
    return read_config(path, Config)


def resolve_run_dir(run_dir: str) -> Path:
    path = Path(run_dir)
    return path if path.is_absolute() else PROJECT_ROOT / path


def loss_weights_at(step: int, config: TrainConfig) -> dict[str, float]:
    weights = asdict(config.loss_weights)
    span = max(config.kl_anneal_end - config.kl_anneal_start, 1)
    ramp = min(max((step - config.kl_anneal_start) / span, 0.0), 1.0)
    weights["kl_utterance"] *= ramp
    weights["kl_copycat"] *= ramp
    if step < config.binarisation_start_step:
        weights["alignment_binarisation"] = 0.0
    return weights


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> Distributed:
        """Joins the torchrun process group when WORLD_SIZE is set (NCCL on GPU, gloo on CPU)."""
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return cls(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        use_cuda = torch.cuda.is_available()
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(device)
        return cls(dist.get_rank(), dist.get_world_size(), device)

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def load_examples(config: Config, split: str, speakers: list[str], cache: FeatureCache, analyzer) -> list[Example]:
    return build_examples(read_manifest(config.data, split), speakers, analyzer, cache, config.data)


def speakers_of(config: DataConfig) -> list[str]:
    """Speaker names in corpus order of first appearance (the speaker ids of the model)."""
    speakers: list[str] = []
    for utterance in read_manifest(config, "train"):
        if utterance.speaker not in speakers:
            speakers.append(utterance.speaker)
    return speakers


def save_checkpoint(path: Path, model: AcousticModel, optimizer, step: int, epoch: int, batch_in_epoch: int, config: Config, speakers, stats, training_utterances: int, lineage: list[dict]) -> None:
    state = {
        "lineage": lineage,  # the runs this one was initialised from, oldest first
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "epoch": epoch,
        "batch_in_epoch": batch_in_epoch,
        "torch_rng": torch.get_rng_state(),
        "config": {"data": asdict(config.data), "model": asdict(config.model), "train": asdict(config.train)},
        "speakers": speakers,
        "stats": asdict(stats),
        "training_utterances": training_utterances,
        "total_steps": step + sum(run["steps"] for run in lineage),
        "hardware": f"{platform.machine()} {platform.processor() or ''} x{os.cpu_count()} cpus, torch {torch.__version__}".strip(),
    }
    save_atomically(path, state)


def initial_weights(path: Path, device) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """The weights of a checkpoint or of an exported acoustic folder (one with a manifest.json, e.g. the
    shipped model, whose checkpoint is lost), and the lineage of the runs that trained them, this one last."""
    if (path / MANIFEST_NAME).is_file():
        model, manifest = load_exported_model(path)
        training = manifest["training"]
        earlier = training.get("lineage", [])
        graphs_sha256 = {name: entry["sha256"] for name, entry in rebuild_sources(manifest["files"]).items()}
        run = {"exported": str(path), "graphs_sha256": graphs_sha256, "steps": training["steps"] - sum(r["steps"] for r in earlier), "config": training["config"]}
        return model.state_dict(), earlier + [run]
    state = torch.load(path, map_location=device, weights_only=False)
    return state["model"], state.get("lineage", []) + [{"checkpoint": str(path), "steps": state["step"], "config": state["config"]}]


def initialise_from(model: AcousticModel, path: Path, reinitialise: list[str], device) -> list[dict]:
    """Copies every same-shaped tensor of a checkpoint or an exported acoustic folder into the model,
    except those under the `reinitialise` prefixes; returns the run lineage."""
    weights, lineage = initial_weights(path, device)
    own = model.state_dict()
    matching = {
        name: value for name, value in weights.items()
        if name in own and own[name].shape == value.shape and not name.startswith(tuple(reinitialise))
    }  # fmt: skip
    model.load_state_dict(matching, strict=False)
    fresh = sorted(set(own) - set(matching))
    print(f"initialised from {path} ({lineage[-1]['steps']} steps); fresh tensors: {fresh or 'none'}", flush=True)
    return lineage


@torch.no_grad()
def validation_mel_loss(model: AcousticModel, examples: list[Example], stats: NormalisationStats, device) -> float:
    """Teacher-forced mel L1 on the valid split (durations from the aligner, posterior codes)."""
    model.eval()
    losses = [model.training_losses(collate(examples[i : i + 8], stats).to(device))[0]["mel"].item() for i in range(0, len(examples), 8)]
    model.train()
    return float(np.mean(losses))


def train(config: Config, max_steps: int | None = None) -> Path:
    """Runs (or resumes) training; returns the checkpoint path. max_steps caps this call (tests)."""
    from reader.frontend.analysis import Analyzer  # spaCy etc. load only when training really starts

    env = Distributed.from_environment()
    torch.set_num_threads(config.train.threads)
    torch.manual_seed(config.train.seed + env.rank)
    run_dir = resolve_run_dir(config.train.run_dir)
    checkpoint_path = run_dir / CHECKPOINT_NAME
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)

    speakers = speakers_of(config.data)
    config.model.n_speakers = len(speakers)
    analyzer, cache = Analyzer(), FeatureCache()
    # Rank 0 fills the feature cache first so the other ranks only read it.
    if not env.is_main:
        env.barrier()
    examples = load_examples(config, "train", speakers, cache, analyzer)
    valid_examples = load_examples(config, "valid", speakers, cache, analyzer) if env.is_main else []
    if env.is_main:
        env.barrier()
    if not examples:
        raise SystemExit("no usable training utterances (see the messages above)")
    stats = NormalisationStats.from_examples(examples)

    model = AcousticModel(config.model, stats).to(env.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.learning_rate, betas=(0.9, 0.98))
    step = epoch = batch_in_epoch = 0
    lineage: list[dict] = []
    if checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location=env.device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        lineage = state.get("lineage", [])
        torch.set_rng_state(state["torch_rng"])
        if env.is_main:
            print(f"resumed from {checkpoint_path} at step {step}", flush=True)
    else:
        if config.train.init_from:
            lineage = initialise_from(model, resolve_run_dir(config.train.init_from), config.train.reinitialise, env.device)
        if env.is_main:
            print(f"training {count_parameters(model):,} parameters on {len(examples)} utterances, speakers {speakers}", flush=True)
    trainer = DistributedDataParallel(model) if env.world_size > 1 else model

    frame_counts = [e.n_frames for e in examples]
    last_checkpoint_time = time.monotonic()
    stop_at = config.train.steps if max_steps is None else min(config.train.steps, step + max_steps)
    log_file = open(run_dir / LOG_NAME, "a", encoding="utf-8") if env.is_main else None
    step_started = time.monotonic()
    while step < stop_at:
        # Every rank derives the same epoch order from the seed, then takes its share of the batches.
        batches = length_bucketed_batches(frame_counts, config.data.max_frames_per_batch, np.random.default_rng(config.train.seed + epoch))
        while len(batches) < env.world_size:  # a tiny data set still gives every rank a batch
            batches = batches + batches
        batches = batches[: len(batches) // env.world_size * env.world_size]
        while batch_in_epoch < len(batches) // env.world_size and step < stop_at:
            indices = batches[batch_in_epoch * env.world_size + env.rank]
            batch = collate([examples[i] for i in indices], stats).to(env.device)
            for group in optimizer.param_groups:
                group["lr"] = config.train.learning_rate * min(1.0, (step + 1) / max(config.train.warmup_steps, 1))
            losses, _ = trainer(batch)
            weights = loss_weights_at(step, config.train)
            total = sum(weights[name] * value for name, value in losses.items())
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.gradient_clip)
            optimizer.step()
            step += 1
            batch_in_epoch += 1

            if env.is_main and (step % config.train.log_every_steps == 0 or step == stop_at):
                seconds_per_step = (time.monotonic() - step_started) / config.train.log_every_steps
                record = {"step": step, "epoch": epoch, "total": total.item(), **{k: round(v.item(), 5) for k, v in losses.items()}, "s_per_step": round(seconds_per_step, 3), "time": time.time()}
                print(json.dumps(record), flush=True)
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                step_started = time.monotonic()
            due_by_time = time.monotonic() - last_checkpoint_time > 60 * config.train.checkpoint_every_minutes
            due_by_steps = config.train.checkpoint_every_steps and step % config.train.checkpoint_every_steps == 0
            if env.is_main and (due_by_time or due_by_steps or step == stop_at):
                save_checkpoint(checkpoint_path, model, optimizer, step, epoch, batch_in_epoch, config, speakers, stats, len(examples), lineage)
                record = {"step": step, "checkpoint": str(checkpoint_path), "valid_mel_l1": validation_mel_loss(model, valid_examples, stats, env.device) if valid_examples else None}
                print(json.dumps(record), flush=True)
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                last_checkpoint_time = time.monotonic()
        if batch_in_epoch >= len(batches) // env.world_size:
            epoch, batch_in_epoch = epoch + 1, 0
    if log_file:
        log_file.close()
    env.barrier()
    if env.world_size > 1:
        dist.destroy_process_group()
    return checkpoint_path


def main(argv: list[str] | None = None) -> None:
    run_training(__doc__.split("\n")[0], "[data], [model], [train]", load_config, train, argv)


if __name__ == "__main__":
    main()
