"""Vocoder distillation: the teacher lines up with the recording, labels and teacher-forced mels are
cached safely, the complex loss judges phase, and a fine-tune starts exactly from an exported graph."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from reader.paths import PROJECT_ROOT, data_dir, models_dir
from reader.training.acoustic.data import DataConfig as CorpusConfig
from reader.training.acoustic.data import read_manifest
from reader.training.vocoder.export import export
from reader.training.vocoder.losses import LossConfig, SpectralLosses
from reader.training.vocoder.model import VocoderGenerator
from reader.training.vocoder.train import CHECKPOINT_NAME, load_config, load_initial_weights, save_checkpoint, weights_from_onnx
from reader_runtime.features import FeatureSettings, log_mel_spectrogram

TINY_CONFIG = PROJECT_ROOT / "configs" / "vocoder_tiny.toml"
needs_data = pytest.mark.skipif(not (data_dir() / "splits.json").is_file(), reason="speech data (../shared/data) not present")


def shortest_train_clip(corpus: str):
    utterances = read_manifest(CorpusConfig(corpora=[corpus]), "train")
    return min(utterances, key=lambda u: u.audio_path.stat().st_size)


@needs_data
def test_teacher_renders_the_recording_in_step_with_it():
    from reader.training.vocoder.teacher import TeacherVocoder

    teacher = TeacherVocoder.load("universal")
    utterance = shortest_train_clip("kathleen_arctic")
    audio, _ = sf.read(utterance.audio_path, dtype="float32")
    audio = audio[: 2 * 22050]
    rendered = teacher.resynthesize(audio)
    assert rendered.size == audio.size // 256 * 256
    settings = FeatureSettings()
    reference = log_mel_spectrogram(audio[: rendered.size], settings)[4:-4]

    def mel_l1(shift: int) -> float:
        return float(np.abs(log_mel_spectrogram(np.roll(rendered, shift), settings)[4:-4] - reference).mean())

    aligned = mel_l1(0)
    assert aligned < 0.45, aligned  # a faithful rendering, not noise
    assert aligned < min(mel_l1(-64), mel_l1(64))  # and in step to within a quarter hop


@needs_data
def test_teacher_labels_round_trip_and_go_stale_with_the_recording(tmp_path, monkeypatch):
    from reader.training.vocoder.teacher import label_path, read_label, write_label

    monkeypatch.setenv("READER_CACHE_DIR", str(tmp_path / "cache"))
    original = shortest_train_clip("kathleen_arctic")
    copy = tmp_path / original.audio_path.name
    shutil.copy(original.audio_path, copy)
    utterance = type(original)(original.corpus, original.utterance_id, original.speaker, original.text, copy)
    assert read_label(utterance) is None
    samples = np.sin(np.linspace(0, 100, 4096)).astype(np.float32) * 0.5
    write_label(utterance, samples)
    assert np.abs(read_label(utterance) - samples).max() < 1e-4
    copy.write_bytes(copy.read_bytes() + b"\0")  # the recording changed: its label no longer counts
    assert read_label(utterance) is None
    label_path(utterance).write_bytes(b"not a label")
    assert read_label(utterance) is None  # a corrupt label reads as missing, never half-read


@needs_data
def test_teacher_forced_mel_lines_up_with_the_recording():
    from reader.training.vocoder.gta import TeacherForcedMels

    utterance = shortest_train_clip("kathleen_arctic")
    mel = TeacherForcedMels(models_dir()).render(utterance)
    audio, _ = sf.read(utterance.audio_path, dtype="float32")
    recording = log_mel_spectrogram(audio, FeatureSettings())
    assert mel.shape == recording.shape
    # Measured 0.44 on a kathleen clip; a mel from predicted durations would not even have the same length.
    assert float(np.abs(mel - recording).mean()) < 0.7


def test_teacher_forced_mels_are_cached_per_decoder_postnet_and_gain(tmp_path):
    import json
    import shutil

    from reader.training.vocoder.gta import gta_folder

    models = tmp_path / "models"
    (models / "acoustic").mkdir(parents=True)
    shutil.copy(models_dir() / "acoustic" / "manifest.json", models / "acoustic" / "manifest.json")
    manifest = json.loads((models / "acoustic" / "manifest.json").read_text())
    if "postnet" not in manifest["files"]:
        pytest.skip("the shipped acoustic model has no post-net")
    folders = {gta_folder(models), gta_folder(models, postnet=False)}
    manifest["postnet"]["residual_gain"] = {"LJ": 1.25, "kathleen": 2.0}
    (models / "acoustic" / "manifest.json").write_text(json.dumps(manifest))
    folders |= {gta_folder(models), gta_folder(models, postnet=False)}
    assert len(folders) == 3  # the decoder's own mels do not depend on the post-net's gain


def test_phase_losses_see_phase_that_magnitude_losses_miss():
    losses = SpectralLosses(LossConfig(resolutions=[[512, 128]], complex_weight=1.0, phase_weight=1.0))
    t = torch.arange(22050) / 22050.0
    target = (0.3 * torch.sin(2 * np.pi * 220 * t))[None]
    shifted = (0.3 * torch.sin(2 * np.pi * 220 * t + np.pi / 2))[None]  # same magnitudes, other phase
    same = losses(target, target)
    other = losses(shifted, target)
    assert float(same["complex_l1"]) == pytest.approx(0.0, abs=1e-6)
    assert float(same["phase"]) == pytest.approx(0.0, abs=1e-4)
    assert float(other["spectral_convergence"]) < 0.15  # the magnitudes agree (up to the clip edges)
    assert float(other["complex_l1"]) > 0.05
    assert float(other["phase"]) > 0.5  # a quarter-period shift: about pi/2 of instantaneous phase
    plain = SpectralLosses(LossConfig(resolutions=[[512, 128]]))(shifted, target)
    assert "complex_l1" not in plain and "phase" not in plain


def test_phase_losses_have_finite_gradients_even_at_silence():
    losses = SpectralLosses(LossConfig(resolutions=[[256, 64]], phase_weight=1.0))
    generated = torch.zeros(1, 4096, requires_grad=True)  # silent output: every phase undefined
    target = torch.randn(1, 4096) * 0.1
    losses.total(losses(generated, target)).backward()
    assert torch.isfinite(generated.grad).all()


def test_fine_tune_starts_from_the_exported_graph_exactly(tmp_path):
    config = load_config(TINY_CONFIG)
    torch.manual_seed(3)
    model = VocoderGenerator(config.model).eval()
    with torch.no_grad():  # as after training: no two parameters equal (the exporter would share them)
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    checkpoint = tmp_path / CHECKPOINT_NAME
    save_checkpoint(checkpoint, model, torch.optim.AdamW(model.parameters()), 0, np.random.default_rng(0), config, 0, float("inf"))
    export(checkpoint, tmp_path / "export")
    restored = VocoderGenerator(config.model).eval()
    load_initial_weights(restored, tmp_path / "export")
    expected = model.state_dict()
    assert set(weights_from_onnx(tmp_path / "export")) == set(expected)
    for name, tensor in restored.state_dict().items():
        assert torch.equal(tensor, expected[name]), name

    other = type(config.model)(**{**config.model.__dict__, "channels": config.model.channels * 2})
    with pytest.raises(ValueError, match="architecture"):
        load_initial_weights(VocoderGenerator(other), tmp_path / "export")


@needs_data
def test_adversarial_fine_tune_trains_the_discriminator_and_resumes_it(tmp_path, monkeypatch):
    import json

    from reader.training.vocoder.train import LOG_NAME, train

    monkeypatch.setenv("READER_CACHE_DIR", str(tmp_path / "cache"))
    config = load_config(TINY_CONFIG)
    config.train.run_dir = str(tmp_path / "run")
    config.adversarial.weight, config.adversarial.feature_matching_weight = 0.1, 0.2
    config.adversarial.resolutions, config.adversarial.channels, config.adversarial.start_step = [[256, 64]], 4, 2
    config.adversarial.periods = [2, 3]
    run_dir = train(config, max_steps=3)
    saved = torch.load(run_dir / CHECKPOINT_NAME, weights_only=False)["adversary"]["discriminator"]
    assert sum(name.endswith("output.parametrizations.weight.original0") for name in saved) == 3  # a spectrogram and two period ones
    train(config)  # resumes, discriminator included, and finishes the config's 6 steps
    resumed = torch.load(run_dir / CHECKPOINT_NAME, weights_only=False)["adversary"]["discriminator"]
    assert any(not torch.equal(saved[name], resumed[name]) for name in saved)  # it kept learning
    records = [json.loads(line) for line in (run_dir / LOG_NAME).read_text().splitlines() if '"total"' in line]
    assert [r["step"] for r in records] == list(range(1, 7))
    assert all("adversarial" not in r for r in records[:2])  # the discriminator trains alone first
    assert all("adversarial" in r and "feature_matching" in r and "discriminator" in r for r in records[2:])


def test_period_discriminator_folds_the_waveform_by_its_period():
    from reader.training.vocoder.discriminator import PeriodDiscriminator

    discriminator = PeriodDiscriminator(period=5, channels=4)
    logits, features = discriminator(torch.randn(2, 1003))  # not a whole number of periods: padded
    assert [f.shape[-1] for f in features] == [5] * 5  # every layer keeps the period's columns apart
    assert features[0].shape[-2] == math.ceil(1005 / 5 / 3)
    assert logits.shape[0] == 2
    # Columns are judged apart: a change confined to one phase of the period reaches only its column.
    audio = torch.randn(1, 1000)
    shifted = audio.clone()
    shifted[:, 2::5] += 1.0
    _, before = discriminator(audio)
    _, after = discriminator(shifted)
    changed = (before[-1] - after[-1]).abs().sum(dim=(0, 1, 2))
    assert changed[2] > 0 and torch.all(changed[[0, 1, 3, 4]] == 0)
