"""The phone recogniser's training (issue 17): targets, padding-independent batches, CTC learning and ONNX export."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from reader.model_inputs import SYMBOL_TO_ID  # noqa: E402
from reader.training.acoustic.phone_recognizer import (  # noqa: E402
    PHONES,
    PhoneRecognizer,
    RecognizerConfig,
    clip_log_probs,
    collate,
    ctc_loss,
    export_graph,
    phone_targets,
    separation,
)
from runtime.phone_check import edit_distance, greedy_phones  # noqa: E402
from runtime.session import SessionOptions, load_session  # noqa: E402

TINY = RecognizerConfig(channels=32, conv_layers=1, kernel_size=3, gru_hidden=24, gru_layers=1, dropout=0.0)


def test_targets_are_the_phonemes_without_bos_breaks_or_stress():
    symbols = ["<bos>", "HH", "AH", "L", "OW", "<break:none>", "W", "ER", "L", "D", "<break:sentence>"]
    targets = phone_targets(np.array([SYMBOL_TO_ID[s] for s in symbols]))
    assert [PHONES[t - 1] for t in targets] == ["HH", "AH", "L", "OW", "W", "ER", "L", "D"]


def test_a_padded_batch_gives_each_clip_what_it_gets_alone():
    torch.manual_seed(0)
    model = PhoneRecognizer(TINY).eval()
    rng = np.random.default_rng(0)
    short, long = (rng.normal(-5, 2, (n, 80)).astype(np.float32) for n in (37, 60))
    batch = collate([short, long], [np.array([1, 2]), np.array([3])])
    with torch.no_grad():
        batched = model(batch["log_mel"], batch["frame_lengths"]).numpy()
    assert batched.shape == (2, 30, 1 + len(PHONES))
    assert np.allclose(batched[0, :19], clip_log_probs(model, short), atol=1e-5)
    assert np.allclose(batched[1], clip_log_probs(model, long), atol=1e-5)


def synthetic_clip(phones: np.ndarray, patterns: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Eight frames of one spectral pattern per phone, with a silence pattern between: a sequence to learn."""
    frames = [patterns[0]] * 4
    for phone in phones:
        frames += [patterns[phone]] * 8 + [patterns[0]] * 2
    return (np.array(frames) + rng.normal(0, 0.3, (len(frames), 80))).astype(np.float32)


def test_ctc_training_learns_a_synthetic_phone_sequence_and_exports_as_trained(tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    patterns = rng.normal(-5, 2, (6, 80)).astype(np.float32)
    targets = [rng.integers(1, 6, 4) for _ in range(32)]
    batch = collate([synthetic_clip(t, patterns, rng) for t in targets], targets)
    model = PhoneRecognizer(TINY)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(180):
        loss = ctc_loss(model, batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.02 * losses[0]
    # sequences it never saw, one phone longer, are recognised
    held_out = [rng.integers(1, 6, 5) for _ in range(10)]
    log_mels = [synthetic_clip(phones, patterns, rng) for phones in held_out]
    errors = sum(edit_distance(greedy_phones(clip_log_probs(model, m)), phones) for phones, m in zip(held_out, log_mels, strict=True))
    assert errors / 50 < 0.1
    graph = export_graph(model, tmp_path / "phone_recognizer.onnx")
    (exported,) = load_session(graph, SessionOptions(intra_op_threads=1, inter_op_threads=1)).run(None, {"log_mel": log_mels[0][None]})
    assert np.allclose(exported[0], clip_log_probs(model, log_mels[0]), atol=1e-4)


def test_separation_counts_the_share_accepted_where_95_percent_of_wrong_ones_are_refused():
    matched = np.array([0.1] * 15 + [2.5] * 5)
    mismatched = np.linspace(1.0, 3.0, 20)  # the smallest may pass (1 of 20 = 5%), the second must not
    report = separation(np.stack([matched, mismatched], axis=1))
    assert report["accepted_at_95_refused"] == 0.75  # 2.5 is above the second-smallest wrong score
    assert report["auc"] == pytest.approx(0.75 + 0.25 * np.mean(mismatched > 2.5))
