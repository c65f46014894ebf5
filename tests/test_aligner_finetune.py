"""The aligner fine-tune (issue 17): torch <-> ONNX weight round trip and the losses on two tiny clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from reader.model_inputs import N_BREAK_IDS, N_STRESS_IDS, N_WORD_POSITION_IDS, SYMBOLS  # noqa: E402
from reader.paths import data_dir, models_dir  # noqa: E402
from reader.training.acoustic.aligner_finetune import AlignerModel, alignment_losses, collate, load_aligner, max_difference_to_onnx  # noqa: E402
from reader.training.acoustic.clips import Clip, mismatch_pairs  # noqa: E402
from reader.training.acoustic.data import Utterance  # noqa: E402
from reader.training.acoustic.export import export_aligner  # noqa: E402
from reader.training.acoustic.model import ModelConfig  # noqa: E402
from reader.training.onnx_weights import weights_from_graph  # noqa: E402

TINY = ModelConfig(hidden=16, aligner_dim=8, n_mels=80)


def tokens(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "symbol_ids": rng.integers(2, len(SYMBOLS), n), "stress_ids": rng.integers(0, N_STRESS_IDS, n),
        "word_position_ids": rng.integers(0, N_WORD_POSITION_IDS, n), "break_ids": rng.integers(0, N_BREAK_IDS, n),
    }  # fmt: skip


def tiny_clip(n_tokens: int, n_frames: int, seed: int, corpus: str = "tiny") -> Clip:
    """Frames whose log-mel is one random pattern per token, repeated: an alignment exists to learn."""
    rng = np.random.default_rng(seed)
    token_arrays = tokens(n_tokens, seed)
    patterns = rng.normal(-5, 2, (len(SYMBOLS), 80)).astype(np.float32)
    per_token = np.repeat(token_arrays["symbol_ids"], int(np.ceil(n_frames / n_tokens)))[:n_frames]
    log_mel = patterns[per_token] + rng.normal(0, 0.1, (n_frames, 80)).astype(np.float32)
    return Clip(Utterance(corpus, f"c{seed}", "s", f"text {seed}", Path("none.flac")), token_arrays, log_mel)


def write_folder(model: AlignerModel, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = export_aligner(model, folder / "aligner.onnx")
    manifest = {"training": {"config": {"model": vars(model.config)}}, "files": {"aligner": {"file": path.name}}}
    (folder / "manifest.json").write_text(json.dumps(manifest, default=list), encoding="utf-8")
    return path


def test_onnx_round_trip_of_a_tiny_aligner(tmp_path):
    torch.manual_seed(0)
    model = AlignerModel(TINY).eval()
    path = write_folder(model, tmp_path)
    state = weights_from_graph(path)
    assert set(state) == set(model.state_dict())
    for name, value in model.state_dict().items():
        assert torch.equal(state[name], value), name
    rebuilt = load_aligner(tmp_path)
    clip = tiny_clip(9, 50, seed=1)
    assert max_difference_to_onnx(rebuilt, path, clip.tokens, clip.log_mel) < 1e-4


def test_shipped_aligner_is_rebuilt_exactly():
    """The fine-tune starts from the aligner trained with the decoder (kept as joint_aligner)."""
    folder = models_dir() / "acoustic"
    if not (folder / "aligner.onnx").is_file():
        pytest.skip("no exported acoustic model")
    files = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["files"]
    model = load_aligner(folder)
    clip = tiny_clip(20, 120, seed=2)
    log_mel = np.clip(clip.log_mel, -11.5, 2.0)  # the range of real log-mels
    assert max_difference_to_onnx(model, folder / files.get("joint_aligner", files["aligner"])["file"], clip.tokens, log_mel) < 1e-3


def test_losses_train_on_two_tiny_clips():
    torch.manual_seed(0)
    model = AlignerModel(TINY)
    clips = [tiny_clip(8, 40, seed=3), tiny_clip(10, 44, seed=4)]
    assert [(a.utterance.utterance_id, b.utterance.utterance_id) for a, b in mismatch_pairs(clips)] == [("c3", "c4"), ("c4", "c3")]
    batch = collate(clips)
    assert batch["log_mel"].shape == (2, 44, 80) and batch["symbol_ids"].shape == (2, 10)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(15):
        losses = alignment_losses(model, batch, contrast=(1.2, 0.4))
        assert set(losses) >= {"forward_sum", "binarisation", "contrast", "cost_matched", "cost_mismatched"}
        assert all(torch.isfinite(value) for value in losses.values())
        total = losses["forward_sum"] + losses["contrast"]
        first = float(total.detach()) if first is None else first
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
    assert float(total.detach()) < first


def test_augmentation_keeps_shape_and_range():
    from reader.training.acoustic.clips import ClipRunConfig, augment

    clip = tiny_clip(10, 60, seed=5)
    out = augment(np.clip(clip.log_mel, -11.5, 2.0), ClipRunConfig(augment_probability=1.0), np.random.default_rng(0))
    assert out.shape == clip.log_mel.shape and out.dtype == np.float32 and np.all(np.isfinite(out))
    assert out.min() >= -9.0 - 1e-4  # the noise floor lifts the quietest bins


@pytest.mark.skipif(not (data_dir() / "splits.json").is_file(), reason="speech data (../shared/data) not present")
def test_calibration_takes_the_unheard_speakers_train_clips_as_a_group_of_their_own():
    from reader.training.acoustic.data import DataConfig
    from reader.training.acoustic.export import calibrate_aligner

    config = DataConfig(corpora=["speechocean762_adults"], max_utterances_per_corpus=4)
    section = calibrate_aligner(models_dir() / "acoustic" / "aligner.onnx", config, unheard_speakers=["so0024"])
    groups = section["calibration"]["per_corpus"]
    assert set(groups) == {"speechocean762_adults", "speechocean762_adults (unheard train speakers)"}
    # so0024's first 4 train clips, and the corpus's first 4 valid clips (one of them also so0024's)
    assert groups["speechocean762_adults (unheard train speakers)"]["clips"] == 4 and groups["speechocean762_adults"]["clips"] == 4
    assert section["calibration"]["clips"] == 8 and section["calibration"]["unheard_speakers"] == ["so0024"]
    assert section["cost_threshold"] > 0
