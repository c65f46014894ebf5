"""A small CTC phone recogniser over the whole phoneme inventory, for the transcript check of `reader transfer` (issue 17).

    python -m reader.training.acoustic.phone_recognizer --config configs/phone_recognizer.toml             # train (resumes), export
    python -m reader.training.acoustic.phone_recognizer --config configs/phone_recognizer.toml --export-only [--ship]
    python -m reader.training.acoustic.phone_recognizer --config configs/phone_recognizer.toml --evaluate   # dev-set scores only

The aligner's alignment cost compares each frame's tokens only among the sentence's own tokens, so it is
not a goodness-of-pronunciation measure: a frame that fits none of them well can still fit one best. A
phone recogniser's softmax is over all 39 phonemes (and the CTC blank), so how well the transcript's
phones explain the recording can be compared with how well the recogniser's own best phones do
(runtime/phone_check.py).

Inputs: the runtime's log-mel of the recording at the model rate (the aligner fine-tune's ClipCache:
read as `reader transfer` reads a source, 16-kHz audio resampled with soxr), normalised per clip and mel
bin inside the graph (mean and deviation over the clip's frames: a speaker's or a room's spectral tilt
is not a phone). Targets: the transcript's phonemes as the front end pronounces them, stress dropped
(the token symbols between <bos> and the break tokens). Trained on the train splits of the configured
corpora without the holdout speakers (the development set of unheard voices that selects the score),
never on a test clip (read_manifest refuses the test split). With `nonspeech_share`, generated
non-speech (reader/training/acoustic/nonspeech.py: noises, hum, tones, music, clicks, near-silence)
joins each batch with an empty CTC target, so that the recogniser learns that it holds no phones (a
recogniser that only heard speech is unsure of every frame of noise, and forcing a transcript's phones
through it costs little). `init_from` starts a run from another run's finished weights
(configs/phone_recognizer_nonspeech.toml: the speech-only run taught non-speech in a few hundred steps).

The development evidence (development_evidence) that chooses the score kind and its threshold: the
valid clips of every corpus and the holdout speakers' train clips, each with its own and with another
clip's transcript, and a fixed, seeded set of generated non-speech (kinds and draws never trained on
among them) with real transcripts; --evaluate prints, for every kind at its calibrated threshold, the
right transcripts accepted and the wrong ones and the non-speech refused.

The run checkpoints to <run_dir>/checkpoint.pt every few minutes and resumes from it. The export writes
<run_dir>/phone_recognizer.onnx and its calibration (<run_dir>/phone_check.json: the `phone_check`
block of the acoustic manifest); --ship copies the graph into the acoustic folder and sets the
manifest's `phone_check` block and its `files` entry, leaving every other key as it is.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
import tomllib
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reader.model_inputs import ARPABET, SYMBOLS
from reader.paths import models_dir
from reader_runtime.features import FeatureSettings
from reader_runtime.manifest import file_entry
from reader_runtime.phone_check import ctc_frames_needed

from .aligner_finetune import Clip, ClipCache, FinetuneConfig, augment, load_clips, mismatch_pairs
from .data import length_bucketed_batches
from .export import OPSET, calibration_record, mismatch_threshold

# Recogniser output classes: 0 = CTC blank, 1.. = ARPABET in order.
PHONES = ARPABET
PHONE_OF_SYMBOL = {SYMBOLS.index(phone): index + 1 for index, phone in enumerate(PHONES)}


@dataclass
class RecognizerConfig:
    corpora: list[str] = field(default_factory=lambda: ["ljspeech_longform", "kathleen_arctic", "speechocean762_adults"])
    data_root: str = ""  # empty: reader.paths.data_dir()
    acoustic_models: str = ""  # the acoustic folder (features settings; --ship target); empty: <models_dir>/acoustic
    run_dir: str = "checkpoints/phone_recognizer"
    # development set: train-split speakers never trained on (as the aligner fine-tune's holdout_speakers)
    holdout_speakers: list[str] = field(default_factory=list)
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
    max_frames_per_utterance: int = 1100
    corpus_weights: dict[str, float] = field(default_factory=dict)  # batches per corpus in proportion; empty: by clip count
    # the aligner fine-tune's voice/room augmentation (aligner_finetune.augment) and SpecAugment masks
    augment_probability: float = 0.6
    augment_gain: float = 0.5
    augment_warp: float = 0.12
    augment_noise_floor: float = -9.0
    time_masks: int = 2
    time_mask_frames: int = 20
    mel_masks: int = 2
    mel_mask_bins: int = 10
    gradient_clip: float = 5.0
    seed: int = 1234
    threads: int = 1
    log_every_steps: int = 50
    checkpoint_every_minutes: float = 4.0
    max_minutes: float = 0.0  # 0: no limit; otherwise stop (checkpointed) after this much training time in this run
    # non-speech clips (reader/training/acoustic/nonspeech.py) with an empty CTC target, as this share of each
    # batch's clips (0: none); their lengths are drawn from the batch's speech clips
    nonspeech_share: float = 0.0
    nonspeech_kinds: list[str] = field(default_factory=list)  # of nonspeech.TRAIN_KINDS; empty: all of them
    # a finished run's checkpoint.pt whose weights start a new run (a fresh optimiser and schedule); used only
    # when run_dir has no checkpoint of its own yet (a started run resumes from its own)
    init_from: str = ""

    def clip_config(self) -> FinetuneConfig:
        """The aligner fine-tune's config for its clip loading (load_clips) and augmentation (augment)."""
        return FinetuneConfig(
            corpora=list(self.corpora), data_root=self.data_root, holdout_speakers=list(self.holdout_speakers),
            max_frames_per_utterance=self.max_frames_per_utterance, augment_gain=self.augment_gain,
            augment_warp=self.augment_warp, augment_noise_floor=self.augment_noise_floor,
        )  # fmt: skip


def load_config(path: str | Path) -> RecognizerConfig:
    with open(path, "rb") as handle:
        return RecognizerConfig(**tomllib.load(handle))


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


def batches_of(clips: list[Clip], config: RecognizerConfig, rng: np.random.Generator) -> list[list[Clip]]:
    """One epoch of length-bucketed batches per corpus, interleaved at random (corpus_weights as in the aligner fine-tune)."""
    per_corpus = {}
    for corpus in dict.fromkeys(c.utterance.corpus for c in clips):
        group = [c for c in clips if c.utterance.corpus == corpus]
        per_corpus[corpus] = [[group[i] for i in b] for b in length_bucketed_batches([c.n_frames for c in group], config.max_frames_per_batch, rng)]
    if config.corpus_weights:
        total = sum(len(b) for b in per_corpus.values())
        weight_sum = sum(config.corpus_weights.get(corpus, 1.0) for corpus in per_corpus)
        for corpus, batches in per_corpus.items():
            wanted = max(1, round(total * config.corpus_weights.get(corpus, 1.0) / weight_sum))
            per_corpus[corpus] = [batches[i % len(batches)] for i in rng.permutation(max(wanted, len(batches)))[:wanted]]
    epoch = [batch for batches in per_corpus.values() for batch in batches]
    return [epoch[i] for i in rng.permutation(len(epoch))]


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


def feature_settings(folder: Path) -> FeatureSettings:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return FeatureSettings(**{k: v for k, v in manifest["features"].items() if k in FeatureSettings.__dataclass_fields__})


def acoustic_folder(config: RecognizerConfig) -> Path:
    return Path(config.acoustic_models) if config.acoustic_models else models_dir() / "acoustic"


def save_checkpoint(path: Path, model: nn.Module, optimiser, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(), **state}, partial)
    partial.replace(path)


def train(config: RecognizerConfig, log=print) -> Path:
    """Train (resuming from <run_dir>/checkpoint.pt if there is one); returns the checkpoint path."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    checkpoint_path = Path(config.run_dir) / "checkpoint.pt"
    cache = ClipCache(feature_settings(acoustic_folder(config)))
    clip_config = config.clip_config()
    train_clips = [c for c in load_clips(clip_config, "train", cache, holdout=False) if trainable(c)]
    valid_clips = [c for c in load_clips(clip_config, "valid", cache) if trainable(c)]
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
    rng = np.random.default_rng(config.seed + state["epoch"])
    batches, position = batches_of(train_clips, config, rng), state.get("position", 0)  # the epoch's batches again, and where it was
    last_checkpoint = run_start = time.perf_counter()
    running: list[float] = []
    while state["step"] < config.steps:
        if position >= len(batches):
            state["epoch"] += 1
            rng = np.random.default_rng(config.seed + state["epoch"])
            batches, position = batches_of(train_clips, config, rng), 0
        model.train()
        log_mels, targets = [], []
        for clip in batches[position]:
            log_mel = augment(clip.log_mel, clip_config, rng) if rng.random() < config.augment_probability else clip.log_mel
            log_mels.append(spec_augment(log_mel, config, rng))
            targets.append(phone_targets(clip.tokens["symbol_ids"]))
        for log_mel in nonspeech_clips(batches[position], config, cache.settings, rng):  # empty targets: all blank
            log_mel = augment(log_mel, clip_config, rng) if rng.random() < config.augment_probability else log_mel
            log_mels.append(spec_augment(log_mel, config, rng))
            targets.append(np.zeros(0, np.int64))
        position += 1
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
            log(f"step {state['step']} ctc {np.mean(running):.4f} lr {learning_rate(config, state['step']):.2e} ({time.perf_counter() - run_start:.0f} s)")
            running = []
        out_of_time = config.max_minutes and time.perf_counter() - run_start > 60 * config.max_minutes
        if time.perf_counter() - last_checkpoint > 60 * config.checkpoint_every_minutes or state["step"] >= config.steps or out_of_time:
            per = phone_error_rate(model, valid_clips)
            state["history"].append({"step": state["step"], "valid_per": round(per, 4)})
            log(f"step {state['step']} valid PER {per:.4f}")
            save_checkpoint(checkpoint_path, model, optimiser, {**state, "position": position})
            last_checkpoint = time.perf_counter()
            if out_of_time:
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
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), str(path), input_names=["log_mel"], output_names=["log_probs"],
            dynamic_axes={"log_mel": {1: "frames"}, "log_probs": {1: "steps"}}, opset_version=OPSET, dynamo=False,
        )  # fmt: skip
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
    stored = torch.load(Path(config.run_dir) / "checkpoint.pt", map_location="cpu", weights_only=False)
    model = PhoneRecognizer(config, n_mels)
    model.load_state_dict(stored["model"])
    return model.eval(), stored


class Scorer:
    """Every score kind of runtime.phone_check (and the aligner's cost) of a log-mel and a transcript's
    tokens, with the exported graphs as the runtime runs them."""

    def __init__(self, graph: Path, acoustic: Path):
        from reader_runtime.session import SessionOptions, load_session

        options = SessionOptions(intra_op_threads=1, inter_op_threads=1)
        self.recogniser = load_session(graph, options)
        manifest = json.loads((acoustic / "manifest.json").read_text(encoding="utf-8"))
        self.aligner = load_session(acoustic / manifest["files"]["aligner"]["file"], options)
        self.token_names = [i.name for i in self.aligner.get_inputs() if i.name != "log_mel"]

    def log_probs(self, log_mel: np.ndarray) -> np.ndarray:
        (log_probs,) = self.recogniser.run(None, {"log_mel": np.asarray(log_mel, np.float32)[None]})
        return log_probs[0]

    def scores(self, log_probs: np.ndarray, log_mel: np.ndarray, tokens: dict[str, np.ndarray]) -> dict[str, float]:
        from reader_runtime.aligner import alignment_of
        from reader_runtime.phone_check import score_kinds

        aligner_cost = float("inf")  # no monotonic path: fewer frames than tokens
        if log_mel.shape[0] >= len(tokens["symbol_ids"]):
            (aligner_log_probs,) = self.aligner.run(None, {name: tokens[name][None] for name in self.token_names} | {"log_mel": np.asarray(log_mel, np.float32)[None]})
            aligner_cost = alignment_of(aligner_log_probs[0], float("nan")).cost
        return score_kinds(log_probs, phone_targets(tokens["symbol_ids"]), aligner_cost) | {"aligner_cost": aligner_cost}


def development_scores(scorer: Scorer, pairs: list[tuple[Clip, Clip]]) -> dict[str, np.ndarray]:
    """(clips, 2) scores of each clip with its own transcript and with the other clip's, per score kind."""
    scores: dict[str, list] = {}
    for clip, other in pairs:
        log_probs = scorer.log_probs(clip.log_mel)
        for column, tokens in enumerate((clip.tokens, other.tokens)):
            for kind, value in scorer.scores(log_probs, clip.log_mel, tokens).items():
                scores.setdefault(kind, [[], []])[column].append(value)
    return {kind: np.asarray(values).T for kind, values in scores.items()}


def fits(tokens: dict[str, np.ndarray], n_frames: int) -> bool:
    """Whether a recording of n_frames can hold the transcript at all (the aligner's token per frame, CTC's
    phone per recogniser frame and blank between repeats): otherwise every score is infinite."""
    return len(tokens["symbol_ids"]) <= n_frames and ctc_frames_needed(phone_targets(tokens["symbol_ids"])) <= (n_frames + 1) // 2


def nonspeech_scores(scorer: Scorer, transcripts: list[dict[str, np.ndarray]], settings: FeatureSettings) -> tuple[dict[str, np.ndarray], list[str]]:
    """(clips,) scores per score kind of the fixed non-speech development set (nonspeech.development_set),
    each clip with a real transcript: the next of `transcripts` that its length can hold (a clip that
    holds none is left out). Also the clips' kinds, in order."""
    from .nonspeech import development_set

    scores: dict[str, list] = {}
    kinds, next_transcript = [], 0
    for clip in development_set(settings):
        for offset in range(len(transcripts)):
            tokens = transcripts[(next_transcript + offset) % len(transcripts)]
            if fits(tokens, clip.log_mel.shape[0]):
                next_transcript += offset + 1
                break
        else:
            continue
        for kind, value in scorer.scores(scorer.log_probs(clip.log_mel), clip.log_mel, tokens).items():
            scores.setdefault(kind, []).append(value)
        kinds.append(f"{clip.kind} {clip.seconds:g} s")
    return {kind: np.asarray(values) for kind, values in scores.items()}, kinds


HOLDOUT_GROUP = "speechocean762_adults (unheard train speakers)"
# score kinds from the simplest (one number of the recogniser) to the sum with the aligner's cost
SIMPLEST_FIRST = ("ctc_gap_per_phone", "ctc_gap", "phone_error_rate", "ctc_gap_per_phone+alignment_cost")


@dataclass
class Evidence:
    """The development evidence that chooses the score and calibrates its threshold: per group of clips
    (each corpus's valid clips; the holdout speakers' train clips) every kind's (clips, 2) scores of the
    own and another clip's transcript, and every kind's scores of the non-speech clips with real transcripts."""

    groups: dict[str, dict[str, np.ndarray]]
    nonspeech: dict[str, np.ndarray]
    nonspeech_kinds: list[str]

    def threshold(self, score: str) -> float:
        """The limit that misclassifies the fewest clips: right transcripts against wrong ones and non-speech."""
        matched = np.concatenate([g[score][:, 0] for g in self.groups.values()])
        refused = np.concatenate([g[score][:, 1] for g in self.groups.values()] + [self.nonspeech[score]])
        return mismatch_threshold(matched, refused)

    def report(self, score: str) -> dict:
        """At the kind's threshold: right transcripts accepted, wrong ones and non-speech refused on the
        unheard speakers (the development set proper), and right transcripts accepted per group (the
        training voices' valid clips too); with the separation of the unheard speakers' scores."""
        threshold = self.threshold(score)
        dev = self.groups.get(HOLDOUT_GROUP) or next(iter(self.groups.values()))
        nonspeech = self.nonspeech[score]
        return {
            "threshold": round(threshold, 4),
            "accepted_correct": round(float(np.mean(dev[score][:, 0] <= threshold)), 4),
            "refused_wrong": round(float(np.mean(dev[score][:, 1] > threshold)), 4),
            "refused_nonspeech": round(float(np.mean(nonspeech > threshold)), 4),
            "nonspeech_min": round(float(np.min(nonspeech)), 4),
            "accepted_correct_per_group": {group: round(float(np.mean(s[score][:, 0] <= threshold)), 4) for group, s in self.groups.items()},
            **separation(dev[score]),
        }

    def nonspeech_record(self, score: str, threshold: float) -> dict:
        values = self.nonspeech[score]
        lowest: dict[str, float] = {}
        for kind, value in zip(self.nonspeech_kinds, values, strict=True):
            name = kind.split()[0]
            lowest[name] = round(min(lowest.get(name, np.inf), float(value)), 4)
        return {
            "clips": int(values.size),
            "what": "generated non-speech (reader/training/acoustic/nonspeech.py development_set: noises, hum, tones, music, clicks, near-silence, sirens; never trained on: mixtures, bells, bursts of noise; 1.5-10 s), each with a real transcript",
            "refused": round(float(np.mean(values > threshold)), 4),
            "min_score_per_kind": lowest,
        }


def development_evidence(graph: Path, acoustic: Path, config: RecognizerConfig) -> Evidence:
    cache = ClipCache(feature_settings(acoustic))
    clip_config = config.clip_config()
    scorer = Scorer(graph, acoustic)
    valid = load_clips(clip_config, "valid", cache)
    pairs = _by_corpus(mismatch_pairs(valid))
    transcripts = [c.tokens for c in valid]
    if config.holdout_speakers:
        holdout = load_clips(clip_config, "train", cache, holdout=True)
        pairs[HOLDOUT_GROUP] = mismatch_pairs(holdout, by="speaker")
        transcripts = [c.tokens for c in holdout]  # the unheard speakers' sentences
    groups = {group: development_scores(scorer, group_pairs) for group, group_pairs in pairs.items()}
    nonspeech, kinds = nonspeech_scores(scorer, transcripts, cache.settings)
    return Evidence(groups, nonspeech, kinds)


def separation(scores: np.ndarray) -> dict:
    """ROC AUC (a wrong transcript scores higher than a right one; ties count half) and the share of
    right transcripts accepted at the highest threshold that still refuses at least 95% of the wrong ones."""
    matched, mismatched = scores[:, 0], np.sort(scores[:, 1])
    let_through = int(np.floor(0.05 * mismatched.size))  # wrong transcripts that may score at or below it
    limit = mismatched[let_through]  # accepted: strictly below the first wrong one that must be refused
    return {
        "auc": round(float(np.mean(mismatched[None, :] > matched[:, None]) + 0.5 * np.mean(mismatched[None, :] == matched[:, None])), 4),
        "accepted_at_95_refused": round(float(np.mean(matched < limit)), 4),
        "matched_median": round(float(np.median(matched)), 4),
        "mismatched_median": round(float(np.median(mismatched)), 4),
    }


def calibrate(evidence: Evidence, config: RecognizerConfig, score: str) -> dict:
    """The manifest's `phone_check` block: the threshold on `score`, calibrated as export.calibrate_aligner
    does (valid clips of every corpus against the next clip's transcript with other words, and the
    holdout speakers' train clips as a group of their own, against the same speaker's next clip), with
    the generated non-speech development clips among those to refuse."""
    from reader_runtime.phone_check import SCORE_DESCRIPTIONS

    threshold = evidence.threshold(score)
    scored = {group: (s[score][:, 0], s[score][:, 1]) for group, s in evidence.groups.items()}
    return {
        "score": score,
        "score_threshold": round(threshold, 4),
        "description": SCORE_DESCRIPTIONS[score] + "; above the threshold the transcript is taken not to match",
        "phones": list(PHONES),
        "calibration": calibration_record(scored, threshold, config.corpora, config.holdout_speakers, "score") | {"nonspeech": evidence.nonspeech_record(score, threshold)},
    }


def _by_corpus(pairs: list[tuple[Clip, Clip]]) -> dict[str, list[tuple[Clip, Clip]]]:
    grouped: dict[str, list] = {}
    for pair in pairs:
        grouped.setdefault(pair[0].utterance.corpus, []).append(pair)
    return grouped


def evaluate(evidence: Evidence, log=print) -> dict:
    """Every score kind (and the aligner's cost) at its own calibrated threshold: right transcripts accepted,
    wrong ones and non-speech refused on the unheard speakers, and right transcripts of every group accepted."""
    report = {kind: evidence.report(kind) for kind in evidence.nonspeech}
    log(f"{'score':34} {'threshold':>9} {'accepted':>8} {'refused':>8} {'refused':>10} {'AUC':>6}  accepted per group")
    log(f"{'':34} {'':9} {'correct':>8} {'wrong':>8} {'non-speech':>10}")
    for kind, values in report.items():
        groups = " ".join(f"{group.split('_')[0]}{'(unheard)' if group == HOLDOUT_GROUP else ''} {share:.3f}" for group, share in values["accepted_correct_per_group"].items())
        log(f"{kind:34} {values['threshold']:9.4f} {values['accepted_correct']:8.3f} {values['refused_wrong']:8.3f} {values['refused_nonspeech']:10.3f} {values['auc']:6.4f}  {groups}")
    good = [k for k in SIMPLEST_FIRST if k in report and report[k]["accepted_correct"] >= 0.95 and report[k]["refused_wrong"] >= 0.95 and report[k]["refused_nonspeech"] == 1.0]
    log(f"simplest score meeting >= 95% accepted, >= 95% refused and all non-speech refused: {good[0] if good else 'none'}")
    return report


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

    clip = load_clips(config.clip_config(), "valid", ClipCache(settings))[0]
    (reference,) = load_session(graph, SessionOptions(intra_op_threads=1, inter_op_threads=1)).run(None, {"log_mel": clip.log_mel[None]})
    difference = float(np.max(np.abs(reference[0] - clip_log_probs(model, clip.log_mel))))
    log(f"exported {graph} ({graph.stat().st_size:,} bytes, {parameter_count(model):,} parameters): max |torch - onnx| {difference:.2e}")
    if difference > 1e-3:
        raise RuntimeError(f"the exported phone recogniser differs from the trained one (max difference {difference})")
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
        manifest_path = acoustic / "manifest.json"
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        manifest["files"]["phone_recognizer"] = file_entry(acoustic / graph.name)
        manifest["phone_check"] = block
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        log(f"shipped into {acoustic}")
    return graph


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train, evaluate and export the CTC phone recogniser of the transcript check")
    parser.add_argument("--config", default="configs/phone_recognizer.toml")
    parser.add_argument("--export-only", action="store_true", help="export and calibrate the run's checkpoint without training")
    parser.add_argument("--no-export", action="store_true", help="train only")
    parser.add_argument("--evaluate", action="store_true", help="only score the development set with every score kind (exports the graph first)")
    parser.add_argument(
        "--score", default="ctc_gap_per_phone",
        help="the runtime.phone_check score kind to calibrate and ship (chosen on the development set, --evaluate, and on noise: see runtime/phone_check.py)",
    )  # fmt: skip
    parser.add_argument("--ship", action="store_true", help="copy the graph into the acoustic folder and set its manifest entries")
    args = parser.parse_args(argv)
    config = load_config(args.config)

    def log(message: str) -> None:
        print(message, flush=True)

    if args.evaluate:
        torch.set_num_threads(config.threads)
        settings = feature_settings(acoustic_folder(config))
        graph = export_graph(load_trained(config, settings.n_mels)[0], Path(config.run_dir) / "phone_recognizer.onnx", settings.n_mels)
        evaluate(development_evidence(graph, acoustic_folder(config), config), log)
        return
    if not args.export_only:
        train(config, log)
    if not args.no_export:
        export(config, args.score, ship=args.ship, log=log)


if __name__ == "__main__":
    main()
