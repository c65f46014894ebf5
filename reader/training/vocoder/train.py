"""Train the vocoder from a TOML config; resumable from the run folder's latest checkpoint.

    python -m reader.training.vocoder.train --config configs/vocoder.toml

The run folder (relative paths under cache_dir()/vocoder/) holds `checkpoint.pt` (latest, written
atomically), `best.pt` (lowest valid mel L1: what export.py ships) and `log.jsonl`. No discriminator
by default, `[adversarial]` for fine-tuning, `init_from` to start from an exported vocoder.
The choices and why: docs/training.md#vocoder-training.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from reader_runtime.features import FeatureSettings

from reader.paths import cache_dir

from ..checkpoints import save_atomically
from ..cli import run_training
from ..config import load_config as read_config
from ..manifests import load_manifest
from ..onnx_weights import weights_from_graph
from .data import Clip, DataConfig, SegmentSampler, load_clips
from .discriminator import AdversarialConfig, Discriminators, discriminator_loss, generator_losses
from .losses import LossConfig, SpectralLosses
from .model import ModelConfig, VocoderGenerator, check_feature_settings, count_parameters
from .teacher import labelled_clips

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"
LOG_NAME = "log.jsonl"


@dataclass
class TrainConfig:
    run_dir: str = "runs/vocoder"
    steps: int = 10000
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    final_learning_rate_fraction: float = 0.1
    gradient_clip: float = 10.0
    seed: int = 1234
    threads: int = 1
    log_every_steps: int = 25
    checkpoint_every_minutes: float = 4.0
    checkpoint_every_steps: int = 0  # 0: by time only
    init_from: str = ""  # an exported vocoder folder (vocoder.onnx + manifest) to start from; empty: random


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    losses: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)

    def as_dict(self) -> dict:
        return {name: asdict(getattr(self, name)) for name in ("data", "model", "losses", "train", "adversarial")}



def load_config(path: str | Path) -> Config:
    return read_config(path, Config)


def resolve_run_dir(run_dir: str) -> Path:
    path = Path(run_dir)
    return path if path.is_absolute() else cache_dir() / "vocoder" / path


def learning_rate_at(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    floor = config.final_learning_rate_fraction
    return config.learning_rate * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def hardware_description(threads: int) -> str:
    return f"{platform.machine()} x{os.cpu_count()} cpus ({threads} thread{'s' if threads > 1 else ''}), torch {torch.__version__}"


def weights_from_onnx(folder: Path) -> dict[str, torch.Tensor]:
    """A VocoderGenerator state dict read back from an exported graph (export.py's SpectraGraph)."""
    return weights_from_graph(folder / "vocoder.onnx")


def load_initial_weights(model: VocoderGenerator, folder: Path) -> None:
    manifest = load_manifest(folder)
    if manifest["architecture"]["config"] != asdict(model.config):
        raise ValueError(f"init_from {folder}: its architecture {manifest['architecture']['config']} differs from the config's {asdict(model.config)}")
    state = weights_from_onnx(folder)
    missing = set(model.state_dict()) - set(state)
    if missing:  # the exporter shares identical initializers (only an untrained model has them)
        raise ValueError(f"init_from {folder}: parameters not recoverable from the graph: {sorted(missing)}")
    model.load_state_dict(state)


@torch.no_grad()
def validation_mel_l1(model: VocoderGenerator, losses: SpectralLosses, clips: list[Clip]) -> float:
    """Mean log-mel L1 of whole valid clips vocoded from their mels (and teacher-forced mels, where
    loaded) against the recordings."""
    model.eval()
    scores = []
    for clip in clips:
        for log_mel in (clip.log_mel, clip.gta_mel):
            if log_mel is None:
                continue
            generated = model.waveform(torch.from_numpy(log_mel)[None])
            target = torch.from_numpy(clip.audio[: generated.shape[1]])[None]
            scores.append((losses.log_mel(generated[:, : target.shape[1]]) - losses.log_mel(target)).abs().mean().item())
    model.train()
    return float(np.mean(scores))


class Adversary:
    """The discriminator, its optimiser and its step of training (adversarial fine-tuning)."""

    def __init__(self, config: AdversarialConfig):
        self.config = config
        self.discriminator = Discriminators(config)
        self.optimizer = torch.optim.AdamW(self.discriminator.parameters(), lr=config.learning_rate, betas=(0.8, 0.99))

    def state_dict(self) -> dict:
        return {"discriminator": self.discriminator.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])

    def losses(self, generated: torch.Tensor, target: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """Trains the discriminator one step, then returns the generator's adversarial losses (none
        before `start_step`, while the discriminator learns alone)."""
        real = self.discriminator(target)
        loss = discriminator_loss(real, self.discriminator(generated.detach()))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if step < self.config.start_step:
            return {"discriminator": loss.detach()}
        adversarial, matching = generator_losses(real, self.discriminator(generated))
        return {"discriminator": loss.detach(), "adversarial": adversarial, "feature_matching": matching}

    def total(self, values: dict[str, torch.Tensor]) -> torch.Tensor | float:
        if "adversarial" not in values:
            return 0.0
        return self.config.weight * values["adversarial"] + self.config.feature_matching_weight * values["feature_matching"]


def save_checkpoint(path: Path, model, optimizer, step: int, rng: np.random.Generator, config: Config, training_clips: int, best_valid: float, adversary: Adversary | None = None) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "numpy_rng": rng.bit_generator.state,
        "config": config.as_dict(),
        "training_clips": training_clips,
        "best_valid_mel_l1": best_valid,
        "hardware": hardware_description(config.train.threads),
    }
    if adversary is not None:
        state["adversary"] = adversary.state_dict()
    save_atomically(path, state)


def train(config: Config, max_steps: int | None = None) -> Path:
    """Runs (or resumes) training; returns the run folder. max_steps caps this call (tests)."""
    torch.set_num_threads(config.train.threads)
    torch.manual_seed(config.train.seed)
    settings = FeatureSettings()
    check_feature_settings(config.model, settings)
    run_dir = resolve_run_dir(config.train.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = run_dir / CHECKPOINT_NAME

    labels_seen = labelled_clips()
    clips = load_clips(config.data, "train", settings)
    valid_clips = load_clips(config.data, "valid", settings)
    sampler = SegmentSampler(clips, config.data, settings)
    model = VocoderGenerator(config.model)
    losses = SpectralLosses(config.losses, settings)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.learning_rate, betas=(0.8, 0.99))
    adversary = Adversary(config.adversarial) if config.adversarial.weight else None
    rng = np.random.default_rng(config.train.seed)
    step, best_valid = 0, math.inf
    if checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if adversary is not None and "adversary" in state:
            adversary.load_state_dict(state["adversary"])
        step, best_valid = state["step"], state["best_valid_mel_l1"]
        rng.bit_generator.state = state["numpy_rng"]
        print(f"resumed from {checkpoint_path} at step {step}", flush=True)
    else:
        if config.train.init_from:
            load_initial_weights(model, Path(config.train.init_from))
            print(f"starting from the weights of {config.train.init_from}", flush=True)
        print(f"training {count_parameters(model):,} parameters on {len(sampler.clips)} clips, receptive field ±{config.model.receptive_field_frames} frames", flush=True)

    stop_at = config.train.steps if max_steps is None else min(config.train.steps, step + max_steps)
    last_checkpoint_time = step_started = time.monotonic()
    with open(run_dir / LOG_NAME, "a", encoding="utf-8") as log_file:

        def log(record: dict) -> None:
            print(json.dumps(record), flush=True)
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()

        while step < stop_at:
            batch = sampler.sample(rng)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(step, config.train)
            generated = model.waveform(batch.log_mel)
            values = losses(generated, batch.audio)
            total = losses.total(values)
            if adversary is not None:
                adversarial = adversary.losses(generated, batch.audio, step)
                total = total + adversary.total(adversarial)
                values.update(adversarial)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            gradient_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.gradient_clip)
            optimizer.step()
            step += 1

            if step % config.train.log_every_steps == 0 or step == stop_at:
                seconds_per_step = (time.monotonic() - step_started) / config.train.log_every_steps
                log({"step": step, "total": round(total.item(), 5), **{k: round(v.item(), 5) for k, v in values.items()}, "grad_norm": round(gradient_norm.item(), 3), "lr": optimizer.param_groups[0]["lr"], "s_per_step": round(seconds_per_step, 3), "time": time.time()})
                step_started = time.monotonic()
            due_by_time = time.monotonic() - last_checkpoint_time > 60 * config.train.checkpoint_every_minutes
            due_by_steps = config.train.checkpoint_every_steps and step % config.train.checkpoint_every_steps == 0
            if due_by_time or due_by_steps or step == stop_at:
                valid = validation_mel_l1(model, losses, valid_clips) if valid_clips else math.inf
                improved = valid < best_valid
                best_valid = min(best_valid, valid)
                save_checkpoint(checkpoint_path, model, optimizer, step, rng, config, len(sampler.clips), best_valid, adversary)
                if improved or not (run_dir / BEST_NAME).is_file():
                    save_checkpoint(run_dir / BEST_NAME, model, optimizer, step, rng, config, len(sampler.clips), best_valid, adversary)
                log({"step": step, "checkpoint": str(checkpoint_path), "valid_mel_l1": round(valid, 5), "best": improved})
                if config.data.target == "teacher" and labelled_clips() > labels_seen:
                    # Labelling may still be running beside training: take up clips labelled since.
                    labels_seen = labelled_clips()
                    sampler = SegmentSampler(load_clips(config.data, "train", settings), config.data, settings)
                    log({"step": step, "training_clips": len(sampler.clips)})
                last_checkpoint_time = time.monotonic()
    return run_dir


def main(argv: list[str] | None = None) -> None:
    run_training(__doc__.split("\n")[0], "[data], [model], [losses], [train]", load_config, train, argv)


if __name__ == "__main__":
    main()
