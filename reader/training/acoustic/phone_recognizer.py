"""A small CTC phone recogniser over the whole phoneme inventory, for the transcript check of `reader transfer` (issue 17).

    python -m reader.training.acoustic.phone_recognizer --config configs/phone_recognizer.toml             # train (resumes), export
    python -m reader.training.acoustic.phone_recognizer --config configs/phone_recognizer.toml --export-only [--ship]
    python -m reader.training.acoustic.phone_recognizer --config configs/phone_recognizer.toml --evaluate   # dev-set scores only

Inputs: the runtime's log-mel of each recording (clips.py), normalised per clip and mel bin inside the
graph; targets: the transcript's phonemes, stress dropped. Trained on the train splits without the
holdout speakers (never a test clip); with `nonspeech_share`, generated non-speech (nonspeech.py) joins
each batch with an empty CTC target. The export writes <run_dir>/phone_recognizer.onnx and its
calibration (phone_check_calibration.py); --ship sets the acoustic manifest's `phone_check` block and
`files` entry. Why and how: docs/phone-check.md and docs/training.md#phone-recogniser.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from reader_runtime.features import FeatureSettings
from reader_runtime.manifest import file_entry
from reader_runtime.phone_check import ctc_frames_needed
from torch import nn

from reader.model_inputs import ARPABET, SYMBOLS
from reader.paths import models_dir

from ..checkpoints import RunClock, load_checkpoint, save_atomically
from ..cli import log_line, run_stages, stage_parser
from ..config import load_config
from ..manifests import load_manifest, save_manifest
from ..onnx_export import trace_to_onnx
from .clips import Clip, ClipCache, ClipRunConfig, TrainingBatches, augment, feature_settings, load_clips

# Recogniser output classes: 0 = CTC blank, 1.. = ARPABET in order.
PHONES = ARPABET
PHONE_OF_SYMBOL = {SYMBOLS.index(phone): index + 1 for index, phone in enumerate(PHONES)}


@dataclass
class RecognizerConfig(ClipRunConfig):
    acoustic_models: str = ""  # the acoustic folder (features settings; --ship target); empty: <models_dir>/acoustic
    run_dir: str = "checkpoints/phone_recognizer"
    channels: int = 256  # convolution front (stride 2: 43 frames/s) width
    conv_layers: int = 3
    kernel_size: int = 5
    gru_hidden: int = 192  # per direction
    gru_layers: int = 1
    dropout: float = 0.15
    steps: int = 6000
    warmup_steps: int = 300
    learning_rate: float = 1.5e-3
    min_learning_rate: float = 5e-5
    weight_decay: float = 1e-2
    max_frames_per_batch: int = 6000
    augment_probability: float = 0.6  # ClipRunConfig's voice/room augmentation, then SpecAugment's masks
    augment_warp: float = 0.12
    time_masks: int = 2
    time_mask_frames: int = 20
    mel_masks: int = 2
    mel_mask_bins: int = 10
    gradient_clip: float = 5.0
    log_every_steps: int = 50
    # non-speech clips (nonspeech.py) with an empty CTC target, as this share of each batch's clips (0: none)
    nonspeech_share: float = 0.0
    nonspeech_kinds: list[str] = field(default_factory=list)  # of nonspeech.TRAIN_KINDS; empty: all of them
    # a finished run's checkpoint.pt whose weights start a new run (fresh optimiser and schedule), used
    # only while run_dir has no checkpoint of its own
    init_from: str = ""


# --- model ----------------------------------------------------------------------------------------------


def output_lengths(frame_lengths: torch.Tensor) -> torch.Tensor:
    """Frames after the stride-2 first convolution (kernel 3, padding 1): ceil(T / 2)."""
    return (frame_lengths + 1) // 2


class PhoneRecognizer(nn.Module):
    """log-mel (B, T, n_mels) -> (B, ceil(T/2), 1 + len(PHONES)) CTC log-probabilities (class 0 = blank).

    Per-clip mean/deviation normalisation of each mel bin, a stride-2 convolution, residual 1-D
    convolutions, a bidirectional GRU. Padding frames are zeroed after every convolution, so a padded
    batch gives each clip what the one-clip graph gives it."""

    def __init__(self, config: RecognizerConfig, n_mels: int = 80):
        super().__init__()
        self.subsample = nn.Conv1d(n_mels, config.channels, 3, stride=2, padding=1)
        self.convs = nn.ModuleList(nn.Conv1d(config.channels, config.channels, config.kernel_size, padding=config.kernel_size // 2) for _ in range(config.conv_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(config.channels) for _ in range(config.conv_layers))
        self.dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(config.channels, config.gru_hidden, num_layers=config.gru_layers, batch_first=True, bidirectional=True, dropout=config.dropout if config.gru_layers > 1 else 0.0)
        self.output = nn.Linear(2 * config.gru_hidden, 1 + len(PHONES))

    def forward(self, log_mel: torch.Tensor, frame_lengths: torch.Tensor | None = None) -> torch.Tensor:
        batch, frames, _ = log_mel.shape
        if frame_lengths is None:
            frame_lengths = torch.full((batch,), frames, dtype=torch.long)
        mask = (torch.arange(frames)[None, :] < frame_lengths[:, None]).unsqueeze(-1).to(log_mel.dtype)
        count = mask.sum(1, keepdim=True)
        mean = (log_mel * mask).sum(1, keepdim=True) / count
        deviation = torch.sqrt((((log_mel - mean) * mask) ** 2).sum(1, keepdim=True) / count + 1e-4)
        x = ((log_mel - mean) / deviation * mask).transpose(1, 2)
        lengths = output_lengths(frame_lengths)
        sub_mask = (torch.arange(x.shape[-1] // 2 + x.shape[-1] % 2)[None, :] < lengths[:, None]).unsqueeze(1).to(x.dtype)
        x = torch.relu(self.subsample(x)) * sub_mask
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = x + self.dropout(torch.relu(norm(conv(x).transpose(1, 2)).transpose(1, 2))) * sub_mask
        x = x.transpose(1, 2)
        if self.training or batch > 1:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            x, _ = self.gru(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(x, batch_first=True, total_length=sub_mask.shape[-1])
        else:
            x, _ = self.gru(x)
        return torch.log_softmax(self.output(self.dropout(x)), dim=-1)


def phone_targets(symbol_ids: np.ndarray) -> np.ndarray:
    """The transcript's phones (1-based PHONES indices) from its token symbols: <bos> and breaks dropped."""
    return np.asarray([PHONE_OF_SYMBOL[int(s)] for s in symbol_ids if int(s) in PHONE_OF_SYMBOL], np.int64)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- training -------------------------------------------------------------------------------------------


def spec_augment(log_mel: np.ndarray, config: RecognizerConfig, rng: np.random.Generator) -> np.ndarray:
    """SpecAugment's time and mel-band masks, filled with the clip's mean (what normalisation maps to 0)."""
    masked = log_mel.copy()
    fill = float(log_mel.mean())
    for _ in range(config.time_masks):
        width = int(rng.integers(0, config.time_mask_frames + 1))
        start = int(rng.integers(0, max(1, masked.shape[0] - width)))
        masked[start : start + width] = fill
    for _ in range(config.mel_masks):
        width = int(rng.integers(0, config.mel_mask_bins + 1))
        start = int(rng.integers(0, max(1, masked.shape[1] - width)))
        masked[:, start : start + width] = fill
    return masked


def collate(log_mels: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
    frames = torch.tensor([m.shape[0] for m in log_mels])
    padded = np.zeros((len(log_mels), int(frames.max()), log_mels[0].shape[1]), np.float32)
    for row, log_mel in enumerate(log_mels):
        padded[row, : log_mel.shape[0]] = log_mel
    return {
        "log_mel": torch.from_numpy(padded), "frame_lengths": frames,
        "targets": torch.from_numpy(np.concatenate(targets)), "target_lengths": torch.tensor([t.size for t in targets]),
    }  # fmt: skip


def ctc_loss(model: PhoneRecognizer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """CTC loss summed over the batch per target phone (at least one). A clip with an empty target
    (non-speech) costs -log p(blank) summed over its frames: CTC's one path of all blanks."""
    log_probs = model(batch["log_mel"], batch["frame_lengths"])
    return nn.functional.ctc_loss(
        log_probs.transpose(0, 1), batch["targets"], output_lengths(batch["frame_lengths"]), batch["target_lengths"],
        blank=0, reduction="sum", zero_infinity=True,
    ) / batch["target_lengths"].sum().clamp(min=1)  # fmt: skip


def trainable(clip: Clip) -> bool:
    """CTC needs a frame per phone and one between repeats (at the recogniser's half rate)."""
    phones = phone_targets(clip.tokens["symbol_ids"])
    return phones.size > 0 and ctc_frames_needed(phones) <= (clip.n_frames + 1) // 2


def nonspeech_clips(batch: list[Clip], config: RecognizerConfig, settings: FeatureSettings, rng: np.random.Generator) -> list[np.ndarray]:
    """Log-mels of generated non-speech (nonspeech.TRAIN_KINDS) to add to a batch of speech clips: on
    average nonspeech_share of the batch's clips are non-speech, each as long as one of its speech clips."""
    from .nonspeech import TRAIN_KINDS, nonspeech_log_mel

    if config.nonspeech_share <= 0 or not batch:
        return []
    expected = len(batch) * config.nonspeech_share / (1 - config.nonspeech_share)
    count = int(expected) + int(rng.random() < expected - int(expected))
    lengths = [batch[int(i)].n_frames for i in rng.integers(0, len(batch), count)]
    kinds = config.nonspeech_kinds or TRAIN_KINDS
    return [nonspeech_log_mel(str(rng.choice(kinds)), rng, (frames - 0.5) * settings.hop_length / settings.sample_rate, settings) for frames in lengths]


def learning_rate(config: RecognizerConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to min_learning_rate at `steps`."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    return config.min_learning_rate + 0.5 * (config.learning_rate - config.min_learning_rate) * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def clip_log_probs(model: PhoneRecognizer, log_mel: np.ndarray) -> np.ndarray:
    model.eval()
    return model(torch.from_numpy(np.asarray(log_mel, np.float32))[None])[0].numpy()


def phone_error_rate(model: PhoneRecognizer, clips: list[Clip]) -> float:
    """Edit distance of the greedy phones from the transcript's, over all the clips' phones."""
    from reader_runtime.phone_check import edit_distance, greedy_phones

    errors = length = 0
    for clip in clips:
        target = phone_targets(clip.tokens["symbol_ids"])
        errors += edit_distance(greedy_phones(clip_log_probs(model, clip.log_mel)), target)
        length += target.size
    return errors / max(1, length)


def acoustic_folder(config: RecognizerConfig) -> Path:
    return Path(config.acoustic_models) if config.acoustic_models else models_dir() / "acoustic"


def train(config: RecognizerConfig, log=print) -> Path:
    """Train (resuming from <run_dir>/checkpoint.pt if there is one); returns the checkpoint path."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    checkpoint_path = Path(config.run_dir) / "checkpoint.pt"
    cache = ClipCache(feature_settings(acoustic_folder(config)))
    train_clips = [c for c in load_clips(config, "train", cache, holdout=False) if trainable(c)]
    valid_clips = [c for c in load_clips(config, "valid", cache) if trainable(c)]
    model = PhoneRecognizer(config, cache.settings.n_mels)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    state = {"step": 0, "epoch": 0, "config": asdict(config), "history": [], "train_clips": len(train_clips)}
    if checkpoint_path.is_file():
        stored = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        model.load_state_dict(stored["model"])
        optimiser.load_state_dict(stored["optimiser"])
        state.update({k: stored[k] for k in ("step", "epoch", "position", "history", "init_from") if k in stored})
        log(f"resumed from {checkpoint_path} at step {state['step']}")
    elif config.init_from:
        stored = torch.load(config.init_from, map_location="cpu", weights_only=False)
        model.load_state_dict(stored["model"])
        state["init_from"] = {"checkpoint": config.init_from, "step": stored.get("step"), "history": stored.get("history", [])[-1:]}
        log(f"weights from {config.init_from} (step {stored.get('step')}); a new run of {config.steps} steps")
    log(f"{len(train_clips)} train clips, {len(valid_clips)} valid clips, {parameter_count(model):,} parameters")
    batches = TrainingBatches(train_clips, config, state, state.get("position", 0))  # the epoch's batches again, and where it was
    clock = RunClock(config)
    running: list[float] = []
    while state["step"] < config.steps:
        batch, rng = batches.next(), batches.rng
        model.train()
        log_mels, targets = [], []
        for clip in batch:
            log_mel = augment(clip.log_mel, config, rng) if rng.random() < config.augment_probability else clip.log_mel
            log_mels.append(spec_augment(log_mel, config, rng))
            targets.append(phone_targets(clip.tokens["symbol_ids"]))
        for log_mel in nonspeech_clips(batch, config, cache.settings, rng):  # empty targets: all blank
            log_mel = augment(log_mel, config, rng) if rng.random() < config.augment_probability else log_mel
            log_mels.append(spec_augment(log_mel, config, rng))
            targets.append(np.zeros(0, np.int64))
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(config, state["step"])
        loss = ctc_loss(model, collate(log_mels, targets))
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.gradient_clip)
        optimiser.step()
        state["step"] += 1
        running.append(float(loss.detach()))
        if state["step"] % config.log_every_steps == 0:
            log(f"step {state['step']} ctc {np.mean(running):.4f} lr {learning_rate(config, state['step']):.2e} ({clock.elapsed():.0f} s)")
            running = []
        save_now, stop = clock.checkpoint_due(state["step"])
        if save_now:
            per = phone_error_rate(model, valid_clips)
            state["history"].append({"step": state["step"], "valid_per": round(per, 4)})
            log(f"step {state['step']} valid PER {per:.4f}")
            save_atomically(checkpoint_path, {"model": model.state_dict(), "optimiser": optimiser.state_dict(), **state, "position": batches.position})
            clock.checkpointed()
            if stop:
                break
    return checkpoint_path


# --- export ---------------------------------------------------------------------------------------------


def export_graph(model: PhoneRecognizer, path: Path, n_mels: int = 80) -> Path:
    """phone_recognizer.onnx: log_mel (1, frames, n_mels) -> log_probs (1, ceil(frames / 2), 1 + len(PHONES)).

    The weights are rounded to float16 (in the model too, so that the graph computes what the model
    now does) and stored so, each cast to float32 in the graph: half the file (6.3 -> 3.2 MB), and the
    check's scores on the development set do not move."""
    model.eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.half().float())
    example = torch.randn(1, 90, n_mels, generator=torch.Generator().manual_seed(0))
    trace_to_onnx(model, (example,), path, ["log_mel"], ["log_probs"], {"log_mel": {1: "frames"}, "log_probs": {1: "steps"}})
    store_weights_as_float16(path)
    return path


def store_weights_as_float16(path: Path, min_elements: int = 256) -> None:
    """Every float32 initializer of at least min_elements values stored as float16 and cast back to
    float32 by a Cast node under its old name (the values are already float16-exact: no change)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph_model = onnx.load(str(path))
    graph = graph_model.graph
    casts, kept = [], []
    for initializer in graph.initializer:
        if initializer.data_type == TensorProto.FLOAT and np.prod(initializer.dims) >= min_elements:
            kept.append(numpy_helper.from_array(numpy_helper.to_array(initializer).astype(np.float16), initializer.name + "_float16"))
            casts.append(helper.make_node("Cast", [initializer.name + "_float16"], [initializer.name], to=TensorProto.FLOAT))
        else:
            kept.append(initializer)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(graph_model)
    onnx.save(graph_model, str(path))


def load_trained(config: RecognizerConfig, n_mels: int = 80) -> tuple[PhoneRecognizer, dict]:
    return load_checkpoint(Path(config.run_dir) / "checkpoint.pt", lambda _: PhoneRecognizer(config, n_mels))


def export(config: RecognizerConfig, score: str, ship: bool = False, log=print) -> Path:
    """<run_dir>/phone_recognizer.onnx and <run_dir>/phone_check.json (the manifest block); with ship,
    the graph is copied into the acoustic folder and the manifest's `phone_check` block and `files` entry set."""
    torch.set_num_threads(config.threads)
    acoustic = acoustic_folder(config)
    settings = feature_settings(acoustic)
    model, stored = load_trained(config, settings.n_mels)
    run_dir = Path(config.run_dir)
    graph = export_graph(model, run_dir / "phone_recognizer.onnx", settings.n_mels)
    from reader_runtime.session import SessionOptions, load_session

    clip = load_clips(config, "valid", ClipCache(settings))[0]
    (reference,) = load_session(graph, SessionOptions(intra_op_threads=1, inter_op_threads=1)).run(None, {"log_mel": clip.log_mel[None]})
    difference = float(np.max(np.abs(reference[0] - clip_log_probs(model, clip.log_mel))))
    log(f"exported {graph} ({graph.stat().st_size:,} bytes, {parameter_count(model):,} parameters): max |torch - onnx| {difference:.2e}")
    if difference > 1e-3:
        raise RuntimeError(f"the exported phone recogniser differs from the trained one (max difference {difference})")
    from .phone_check_calibration import calibrate, development_evidence, evaluate

    evidence = development_evidence(graph, acoustic, config)
    block = calibrate(evidence, config, score)
    block["development"] = evaluate(evidence, log)  # what chose the score: every kind (and the aligner's cost)
    share = stored["config"].get("nonspeech_share", 0.0)
    nonspeech_note = f"; generated non-speech with empty targets (all blank) as {share:g} of each batch's clips" if share else ""
    block["training"] = {
        "module": "reader.training.acoustic.phone_recognizer",
        "corpora": list(config.corpora),
        "split": "train, without the unheard speakers",
        "utterances": stored.get("train_clips"),
        "steps": stored["step"],
        "parameters": parameter_count(model),
        "loss": "CTC over the front end's phonemes (stress dropped)" + nonspeech_note,
        **({"init_from": stored["init_from"]} if stored.get("init_from") else {}),
        "valid_history": stored.get("history", [])[-3:],
        "config": stored["config"],
        "hardware": f"CPU, {config.threads} thread(s)",
    }
    (run_dir / "phone_check.json").write_text(json.dumps(block, indent=2) + "\n", encoding="utf-8")
    log(f"calibration: {json.dumps(block['calibration'])} threshold {block['score_threshold']}")
    if ship:
        shutil.copy2(graph, acoustic / graph.name)
        manifest = load_manifest(acoustic)
        manifest["files"]["phone_recognizer"] = file_entry(acoustic / graph.name)
        manifest["phone_check"] = block
        save_manifest(acoustic, manifest)
        log(f"shipped into {acoustic}")
    return graph


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(
        "Train, evaluate and export the CTC phone recogniser of the transcript check", "configs/phone_recognizer.toml",
        ship_help="copy the graph into the acoustic folder and set its manifest entries",
    )  # fmt: skip
    parser.add_argument("--evaluate", action="store_true", help="only score the development set with every score kind (exports the graph first)")
    parser.add_argument(
        "--score", default="ctc_gap_per_phone",
        help="the reader_runtime.phone_check score kind to calibrate and ship (chosen on the development set, --evaluate, and on noise: see runtime/phone_check.py)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    config = load_config(args.config, RecognizerConfig)
    if args.evaluate:
        from .phone_check_calibration import development_evidence, evaluate

        torch.set_num_threads(config.threads)
        settings = feature_settings(acoustic_folder(config))
        graph = export_graph(load_trained(config, settings.n_mels)[0], Path(config.run_dir) / "phone_recognizer.onnx", settings.n_mels)
        evaluate(development_evidence(graph, acoustic_folder(config), config), log_line)
        return
    run_stages(args, lambda: train(config, log_line), lambda: export(config, args.score, ship=args.ship, log=log_line))


if __name__ == "__main__":
    main()
