"""Export a trained code predictor to ONNX with its manifest; `--ship` exports a variant to
exported_models/code_predictor (the engine's `--prosody predicted`).

    python -m reader.training.code_predictor.export --variant syntax [--variance-compensation 1.0]
        [--out DIR | --ship [--evidence benchmarks/results/prosody_prediction.json]]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from reader.paths import models_dir
from reader.prosody_prediction import BERT_DIM, CODE_PREDICTOR_FORMAT_VERSION, CONTEXT_DIM, FEATURE_SETS, POSITION_DIM, SYNTAX_DIM
from reader_runtime.manifest import record_files

from .model import CodePredictorNet, PredictorConfig

GRAPH_NAME = "code_predictor.onnx"
DEFAULT_COMPENSATION = 0.5  # benchmarks/results/prosody_prediction.md: half the F0-std gap back at +0.25 st RMSE; 1.0 overshoots RMSE
INPUT_NAMES = ["symbol_ids", "stress_ids", "word_position_ids", "break_ids", "speaker_id", "position", "syntax", "bert", "context"]
PER_UNIT_INPUTS = ("speaker_id", "context")  # one row per batch item; the rest have one per token
# What the network was before the context input: runs trained then load with these zeros, which is
# exactly their function (and so re-export, for format 2, unchanged).
CONTEXT_WEIGHTS = ("context.weight", "previous_mean")


def load_run(run_dir: Path) -> tuple[CodePredictorNet, dict]:
    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu")
    model = CodePredictorNet(PredictorConfig(**state["config"]))
    before_context = {name: torch.zeros_like(value) for name, value in model.state_dict().items() if name in CONTEXT_WEIGHTS}
    model.load_state_dict(before_context | state["model"])
    return model.eval(), state


def compensate(model: CodePredictorNet, statistics: dict[str, list[float]], strength: float) -> None:
    """Scale each code dimension's deviation from the predicted mean by (recorded std / predicted std) ** strength."""
    predicted_std = torch.tensor(statistics["predicted_std"]).clamp(min=1e-3)
    model.code_mean.copy_(torch.tensor(statistics["predicted_mean"]))
    model.code_scale.copy_((torch.tensor(statistics["recorded_std"]) / predicted_std) ** strength)


def export_run(run_dir: Path, out_dir: Path | None = None, compensation: float = DEFAULT_COMPENSATION) -> Path:
    """out_dir (default run_dir)/code_predictor.onnx and manifest.json from run_dir/checkpoint.pt and summary.json."""
    out_dir = out_dir or run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    model, state = load_run(run_dir)
    compensate(model, state["code_statistics"], compensation)
    n = 12
    example = (
        torch.randint(2, 40, (1, n)), torch.randint(0, 3, (1, n)), torch.randint(0, 4, (1, n)), torch.randint(0, 4, (1, n)),
        torch.zeros(1, dtype=torch.int64), torch.rand(1, n, POSITION_DIM), torch.rand(1, n, SYNTAX_DIM), torch.rand(1, n, BERT_DIM),
        torch.rand(1, CONTEXT_DIM),
    )  # fmt: skip
    tokens = {0: "batch", 1: "tokens"}
    torch.onnx.export(
        model, example, str(out_dir / GRAPH_NAME), input_names=INPUT_NAMES, output_names=["prosody_codes"], opset_version=17, dynamo=False,
        dynamic_axes={**{name: tokens for name in INPUT_NAMES if name not in PER_UNIT_INPUTS}, **{name: {0: "batch"} for name in PER_UNIT_INPUTS}, "prosody_codes": tokens},
    )  # fmt: skip
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    manifest = {
        "format_version": CODE_PREDICTOR_FORMAT_VERSION,
        "model": "code predictor: phonemes + linguistic features -> the acoustic model's phoneme-level CopyCat prosody codes (reader.prosody_prediction)",
        "feature_set": state["feature_set"],
        "acoustic_text_to_mel_sha256": summary["acoustic_text_to_mel_sha256"],
        "io": {
            "inputs": "token arrays int64 (1, N) as reader.prosody_prediction.PredictorInputs, speaker_id int64 (1,), position/syntax/bert float32 (1, N, D), context float32 (1, CONTEXT_DIM); unused features are zeros",
            "prosody_codes": "float32 (1, N, code_dim): the acoustic model's prosody_codes input (prosody_code_mask 1)",
        },
        "training": summary,
        "variance_compensation": {"strength": compensation, "code_mean": model.code_mean.tolist(), "code_scale": model.code_scale.tolist()},
        "files": {"graph": {"file": GRAPH_NAME}},
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    record_files(out_dir)
    return out_dir


def ship(run_dir: Path, compensation: float, evidence: dict | None) -> Path:
    target = export_run(run_dir, models_dir() / "code_predictor", compensation)
    if evidence is not None:
        manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
        manifest["evaluation"] = evidence
        (target / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> None:
    from .train import runs_folder

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", choices=FEATURE_SETS, required=True, help="the trained variant (cache_dir()/code_predictor/runs/<variant>)")
    parser.add_argument("--variance-compensation", type=float, default=DEFAULT_COMPENSATION)
    parser.add_argument("--out", type=Path, default=None, help="export here (default: beside the run)")
    parser.add_argument("--ship", action="store_true", help="export to exported_models/code_predictor, the engine's predictor")
    parser.add_argument("--evidence", type=Path, default=None, help="a benchmark result (JSON) to record in the manifest")
    args = parser.parse_args(argv)
    evidence = None
    if args.evidence:  # the shipped variant's rows, beside the phonemes-only and the acoustic model's own
        result = json.loads(args.evidence.read_text(encoding="utf-8"))
        evidence = {
            "command": result["command"],
            "long_form": {corpus: {name: row for name, row in rows.items() if name in (args.variant, "phonemes", "acoustic model's predictor")} for corpus, rows in result["long_form"].items()},
            "listening": result.get("listening"),
        }
    run_dir = runs_folder() / args.variant
    if args.ship:
        print("shipped", ship(run_dir, args.variance_compensation, evidence))
    else:
        print("exported", export_run(run_dir, args.out, args.variance_compensation))


if __name__ == "__main__":
    main()
