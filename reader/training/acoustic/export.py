"""Export a trained acoustic checkpoint to ONNX for the runtime, with a manifest.

    python -m reader.training.acoustic.export --checkpoint checkpoints/acoustic_small/checkpoint.pt

Writes text_to_mel.onnx, utterance_encoder.onnx, copycat_encoder.onnx and aligner.onnx (batch of one,
any number of tokens and frames, opset 17) and manifest.json to exported_models/acoustic/; the
aligner's transcript-mismatch threshold is calibrated here on the valid clips. load_exported_model
reads the torch model back from such a folder's graphs (for fine-tunes). The graphs and the manifest:
docs/training.md#acoustic-model-export.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from reader_runtime.features import FeatureSettings
from reader_runtime.manifest import file_entry
from reader_runtime.manifest import read_manifest as read_model_manifest
from torch import nn

from reader.model_inputs import SYMBOLS
from reader.paths import models_dir

from ..manifests import save_manifest
from ..checkpoints import load_checkpoint
from ..onnx_export import OPSET, trace_to_onnx
from ..onnx_weights import weights_from_graph
from .decoder_split import split as split_decoder
from .data import DataConfig, Example, FeatureCache, NormalisationStats, build_examples, read_manifest
from .model import AcousticModel, ModelConfig

FORMAT_VERSION = 1
TOKEN_INPUTS = ("symbol_ids", "stress_ids", "word_position_ids", "break_ids")
INPUT_CONVENTIONS = {
    "batch": "1; token arrays are int64 (1, N) from reader.model_inputs; speaker_id int64 (1,)",
    "utterance_embedding": "float32 (1, E): a speaker centroid from this manifest, a selected training embedding, or utterance_encoder output",
    "prosody_codes": "float32 (1, N, C); used only where prosody_code_mask is 1",
    "prosody_code_mask": "float32 (1, N): 1 = take prosody_codes (e.g. from copycat_encoder), 0 = predict from text",
    "duration_override": "float32 (1, N) frames: >= 0 replaces the predicted duration (0 allowed, e.g. no pause), < 0 (use -1) = predict",
    "f0_override": "float32 (1, N) Hz: > 0 replaces the predicted token F0, <= 0 (use 0) = predict",
    "outputs": "mel float32 (1, T, n_mels) natural-log mel; durations int64 (1, N) frames; f0 float32 (1, N) Hz per token",
    "copycat_encoder.durations": "int64 (1, N) frames per token of the reference, summing to its frame count (from forced alignment)",
    "aligner": "token arrays (1, N) + log_mel (1, T, n_mels) -> log_probs (1, T, N) (soft alignment + prior); durations by monotonic alignment search (runtime/aligner.py)",
}


class MethodGraph(nn.Module):
    """One method of the AcousticModel as a graph (text_to_mel: synthesise; utterance_encoder:
    reference_utterance_embedding; copycat_encoder: reference_prosody_codes); every graph wraps the
    model as `model`, the prefix of its initializers' names."""

    def __init__(self, model: AcousticModel, method: str):
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, *inputs):
        return getattr(self.model, self.method)(*inputs)


class AlignerGraph(nn.Module):
    """Token features + a recording's log-mel -> (1, T, N) alignment log-probabilities (the trained soft
    alignment plus its beta-binomial prior), for forced alignment of real recordings at run time.

    `model` is anything with the AcousticModel's `embedding` (TokenEmbedding) and `aligner` (Aligner):
    the AcousticModel itself, or aligner_finetune's AlignerModel rebuilt from an exported aligner."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, symbol_ids, stress_ids, word_position_ids, break_ids, log_mel):
        embeddings = self.model.embedding(symbol_ids, stress_ids, word_position_ids, break_ids)
        # Lengths computed from the inputs (not read as Python ints) so that they stay dynamic in the graph.
        text_lengths = torch.ones_like(symbol_ids).sum(1)
        frame_lengths = torch.ones_like(log_mel[..., 0], dtype=torch.long).sum(1)
        return self.model.aligner(embeddings, log_mel, text_lengths, frame_lengths)


def load_model(checkpoint_path: str | Path) -> tuple[AcousticModel, dict]:
    return load_checkpoint(checkpoint_path, lambda state: AcousticModel(ModelConfig(**state["config"]["model"]), NormalisationStats(**state["stats"])))


def rebuild_sources(files: dict) -> dict[str, dict]:
    """The manifest `files` entries that hold the AcousticModel's weights between them: its three graphs
    and the aligner trained with the decoder (`joint_aligner` where a folder keeps it beside a
    fine-tuned `aligner`, whose embedding tables are its own)."""
    aligner = "joint_aligner" if "joint_aligner" in files else "aligner"
    return {name: files[name] for name in ("text_to_mel", "utterance_encoder", "copycat_encoder", aligner)}


def load_exported_model(folder: Path) -> tuple[AcousticModel, dict]:
    """The AcousticModel rebuilt from an exported folder's graphs (the shipped model's checkpoint is
    lost), and the folder's manifest. The architecture is the manifest's training config; every graph
    wraps the model as `model`. Raises ValueError where the graphs do not hold exactly the model's
    tensors, or two graphs disagree on one they share (the token embedding, text encoder, speakers)."""
    manifest = read_model_manifest(folder, "acoustic", FORMAT_VERSION).data  # also checks each file's sha256
    config = ModelConfig(**manifest["training"]["config"]["model"])
    # The manifest leaves log_mel_mean out; the utterance encoder's buffer of it is read back from its graph.
    model = AcousticModel(config, NormalisationStats(**manifest["normalisation"] | {"log_mel_mean": [0.0] * config.n_mels}))
    state, graph_of = {}, {}
    for entry in rebuild_sources(manifest["files"]).values():
        for name, value in weights_from_graph(folder / entry["file"]).items():
            if name in state and not torch.equal(state[name], value):
                raise ValueError(f"{folder}: {name} differs between {graph_of[name]} and {entry['file']}")
            state[name], graph_of[name] = value, entry["file"]
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    misshapen = sorted(f"{name} {tuple(state[name].shape)} (model {tuple(own[name].shape)})" for name in set(own) & set(state) if own[name].shape != state[name].shape)
    if missing or unexpected or misshapen:
        # Missing ones can also be initializers the exporter shared with an identical one (an untrained model's).
        raise ValueError(f"{folder}: its graphs do not fit the manifest's architecture: missing {missing}, unexpected {unexpected}, other shapes {misshapen}")
    model.load_state_dict(state)
    return model.eval(), manifest


def example_inputs(model: AcousticModel, n_tokens: int = 12, n_frames: int = 60) -> dict[str, torch.Tensor]:
    """Dummy inputs that fix the graphs' ranks and dtypes (lengths stay dynamic)."""
    config = model.config
    generator = torch.Generator().manual_seed(0)
    tokens = {name: torch.randint(1, 4, (1, n_tokens), generator=generator) for name in TOKEN_INPUTS}
    return {
        **tokens,
        "speaker_id": torch.zeros(1, dtype=torch.long),
        "utterance_embedding": torch.zeros(1, config.utterance_embedding_dim),
        "prosody_codes": torch.zeros(1, n_tokens, config.prosody_code_dim),
        "prosody_code_mask": torch.zeros(1, n_tokens),
        "duration_override": -torch.ones(1, n_tokens),
        "f0_override": torch.zeros(1, n_tokens),
        "log_mel": torch.randn(1, n_frames, config.n_mels, generator=generator),
        "durations": torch.full((1, n_tokens), n_frames // n_tokens, dtype=torch.long),
    }


TEXT_TO_MEL_INPUTS = (*TOKEN_INPUTS, "speaker_id", "utterance_embedding", "prosody_codes", "prosody_code_mask", "duration_override", "f0_override")
COPYCAT_INPUTS = ("log_mel", *TOKEN_INPUTS, "speaker_id", "durations")
ALIGNER_INPUTS = (*TOKEN_INPUTS, "log_mel")
ALIGNER_OUTPUTS = ("log_probs",)


def _export(module: nn.Module, inputs: dict, input_names, output_names, dynamic_axes, path: Path) -> None:
    trace_to_onnx(module, tuple(inputs[name] for name in input_names), path, input_names, output_names, dynamic_axes, OPSET)


def export_onnx(model: AcousticModel, out_dir: Path) -> dict[str, Path]:
    """The four graphs under out_dir; returns their paths by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = example_inputs(model)
    token_axes = {name: {1: "tokens"} for name in (*TOKEN_INPUTS, "prosody_codes", "prosody_code_mask", "duration_override", "f0_override", "durations")}
    paths = {name: out_dir / f"{name}.onnx" for name in ("text_to_mel", "utterance_encoder", "copycat_encoder", "aligner")}
    _export(
        MethodGraph(model, "synthesise"), inputs, TEXT_TO_MEL_INPUTS, ("mel", "durations", "f0"),
        {**{k: v for k, v in token_axes.items() if k in TEXT_TO_MEL_INPUTS}, "mel": {1: "frames"}, "durations": {1: "tokens"}, "f0": {1: "tokens"}},
        paths["text_to_mel"],
    )  # fmt: skip
    _export(MethodGraph(model, "reference_utterance_embedding"), inputs, ("log_mel",), ("utterance_embedding",), {"log_mel": {1: "frames"}}, paths["utterance_encoder"])
    _export(
        MethodGraph(model, "reference_prosody_codes"), inputs, COPYCAT_INPUTS, ("prosody_codes",),
        {**{k: v for k, v in token_axes.items() if k in COPYCAT_INPUTS}, "log_mel": {1: "frames"}, "prosody_codes": {1: "tokens"}},
        paths["copycat_encoder"],
    )  # fmt: skip
    export_aligner(model, paths["aligner"])
    return paths


def export_aligner(model: nn.Module, path: Path, n_mels: int | None = None) -> Path:
    """aligner.onnx alone, from anything AlignerGraph takes (an AcousticModel or an AlignerModel)."""
    generator = torch.Generator().manual_seed(0)
    n_mels = n_mels or model.config.n_mels
    inputs = {name: torch.randint(1, 4, (1, 12), generator=generator) for name in TOKEN_INPUTS}
    inputs["log_mel"] = torch.randn(1, 60, n_mels, generator=generator)
    dynamic_axes = {**{name: {1: "tokens"} for name in TOKEN_INPUTS}, "log_mel": {1: "frames"}, **{name: {1: "frames", 2: "tokens"} for name in ALIGNER_OUTPUTS}}
    _export(AlignerGraph(model), inputs, ALIGNER_INPUTS, ALIGNER_OUTPUTS, dynamic_axes, path)
    return path


@torch.no_grad()
def speaker_centroids(model: AcousticModel, state: dict) -> dict[str, list[float]]:
    """Mean utterance embedding of each speaker's training clips (features from the cache, no text needed)."""
    data_config = DataConfig(**state["config"]["data"])
    cache = FeatureCache()
    sums: dict[str, list] = {speaker: [] for speaker in state["speakers"]}
    for utterance in read_manifest(data_config, "train"):
        features = cache.load(utterance)
        if features is not None:
            sums[utterance.speaker].append(model.reference_utterance_embedding(torch.from_numpy(features.log_mel)[None])[0].numpy())
    return {speaker: np.mean(values, axis=0).round(6).tolist() for speaker, values in sums.items() if values}


def mismatch_threshold(matched: np.ndarray, mismatched: np.ndarray) -> float:
    """The alignment-cost threshold that misclassifies the fewest calibration clips: a midpoint between two
    consecutive observed costs; of equally good ones the highest (a genuine transcript is rejected less)."""
    costs = np.sort(np.concatenate([matched, mismatched]))
    costs = costs[np.isfinite(costs)]
    candidates = (costs[1:] + costs[:-1]) / 2
    errors = (matched[None, :] > candidates[:, None]).sum(1) + (mismatched[None, :] <= candidates[:, None]).sum(1)
    return float(candidates[errors == errors.min()].max())


def calibrate_aligner(aligner_path: Path, data_config: DataConfig, unheard_speakers: Sequence[str] = ()) -> dict:
    """The manifest's `aligner` section: the transcript-mismatch threshold on the runtime's alignment cost,
    calibrated on the valid clips of every configured corpus, each aligned (with the exported graph, as
    the runtime does) to its own transcript and to the transcript of the group's next clip with other
    words (for a one-speaker corpus, the speaker's next clip). unheard_speakers: train-split speakers a
    fine-tune held out as its development set; their clips calibrate too, as a group of their own, so
    that the threshold also fits voices the aligner never heard (transfer's sources)."""
    from reader_runtime.aligner import alignment_of
    from reader_runtime.session import SessionOptions, load_session

    from reader.frontend.analysis import Analyzer

    grouped = [(u, u.corpus) for u in read_manifest(data_config, "valid")]
    if unheard_speakers:
        grouped += [(u, f"{u.corpus} (unheard train speakers)") for u in read_manifest(data_config, "train") if u.speaker in unheard_speakers]
    group_by_clip = {(u.corpus, u.utterance_id): group for u, group in grouped}
    utterances = [u for u, _ in grouped]
    speakers = sorted({u.speaker for u in utterances})
    examples = build_examples(utterances, speakers, Analyzer(), FeatureCache(), data_config)
    session = load_session(aligner_path, SessionOptions(intra_op_threads=1, inter_op_threads=1))

    def cost(inputs, log_mel: np.ndarray) -> float:
        if log_mel.shape[0] < len(inputs):
            return float("inf")  # no monotonic path: certainly not this recording's transcript
        (log_probs,) = session.run(None, {name: getattr(inputs, name)[None] for name in TOKEN_INPUTS} | {"log_mel": log_mel[None]})
        return alignment_of(log_probs[0], cost_threshold=float("nan")).cost

    def group_of(example: Example) -> str:
        return group_by_clip[(example.utterance.corpus, example.utterance.utterance_id)]

    groups = list(dict.fromkeys(group_of(e) for e in examples))
    matched, mismatched, corpus_of = [], [], []
    for group in groups:
        clips = [e for e in examples if group_of(e) == group]
        for i, example in enumerate(clips if len(clips) > 1 else []):
            others = clips[i + 1 :] + clips[:i]
            other = next((o for o in others if o.utterance.text != example.utterance.text), None)
            if other is None:
                continue
            matched.append(cost(example.inputs, example.features.log_mel))
            mismatched.append(cost(other.inputs, example.features.log_mel))
            corpus_of.append(group)
    matched, mismatched, corpus_of = np.asarray(matched), np.asarray(mismatched), np.asarray(corpus_of)
    threshold = mismatch_threshold(matched, mismatched)
    return {
        "cost_threshold": round(threshold, 4),
        "cost": "max_n log p(frame, n) - log p(frame, token on the monotonic path), prior included, averaged over frames and over tokens and the two means averaged (runtime/aligner.py); above the threshold the transcript is taken not to match",
        "calibration": calibration_record(
            {corpus: (matched[corpus_of == corpus], mismatched[corpus_of == corpus]) for corpus in groups}, threshold, data_config.corpora, unheard_speakers, "cost"
        ),
    }


def calibration_record(scored: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float, corpora: list[str], unheard_speakers: list[str], measure: str) -> dict:
    """What a manifest records of a transcript check's calibration: `scored` holds, per group of clips (a
    corpus's valid clips, or the unheard speakers' train clips), the `measure` of each clip's own
    transcript and of another clip's, and `threshold` the limit chosen from all of them."""
    matched = np.concatenate([m for m, _ in scored.values()])
    mismatched = np.concatenate([w for _, w in scored.values()])
    spread = lambda values: [round(float(np.min(values)), 4), round(float(np.median(values)), 4), round(float(np.max(values)), 4)]  # noqa: E731
    return {
        "split": "valid" + (", and train clips of the unheard speakers" if unheard_speakers else ""),
        "corpora": list(corpora),
        **({"unheard_speakers": list(unheard_speakers)} if unheard_speakers else {}),
        "clips": int(matched.size),
        "mismatched_transcript": "the transcript of the group's next clip with other words",
        f"matched_{measure}_min_median_max": spread(matched),
        f"mismatched_{measure}_min_median_max": spread(mismatched),
        "matched_accepted": round(float(np.mean(matched <= threshold)), 4),
        "mismatched_rejected": round(float(np.mean(mismatched > threshold)), 4),
        "per_corpus": {
            group: {
                "clips": int(m.size),
                "matched_accepted": round(float(np.mean(m <= threshold)), 4),
                "mismatched_rejected": round(float(np.mean(w > threshold)), 4),
            }
            for group, (m, w) in scored.items()
            if m.size
        },
    }


def write_manifest(model: AcousticModel, state: dict, paths: dict[str, Path], out_dir: Path) -> Path:
    data_config = state["config"]["data"]
    centroids = speaker_centroids(model, state)
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": "acoustic: phonemes + word/break features -> log-mel (VAE utterance embedding, CopyCat prosody codes)",
        "sample_rate": FeatureSettings().sample_rate,
        "features": asdict(FeatureSettings()) | {"mel": "natural log of Slaney-normalised mel magnitudes, floor 1e-5 (runtime/features.py)"},
        "symbols": list(SYMBOLS),
        "phoneme_set": "CMUdict ARPAbet, 39 base phonemes; vowel stress as the stress_ids feature",
        "speakers": [{"id": i, "name": name, "synthetic": False, "utterance_embedding_centroid": centroids.get(name)} for i, name in enumerate(state["speakers"])],
        "utterance_embedding_dim": model.config.utterance_embedding_dim,
        "prosody_code_dim": model.config.prosody_code_dim,
        "normalisation": state["stats"] | {"log_mel_mean": None},
        "io": INPUT_CONVENTIONS,
        "aligner": calibrate_aligner(paths["aligner"], DataConfig(**data_config)),
        "files": {name: file_entry(path) for name, path in paths.items()},
        "training": {
            "corpora": data_config["corpora"],
            "split": "train",
            "utterances": state["training_utterances"],
            "steps": state.get("total_steps", state["step"]),
            "lineage": [{key: run[key] for key in ("steps", "config", "graphs_sha256") if key in run} for run in state.get("lineage", [])],
            "config": state["config"],
            "hardware": state["hardware"],
        },
        "opset": OPSET,
    }
    return save_manifest(out_dir, manifest)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export an acoustic checkpoint to ONNX")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out-dir", help="default: <models_dir>/acoustic")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out_dir = Path(args.out_dir) if args.out_dir else models_dir() / "acoustic"
    model, state = load_model(args.checkpoint)
    paths = export_onnx(model, out_dir)
    print(write_manifest(model, state, paths, out_dir))
    split_decoder(out_dir)


if __name__ == "__main__":
    main()
