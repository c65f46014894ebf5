"""Train the code predictor's variants (reader.prosody_prediction.FEATURE_SETS), everything else equal.

    python -m reader.training.code_predictor.train [--feature-sets phonemes syntax ... bert+context]
        [--steps 3000] [--models DIR]   -> cache_dir()/code_predictor/runs/<feature set>/

Each variant starts from the same initial weights (one seed, one architecture: inputs a set does not
use are zeros), sees the same batches in the same order for the same number of steps, and keeps the
weights of its lowest validation loss (the valid split of both voices). The loss is the mean squared
error to the recording's CopyCat codes (posterior means). Each run is exported to ONNX beside its
checkpoint (export.py); benchmarks/prosody_prediction.py compares them and the best is copied to
exported_models/code_predictor with `python -m reader.training.code_predictor.export --variant SET --ship`.
A few minutes per variant on one core.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from reader.paths import cache_dir, models_dir
from reader.prosody_prediction import BERT_DIM, FEATURE_SETS, uses_context

from .data import INPUT_FIELDS, ClipExample, acoustic_key, build_examples, training_utterances
from .export import CONTEXT_WEIGHTS, DEFAULT_COMPENSATION, export_run
from .model import CodePredictorNet, PredictorConfig

SEED = 1234
BATCH_SIZE = 16
LEARNING_RATE = 1e-3
VALID_EVERY_STEPS = 100


def runs_folder() -> Path:
    return cache_dir() / "code_predictor" / "runs"


def collate(examples: list[ClipExample], feature_set: str) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """(inputs, target codes, token mask), zero-padded to the longest clip."""
    width = max(len(e.codes) for e in examples)

    def padded(arrays: list[np.ndarray]) -> torch.Tensor:
        out = np.zeros((len(arrays), width, *arrays[0].shape[1:]), arrays[0].dtype)
        for i, a in enumerate(arrays):
            out[i, : len(a)] = a
        return torch.from_numpy(out)

    inputs = {name: padded([getattr(e.inputs[feature_set], name) for e in examples]) for name in INPUT_FIELDS}
    inputs["context"] = torch.from_numpy(np.stack([e.inputs[feature_set].context for e in examples]))
    inputs["speaker_id"] = torch.tensor([e.speaker_id for e in examples], dtype=torch.int64)
    mask = padded([np.ones(len(e.codes), np.float32) for e in examples])
    return inputs, padded([e.codes for e in examples]), mask


def masked_mse(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return ((predicted - target).pow(2).mean(-1) * mask).sum() / mask.sum().clamp(min=1)


def validation_loss(model: CodePredictorNet, examples: list[ClipExample], feature_set: str) -> float:
    model.eval()
    with torch.no_grad():
        inputs, target, mask = collate(examples, feature_set)
        loss = float(masked_mse(model(**inputs, token_mask=mask), target, mask))
    model.train()
    return loss


def code_statistics(model: CodePredictorNet, examples: list[ClipExample], feature_set: str) -> dict[str, list[float]]:
    """Per code dimension over the clips' tokens: the prediction's mean and std, and the recorded codes' std
    (for the variance compensation that export.py applies)."""
    model.eval()
    predicted, target = [], []
    with torch.no_grad():
        for start in range(0, len(examples), 64):
            inputs, codes, mask = collate(examples[start : start + 64], feature_set)
            valid = mask > 0
            predicted.append(model(**inputs, token_mask=mask)[valid])
            target.append(codes[valid])
    predicted, target = torch.cat(predicted), torch.cat(target)
    return {"predicted_mean": predicted.mean(0).tolist(), "predicted_std": predicted.std(0).tolist(), "recorded_std": target.std(0).tolist()}


def previous_mean(examples: list[ClipExample], feature_set: str) -> torch.Tensor:
    """The mean previous-sentence vector of the units that have one (model.py: what an absent one reads as)."""
    previous = np.stack([e.inputs[feature_set].context[:BERT_DIM] for e in examples])
    previous = previous[np.abs(previous).sum(-1) > 0]
    return torch.from_numpy(previous.mean(0)) if len(previous) else torch.zeros(BERT_DIM)


def train_variant(feature_set: str, train: list[ClipExample], valid: list[ClipExample], steps: int, models: Path, config: PredictorConfig) -> Path:
    """Trains one variant; returns its run folder (checkpoint.pt: the best weights, and log.jsonl)."""
    run_dir = runs_folder() / feature_set
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    model = CodePredictorNet(config)
    model.previous_mean.copy_(previous_mean(train, feature_set))
    # A set without context leaves its weights out, so its gradient norm (and clipping) is as before them.
    parameters = [p for name, p in model.named_parameters() if uses_context(feature_set) or name not in CONTEXT_WEIGHTS]
    optimizer = torch.optim.AdamW(parameters, lr=LEARNING_RATE, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LEARNING_RATE, total_steps=steps, pct_start=0.05)
    order = np.random.default_rng(SEED)  # the same batches, in the same order, for every variant
    best, best_step, started = float("inf"), 0, time.monotonic()
    with open(run_dir / "log.jsonl", "w", encoding="utf-8") as log:
        for step in range(1, steps + 1):
            batch = [train[i] for i in order.choice(len(train), BATCH_SIZE, replace=False)]
            inputs, target, mask = collate(batch, feature_set)
            loss = masked_mse(model(**inputs, token_mask=mask), target, mask)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            schedule.step()
            if step % VALID_EVERY_STEPS == 0 or step == steps:
                valid_loss = validation_loss(model, valid, feature_set)
                if valid_loss < best:
                    best, best_step = valid_loss, step
                    torch.save({"model": model.state_dict(), "config": asdict(config), "feature_set": feature_set, "step": step}, run_dir / "checkpoint.pt")
                log.write(json.dumps({"step": step, "train_loss": round(loss.item(), 5), "valid_loss": round(valid_loss, 5), "s": round(time.monotonic() - started, 1)}) + "\n")
                log.flush()
    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu")
    model.load_state_dict(state["model"])
    state["code_statistics"] = code_statistics(model, train, feature_set)
    torch.save(state, run_dir / "checkpoint.pt")
    summary = {
        "feature_set": feature_set,
        "steps": steps,
        "best_step": best_step,
        "valid_loss": round(best, 5),
        "train_clips": len(train),
        "valid_clips": len(valid),
        "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE,
        "seed": SEED,
        "seconds": round(time.monotonic() - started, 1),
        "acoustic_text_to_mel_sha256": acoustic_key(models),
        "config": asdict(config),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return run_dir


def main(argv: list[str] | None = None) -> None:

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feature-sets", nargs="+", choices=FEATURE_SETS, default=list(FEATURE_SETS))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variance-compensation", type=float, default=DEFAULT_COMPENSATION, help="0: none; 1: the predicted codes' spread scaled to the recorded codes'")
    parser.add_argument("--models", type=Path, default=None, help="models folder (default: the shipped one)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = args.models or models_dir()
    clips = {split: training_utterances(split) for split in ("train", "valid")}
    train, valid = (build_examples(models, clips[split], clips["train"] + clips["valid"]) for split in ("train", "valid"))
    config = PredictorConfig(n_speakers=len(json.loads((models / "acoustic" / "manifest.json").read_text(encoding="utf-8"))["speakers"]))
    for feature_set in args.feature_sets:
        run_dir = train_variant(feature_set, train, valid, args.steps, models, config)
        export_run(run_dir, compensation=args.variance_compensation)
        print(json.loads((run_dir / "summary.json").read_text(encoding="utf-8")), flush=True)


if __name__ == "__main__":
    main()
