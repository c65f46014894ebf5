"""Adversarial mel post-net: sharpens the acoustic model's smooth mels before the vocoder hears them.

    python -m reader.training.acoustic.postnet --config configs/postnet.toml          # train (resumes)
    python -m reader.training.acoustic.postnet --config configs/postnet.toml --export # -> exported_models/acoustic
    python -m reader.training.acoustic.postnet --config configs/postnet.toml --calibrate-gain kathleen

A residual convolution stack trained on the model's teacher-forced mels against the recordings' (L1 +
a mel discriminator) puts back the detail a regression model smooths away. Export writes postnet.onnx
beside the acoustic model; --calibrate-gain sets a voice's residual gain in the manifest so that its
output has the recordings' spectral contrast. Why, and the measurements: docs/training.md#mel-post-net.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from reader_runtime.features import FeatureSettings
from reader_runtime.manifest import file_entry
from torch import nn

from reader.paths import cache_dir, models_dir
from reader.training.checkpoints import load_checkpoint, save_atomically
from reader.training.config import load_config
from reader.training.manifests import load_manifest, save_manifest
from reader.training.onnx_export import trace_to_onnx
from reader.training.vocoder.data import Clip, SegmentSampler, load_clips
from reader.training.vocoder.data import DataConfig as ClipConfig
from reader.training.vocoder.discriminator import ImageDiscriminator, discriminator_loss, generator_losses

GRAPH_NAME = "postnet.onnx"
MAX_GAIN_SEARCHED = 3.0


@dataclass
class DataConfig:
    corpora: list[str] = field(default_factory=lambda: ["ljspeech_longform", "kathleen_arctic"])
    segment_frames: int = 128
    batch_size: int = 16
    valid_utterances: int = 16


@dataclass
class ModelConfig:
    n_mels: int = FeatureSettings.n_mels
    channels: int = 256
    layers: int = 5
    kernel_size: int = 5

    @property
    def receptive_field_frames(self) -> int:
        return self.layers * (self.kernel_size - 1) // 2


@dataclass
class TrainConfig:
    run_dir: str = "runs/postnet"
    steps: int = 4000
    learning_rate: float = 2e-4
    discriminator_learning_rate: float = 2e-4
    discriminator_channels: int = 32
    l1_weight: float = 1.0
    adversarial_weight: float = 0.1
    feature_matching_weight: float = 0.1
    adversarial_start_step: int = 200  # the discriminator learns alone until then
    seed: int = 1234
    threads: int = 1
    log_every_steps: int = 50
    checkpoint_every_minutes: float = 3.0


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def as_dict(self) -> dict:
        return {name: asdict(getattr(self, name)) for name in ("data", "model", "train")}


class Postnet(nn.Module):
    """log-mel (B, T, n_mels) -> log-mel, as the input plus a learned residual (zero at the start)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        padding = config.kernel_size // 2
        widths = [config.n_mels] + [config.channels] * (config.layers - 1) + [config.n_mels]
        self.convs = nn.ModuleList(nn.Conv1d(a, b, config.kernel_size, padding=padding) for a, b in zip(widths[:-1], widths[1:], strict=True))
        nn.init.zeros_(self.convs[-1].weight)
        nn.init.zeros_(self.convs[-1].bias)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        x = log_mel.transpose(1, 2)
        for conv in self.convs[:-1]:
            x = F.leaky_relu(conv(x), 0.2)
        return log_mel + self.convs[-1](x).transpose(1, 2)


def segments(sampler: SegmentSampler, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(model mel, recording mel) batches of random aligned segments, clips drawn by length."""
    frames = sampler.config.segment_frames
    pairs = [(clip.gta_mel[start : start + frames], clip.log_mel[start : start + frames]) for clip, start in sampler.positions(rng)]
    return torch.from_numpy(np.stack([p[0] for p in pairs])), torch.from_numpy(np.stack([p[1] for p in pairs]))


def spectral_contrast(log_mel: np.ndarray) -> float:
    """Mean spread of a frame's log-mel across bins over the loud frames: what over-smoothing lowers."""
    energy = np.log(np.exp(log_mel).sum(1))
    loud = log_mel[energy > energy.max() - 8.0]
    return float((loud - loud.mean(1, keepdims=True)).std(1).mean())


@torch.no_grad()
def validate(postnet: Postnet, clips: list[Clip]) -> dict[str, float]:
    postnet.eval()
    l1, contrast = [], []
    for clip in clips:
        out = postnet(torch.from_numpy(clip.gta_mel)[None])[0].numpy()
        l1.append(float(np.abs(out - clip.log_mel).mean()))
        contrast.append(spectral_contrast(out) / spectral_contrast(clip.log_mel))
    postnet.train()
    return {"valid_l1": round(float(np.mean(l1)), 5), "valid_contrast_ratio": round(float(np.mean(contrast)), 4)}


def run_dir_of(config: Config) -> Path:
    path = Path(config.train.run_dir)
    return path if path.is_absolute() else cache_dir() / "postnet" / path


def clip_config(config: Config) -> ClipConfig:
    """The vocoder's clip settings for the post-net: every clip with the decoder's own teacher-forced mel."""
    data = config.data
    return ClipConfig(corpora=data.corpora, gta_share=1.0, gta_postnet=False, valid_utterances=data.valid_utterances, segment_frames=data.segment_frames, batch_size=data.batch_size)


def training_clips(config: Config, split: str) -> list[Clip]:
    return [c for c in load_clips(clip_config(config), split) if c.gta_mel is not None]


def train(config: Config, max_steps: int | None = None) -> Path:
    torch.set_num_threads(config.train.threads)
    torch.manual_seed(config.train.seed)
    run_dir = run_dir_of(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = run_dir / "checkpoint.pt"
    clips, valid = training_clips(config, "train"), training_clips(config, "valid")
    if not clips:
        raise SystemExit("no teacher-forced mels: run python -m reader.training.vocoder.gta --without-postnet first")
    sampler = SegmentSampler(clips, clip_config(config))
    postnet, discriminator = Postnet(config.model), ImageDiscriminator(config.train.discriminator_channels)
    optimizer = torch.optim.AdamW(postnet.parameters(), lr=config.train.learning_rate, betas=(0.8, 0.99))
    d_optimizer = torch.optim.AdamW(discriminator.parameters(), lr=config.train.discriminator_learning_rate, betas=(0.8, 0.99))
    rng, step = np.random.default_rng(config.train.seed), 0
    if checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        for module, key in ((postnet, "postnet"), (discriminator, "discriminator"), (optimizer, "optimizer"), (d_optimizer, "d_optimizer")):
            module.load_state_dict(state[key])
        step, rng.bit_generator.state = state["step"], state["numpy_rng"]
        print(f"resumed from {checkpoint_path} at step {step}", flush=True)
    else:
        print(f"training the post-net on {len(clips)} clips, {len(valid)} valid", flush=True)
    stop_at = config.train.steps if max_steps is None else min(config.train.steps, step + max_steps)
    weights = config.train
    last_checkpoint, started = time.monotonic(), time.monotonic()
    with open(run_dir / "log.jsonl", "a", encoding="utf-8") as log_file:

        def log(record: dict) -> None:
            print(json.dumps(record), flush=True)
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()

        while step < stop_at:
            model_mel, recorded = segments(sampler, rng)
            output = postnet(model_mel)
            real = [discriminator.judge(recorded[:, None])]
            d_loss = discriminator_loss(real, [discriminator.judge(output.detach()[:, None])])
            d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            d_optimizer.step()
            values = {"discriminator": d_loss.detach(), "l1": (output - recorded).abs().mean()}
            total = weights.l1_weight * values["l1"]
            if step >= weights.adversarial_start_step:
                values["adversarial"], values["feature_matching"] = generator_losses(real, [discriminator.judge(output[:, None])])
                total = total + weights.adversarial_weight * values["adversarial"] + weights.feature_matching_weight * values["feature_matching"]
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            step += 1
            if step % weights.log_every_steps == 0:
                log({"step": step, **{k: round(v.item(), 5) for k, v in values.items()}, "s_per_step": round((time.monotonic() - started) / weights.log_every_steps, 3)})
                started = time.monotonic()
            if time.monotonic() - last_checkpoint > 60 * weights.checkpoint_every_minutes or step == stop_at:
                state = {"postnet": postnet.state_dict(), "discriminator": discriminator.state_dict(), "optimizer": optimizer.state_dict(),
                         "d_optimizer": d_optimizer.state_dict(), "step": step, "numpy_rng": rng.bit_generator.state, "config": config.as_dict(),
                         "training_clips": len(clips)}  # fmt: skip
                save_atomically(checkpoint_path, state)
                log({"step": step, "checkpoint": str(checkpoint_path), **validate(postnet, valid)})
                last_checkpoint = time.monotonic()
    return run_dir


def load_postnet(checkpoint_path: Path) -> tuple[Postnet, dict]:
    return load_checkpoint(checkpoint_path, lambda state: Postnet(ModelConfig(**state["config"]["model"])), "postnet")


def export(checkpoint_path: Path, acoustic_dir: Path) -> Path:
    """Write postnet.onnx into an exported acoustic model's folder and record it in its manifest."""
    postnet, state = load_postnet(checkpoint_path)
    path = acoustic_dir / GRAPH_NAME
    example = (torch.randn(1, 50, postnet.config.n_mels) - 4.0,)
    trace_to_onnx(postnet, example, path, ["log_mel"], ["log_mel_out"], {"log_mel": {1: "frames"}, "log_mel_out": {1: "frames"}})
    manifest = load_manifest(acoustic_dir)
    manifest["files"]["postnet"] = file_entry(path)
    manifest["postnet"] = {
        "module": "reader.training.acoustic.postnet",
        "what": "residual convolution stack applied to every decoded mel (log_mel (1, T, n_mels) -> log_mel_out); L1 + least-squares mel discriminator",
        "trained_on": f"teacher-forced mels of this acoustic model (reader.training.vocoder.gta) against the recordings' mels, {state['training_clips']} train clips of {state['config']['data']['corpora']}",
        "steps": state["step"],
        "receptive_field_frames": postnet.config.receptive_field_frames,
        "config": state["config"],
    }
    save_manifest(acoustic_dir, manifest)
    return path


def calibrate_residual_gain(acoustic_dir: Path, clips: list[Clip]) -> tuple[float, str]:
    """(gain, how it was chosen): on the clips' teacher-forced mels (without post-net), the gain on the
    exported post-net's residual at which the output's spectral contrast, averaged over the clips, equals
    the recordings' (the smallest on a 0.05 grid that reaches it)."""
    from reader_runtime.session import SessionOptions, load_session

    session = load_session(acoustic_dir / GRAPH_NAME, SessionOptions(intra_op_threads=1, inter_op_threads=1))
    # (model mel, post-net residual, the recording's contrast), each computed once for the whole grid
    pairs = [(clip.gta_mel, session.run(None, {"log_mel": clip.gta_mel[None]})[0][0] - clip.gta_mel, spectral_contrast(clip.log_mel)) for clip in clips]

    def mean_ratio(gain: float) -> float:
        return float(np.mean([spectral_contrast(mel + gain * residual) / recorded for mel, residual, recorded in pairs]))

    grid = np.round(np.arange(1.0, MAX_GAIN_SEARCHED + 1e-9, 0.05), 2)
    gain = next((float(g) for g in grid if mean_ratio(g) >= 1.0), float(grid[-1]))
    return gain, (
        f"the smallest gain (0.05 grid from 1) at which the post-net's output has the recordings' spectral contrast on the teacher-forced mels of "
        f"{len(clips)} valid clips (contrast ratio: decoder {mean_ratio(0.0):.3f}, post-net {mean_ratio(1.0):.3f}, at the gain {mean_ratio(gain):.3f})"
    )


def calibrate_voices(config: Config, acoustic_dir: Path, voices: list[str]) -> dict[str, tuple[float, str]]:
    """calibrate_residual_gain on each named voice's valid clips (one corpus per voice)."""
    from reader.training.acoustic.data import DataConfig as CorpusConfig
    from reader.training.acoustic.data import read_manifest

    wanted, found = {v.lower() for v in voices}, {}
    for corpus in config.data.corpora:
        speaker = read_manifest(CorpusConfig(corpora=[corpus]), "valid")[0].speaker
        if speaker.lower() in wanted:
            clips = training_clips(replace(config, data=replace(config.data, corpora=[corpus], valid_utterances=0)), "valid")
            if not clips:
                raise SystemExit("no teacher-forced mels: run python -m reader.training.vocoder.gta --without-postnet first")
            found[speaker] = calibrate_residual_gain(acoustic_dir, clips)
    missing = wanted - {name.lower() for name in found}
    if missing:
        raise SystemExit(f"no corpus of {config.data.corpora} is read by {sorted(missing)}")
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="TOML file with [data], [model], [train] tables")
    parser.add_argument("--max-steps", type=int, help="stop after this many more steps (the config's total still caps)")
    parser.add_argument("--export", action="store_true", help="export the run's checkpoint instead of training")
    parser.add_argument("--checkpoint", type=Path, help="with --export: this checkpoint instead of the run's latest")
    parser.add_argument("--acoustic-dir", type=Path, help="acoustic model folder to export into (default: the shipped one)")
    parser.add_argument("--calibrate-gain", nargs="+", metavar="VOICE", help="set the exported post-net's residual gain for these voices from their valid clips (after --export)")
    args = parser.parse_args(argv)
    config = load_config(args.config, Config)
    acoustic_dir = args.acoustic_dir or models_dir() / "acoustic"
    if args.export:
        print(export(args.checkpoint or run_dir_of(config) / "checkpoint.pt", acoustic_dir))
    elif args.calibrate_gain:
        manifest = load_manifest(acoustic_dir)
        for voice, (gain, how) in calibrate_voices(config, acoustic_dir, args.calibrate_gain).items():
            manifest["postnet"].setdefault("residual_gain", {})[voice] = gain
            manifest["postnet"].setdefault("residual_gain_selection", {})[voice] = how
            print(voice, gain, how)
        save_manifest(acoustic_dir, manifest)
    else:
        train(config, args.max_steps)


if __name__ == "__main__":
    main()
