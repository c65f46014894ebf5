"""The phone recogniser's training (issue 17): targets, padding-independent batches, CTC learning and ONNX export,
generated non-speech with empty targets, and the development evidence that chooses the score."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from reader.model_inputs import SYMBOL_TO_ID  # noqa: E402
from reader.training.acoustic.nonspeech import DEV_KINDS, DEV_ONLY_KINDS, TRAIN_KINDS, coloured_noise, development_set, nonspeech_log_mel, synthesize  # noqa: E402
from reader.training.acoustic.phone_check_calibration import HOLDOUT_GROUP, Evidence, separation  # noqa: E402
from reader.training.acoustic.phone_recognizer import (  # noqa: E402
    PHONES,
    PhoneRecognizer,
    RecognizerConfig,
    clip_log_probs,
    collate,
    ctc_loss,
    export_graph,
    nonspeech_clips,
    phone_targets,
)
from reader_runtime.features import FeatureSettings  # noqa: E402
from reader_runtime.phone_check import edit_distance, greedy_phones, score_kinds  # noqa: E402
from reader_runtime.session import SessionOptions, load_session  # noqa: E402

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


def test_an_empty_target_costs_the_blank_of_every_frame_and_trains():
    torch.manual_seed(0)
    model = PhoneRecognizer(TINY).eval()
    rng = np.random.default_rng(0)
    speech, noise = (rng.normal(-5, 2, (n, 80)).astype(np.float32) for n in (40, 31))
    phones = np.array([3, 1, 4])
    with torch.no_grad():
        alone = float(ctc_loss(model, collate([speech], [phones]))) * phones.size
        blank_cost = -float(model(torch.from_numpy(noise)[None])[0, :, 0].sum())  # 16 frames, every one blank
        mixed = float(ctc_loss(model, collate([speech, noise], [phones, np.zeros(0, np.int64)]))) * phones.size
        only_noise = float(ctc_loss(model, collate([noise], [np.zeros(0, np.int64)])))  # per phone: at least one
    assert np.isfinite(blank_cost) and blank_cost > 0
    assert mixed == pytest.approx(alone + blank_cost, rel=1e-5)
    assert only_noise == pytest.approx(blank_cost, rel=1e-5)
    model.train()
    loss = ctc_loss(model, collate([noise], [np.zeros(0, np.int64)]))
    loss.backward()
    gradients = [p.grad for p in model.parameters() if p.grad is not None]
    assert gradients and all(torch.isfinite(g).all() for g in gradients) and any(g.abs().sum() > 0 for g in gradients)


def spectrum_slope(audio: np.ndarray, rate: int = 22050) -> float:
    """Power per octave, in dB, fitted between 100 Hz and 8 kHz."""
    power = np.abs(np.fft.rfft(audio)) ** 2
    frequency = np.fft.rfftfreq(audio.size, 1 / rate)
    band = (frequency > 100) & (frequency < 8000)
    return float(np.polyfit(np.log2(frequency[band]), 10 * np.log10(power[band] + 1e-20), 1)[0])


def test_nonspeech_generator_makes_every_kind_at_its_length_level_and_colour():
    settings = FeatureSettings()
    for kind in TRAIN_KINDS + DEV_ONLY_KINDS:
        for seconds in (0.05, 1.3):
            audio = synthesize(kind, np.random.default_rng(1), seconds)
            assert audio.dtype == np.float32 and audio.size == int(seconds * 22050) and np.all(np.isfinite(audio))
            assert np.max(np.abs(audio)) < 1.0
            rms_db = 20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
            assert -76 < rms_db < -5, kind
            log_mel = nonspeech_log_mel(kind, np.random.default_rng(2), seconds, settings)
            assert log_mel.shape == (settings.n_frames(int(seconds * 22050)), 80) and np.all(np.isfinite(log_mel))
        assert np.array_equal(synthesize(kind, np.random.default_rng(3), 0.5), synthesize(kind, np.random.default_rng(3), 0.5))
    rng = np.random.default_rng(0)
    slopes = [spectrum_slope(coloured_noise(rng, 2**16, exponent)) for exponent in (0.0, 1.0, 2.0)]  # white, pink, brown
    assert slopes == pytest.approx([0.0, -3.0, -6.0], abs=0.5)
    tone = synthesize("tone", np.random.default_rng(4), 1.0)
    power = np.abs(np.fft.rfft(tone * np.hanning(tone.size))) ** 2
    peak = int(power.argmax())
    assert power[max(0, peak - 10) : peak + 11].sum() > 0.99 * power.sum()  # one frequency (within 10 Hz)
    with pytest.raises(ValueError, match="unknown non-speech kind"):
        synthesize("speech", rng, 1.0)


def test_the_nonspeech_development_set_is_fixed_and_unlike_training_draws():
    first = list(development_set(per_kind=1, lengths=(0.4,)))
    again = list(development_set(per_kind=1, lengths=(0.4,)))
    assert [c.kind for c in first] == list(DEV_KINDS) and set(DEV_KINDS) == set(TRAIN_KINDS + DEV_ONLY_KINDS) and not set(DEV_ONLY_KINDS) & set(TRAIN_KINDS)
    assert all(np.array_equal(a.log_mel, b.log_mel) for a, b in zip(first, again, strict=True))
    trained = nonspeech_log_mel("white", np.random.default_rng(1234), 0.4)
    assert not np.array_equal(trained, first[0].log_mel)


def test_batches_get_their_share_of_nonspeech_as_long_as_their_speech_clips():
    class Speech:
        def __init__(self, n_frames):
            self.n_frames = n_frames

    batch = [Speech(n) for n in (80, 90, 100, 110, 120)]
    rng = np.random.default_rng(0)
    config = RecognizerConfig(nonspeech_share=0.1)
    added = [nonspeech_clips(batch, config, FeatureSettings(), rng) for _ in range(200)]
    share = sum(len(a) for a in added) / sum(len(a) + len(batch) for a in added)
    assert share == pytest.approx(0.1, abs=0.02)
    assert {m.shape[0] for a in added for m in a} == {80, 90, 100, 110, 120}
    assert nonspeech_clips(batch, RecognizerConfig(), FeatureSettings(), rng) == []  # nonspeech_share 0: none


def test_training_with_empty_targets_teaches_that_noise_holds_no_phones():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    patterns = rng.normal(-5, 2, (6, 80)).astype(np.float32)
    targets = [rng.integers(1, 6, 4) for _ in range(24)]
    log_mels = [synthetic_clip(t, patterns, rng) for t in targets]
    kinds = ("white", "pink", "brown", "hum", "music", "room")
    noises = [nonspeech_log_mel(kinds[i % len(kinds)], rng, 0.6) for i in range(12)]
    batch = collate(log_mels + noises, targets + [np.zeros(0, np.int64)] * len(noises))
    model = PhoneRecognizer(TINY)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        loss = ctc_loss(model, batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    held_out = [nonspeech_log_mel(kind, np.random.default_rng(99), 0.8) for kind in kinds]
    for noise in held_out:
        log_probs = clip_log_probs(model, noise)
        assert greedy_phones(log_probs).size == 0  # all blank
        assert score_kinds(log_probs, np.array([1, 2, 3, 4]))["ctc_gap_per_phone"] > 3  # forcing phones through it costs
    phones = rng.integers(1, 6, 4)
    assert edit_distance(greedy_phones(clip_log_probs(model, synthetic_clip(phones, patterns, rng))), phones) <= 1  # speech still heard


def test_evidence_calibrates_against_wrong_transcripts_and_nonspeech():
    kinds = ("ctc_gap_per_phone",)
    dev = {"ctc_gap_per_phone": np.array([[0.5, 5.0], [1.0, 6.0], [1.5, 7.0], [2.0, 8.0]])}
    valid = {"ctc_gap_per_phone": np.array([[0.2, 9.0], [2.5, 9.5]])}
    evidence = Evidence({"ljspeech_longform": valid, HOLDOUT_GROUP: dev}, {kinds[0]: np.array([6.0, 3.0, 12.0])}, ["white 1.5 s", "hum 3 s", "music 3 s"])
    assert evidence.threshold(kinds[0]) == pytest.approx(2.75)  # between the highest right (2.5) and the lowest non-speech (3.0)
    report = evidence.report(kinds[0])
    assert report["accepted_correct"] == 1.0 and report["refused_wrong"] == 1.0 and report["refused_nonspeech"] == 1.0
    assert report["nonspeech_min"] == 3.0 and report["accepted_correct_per_group"] == {"ljspeech_longform": 1.0, HOLDOUT_GROUP: 1.0}
    record = evidence.nonspeech_record(kinds[0], 2.75)
    assert record["clips"] == 3 and record["min_score_per_kind"] == {"white": 6.0, "hum": 3.0, "music": 12.0}
    # a non-speech clip that scores like right transcripts: the fewest errors let it through rather than refuse two right ones
    lower = Evidence({HOLDOUT_GROUP: dev}, {kinds[0]: np.array([1.2])}, ["brown 3 s"]).report(kinds[0])
    assert lower["threshold"] == 3.5 and lower["accepted_correct"] == 1.0 and lower["refused_nonspeech"] == 0.0
