"""Vocoder: training resumes, the ONNX export matches torch, streaming is exact, bad files fail clearly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from reader.paths import PROJECT_ROOT, data_dir, models_dir
from reader.training.vocoder.export import GRAPH_NAME, export, max_difference_to_torch
from reader.training.vocoder.export import main as export_main
from reader.training.vocoder.model import VocoderGenerator
from reader.training.vocoder.train import CHECKPOINT_NAME, LOG_NAME, load_config, save_checkpoint, train
from reader_runtime.errors import RuntimeModelError
from reader_runtime.features import LOG_FLOOR, FeatureSettings, log_mel_spectrogram
from reader_runtime.session import SessionOptions
from reader_runtime.vocoder import MANIFEST_NAME, Vocoder, set_denoise_strength

TINY_CONFIG = PROJECT_ROOT / "configs" / "vocoder_tiny.toml"
ONE_THREAD = SessionOptions(intra_op_threads=1, inter_op_threads=1)
# Measured: the shipped vocoder's copy synthesis of a test clip differs from the clip's log-mel by
# 0.235 (mean |natural-log difference|) after spectral-loss training (step 9637), 0.281 after 1,407 and
# 0.293 after 5,201 steps of the adversarial fine-tune, which trades a little spectral fit for
# naturalness; an untrained graph gives ~1.9. The runtime's denoiser (strength 4) takes the vocoder's
# noise floor off, and with it the recording's room noise, which lies in the quietest quarter of its
# mel bins (below 1e-3): compared above that level, step 7,311 gives 0.213 plain and 0.264 denoised,
# and above 1e-2 (speech) 0.060 and 0.061.
SHIPPED_MEL_FLOOR, SHIPPED_MEL_L1_BOUND, SHIPPED_SPEECH_FLOOR, SHIPPED_SPEECH_L1_BOUND = 1e-3, 0.4, 1e-2, 0.12
needs_data = pytest.mark.skipif(not (data_dir() / "splits.json").is_file(), reason="speech data (../shared/data) not present")


@pytest.fixture(scope="module")
def untrained_export(tmp_path_factory) -> tuple[VocoderGenerator, Path]:
    """A randomly initialised tiny generator, saved as a checkpoint and exported (no data needed)."""
    folder = tmp_path_factory.mktemp("vocoder")
    config = load_config(TINY_CONFIG)
    torch.manual_seed(0)
    model = VocoderGenerator(config.model).eval()
    checkpoint = folder / CHECKPOINT_NAME
    save_checkpoint(checkpoint, model, torch.optim.AdamW(model.parameters()), 0, np.random.default_rng(0), config, 0, float("inf"))
    export(checkpoint, folder / "export")
    return model, folder / "export"


def random_log_mel(frames: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((frames, 80)) - 4.0).astype(np.float32)


@needs_data
def test_tiny_training_runs_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("READER_CACHE_DIR", str(tmp_path / "cache"))
    config = load_config(TINY_CONFIG)
    config.train.run_dir = str(tmp_path / "run")
    run_dir = train(config, max_steps=3)
    assert torch.load(run_dir / CHECKPOINT_NAME, weights_only=False)["step"] == 3
    train(config)  # resumes and finishes the config's 6 steps
    state = torch.load(run_dir / CHECKPOINT_NAME, weights_only=False)
    assert state["step"] == config.train.steps
    records = [json.loads(line) for line in (run_dir / LOG_NAME).read_text().splitlines()]
    logged_steps = [r["step"] for r in records if "total" in r]
    assert logged_steps == list(range(1, config.train.steps + 1))
    assert all(np.isfinite(r["total"]) for r in records if "total" in r)
    assert (run_dir / "best.pt").is_file()


def test_onnx_matches_torch(untrained_export):
    model, folder = untrained_export
    assert max_difference_to_torch(model, folder / GRAPH_NAME, n_frames=61) < 1e-3
    # The numpy overlap-add of the runtime and the torch one used in training agree too.
    log_mel = random_log_mel(45)
    with torch.no_grad():
        expected = model.waveform(torch.from_numpy(log_mel)[None])[0].numpy()
    np.testing.assert_allclose(Vocoder.load(folder, ONE_THREAD).synthesize(log_mel), expected, atol=1e-4)


@pytest.fixture(scope="module")
def denoised_export(untrained_export, tmp_path_factory) -> Path:
    """The untrained export with the runtime's denoising on."""
    folder = tmp_path_factory.mktemp("denoised") / "vocoder"
    shutil.copytree(untrained_export[1], folder)
    set_denoise_strength(folder, 1.5, "a test")
    return folder


@pytest.mark.parametrize("denoised", [False, True])
@pytest.mark.parametrize("chunk_sizes", [[1], [7], [33], [1, 7, 33], [200]])
def test_streaming_equals_whole_utterance(untrained_export, denoised_export, chunk_sizes, denoised):
    vocoder = Vocoder.load(denoised_export if denoised else untrained_export[1], ONE_THREAD)
    log_mel = random_log_mel(150, seed=1)
    whole = vocoder.synthesize(log_mel)
    assert whole.shape == (150 * FeatureSettings().hop_length,) and whole.dtype == np.float32
    stream, pieces, first, turn = vocoder.stream(), [], 0, 0
    while first < log_mel.shape[0]:
        size = chunk_sizes[turn % len(chunk_sizes)]
        pieces.append(stream.push(log_mel[first : first + size]))
        first, turn = first + size, turn + 1
    pieces.append(stream.finish())
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-5, rtol=0)


def test_denoising_takes_the_graph_noise_floor_off_every_frame(untrained_export, denoised_export):
    plain, denoised = Vocoder.load(untrained_export[1], ONE_THREAD), Vocoder.load(denoised_export, ONE_THREAD)
    assert denoised.spec.denoise_strength == 1.5 and plain.noise_floor is None
    silence = np.full((120, 80), np.log(LOG_FLOOR), np.float32)
    middle = slice(40 * 256, 80 * 256)  # samples whose frames see no padding at the ends
    assert np.sqrt(np.mean(plain.synthesize(silence)[middle] ** 2)) > 1e-4  # the untrained graph hisses
    assert np.abs(denoised.synthesize(silence)[middle]).max() < 1e-6  # more than its floor subtracted: nothing left
    # Elsewhere each frame keeps its phase and loses the scaled floor from its magnitude.
    sound = random_log_mel(120, seed=2)
    before, after = plain.spectra(sound), denoised.spectra(sound)
    expected_magnitude = np.maximum(np.abs(before) - 1.5 * plain.silence_magnitude(), 0.0)
    np.testing.assert_allclose(np.abs(after), expected_magnitude, atol=1e-9)
    kept = expected_magnitude > 1e-6
    assert kept.any() and not kept.all()
    np.testing.assert_allclose(np.angle(after[kept] / before[kept]), 0.0, atol=1e-6)


@pytest.mark.parametrize("strength", [-1, 100, "loud", float("nan"), None])
def test_a_bad_denoise_strength_is_refused_at_load(untrained_export, tmp_path, strength):
    folder = tmp_path / "vocoder"
    shutil.copytree(untrained_export[1], folder)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["denoise"] = {"strength": strength}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(RuntimeModelError, match="denoise strength|unreadable"):
        Vocoder.load(folder)


def test_the_export_command_sets_the_denoise_strength_of_an_export(untrained_export, tmp_path, capsys):
    folder = tmp_path / "vocoder"
    shutil.copytree(untrained_export[1], folder)
    export_main(["--out-dir", str(folder), "--denoise-strength", "3", "--selection", "valid sweep"])
    assert json.loads((folder / MANIFEST_NAME).read_text())["denoise"]["strength"] == 3.0
    assert Vocoder.load(folder).spec.denoise_strength == 3.0
    with pytest.raises(SystemExit):
        export_main(["--out-dir", str(folder), "--denoise-strength", "-2"])
    assert "not in [0, 16]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export_main([])


@needs_data
def test_shipped_vocoder_reproduces_a_real_clip():
    folder = models_dir() / "vocoder"
    if not (folder / MANIFEST_NAME).is_file():
        pytest.skip("no shipped vocoder in exported_models/vocoder")
    clip_id = json.loads((data_dir() / "splits.json").read_text())["kathleen_arctic"]["test"][0]
    audio, _ = sf.read(data_dir() / "kathleen_arctic" / "wavs" / f"{clip_id}.flac", dtype="float32")
    log_mel = log_mel_spectrogram(audio)
    vocoded = Vocoder.load(folder, ONE_THREAD).synthesize(log_mel)
    assert vocoded.shape == (log_mel.shape[0] * FeatureSettings().hop_length,)
    assert np.all(np.isfinite(vocoded)) and np.abs(vocoded).max() < 1.5
    vocoded_mel = log_mel_spectrogram(vocoded[: audio.size])
    for floor, bound in ((SHIPPED_MEL_FLOOR, SHIPPED_MEL_L1_BOUND), (SHIPPED_SPEECH_FLOOR, SHIPPED_SPEECH_L1_BOUND)):
        mel_l1 = np.abs(np.maximum(vocoded_mel, np.log(floor)) - np.maximum(log_mel, np.log(floor))).mean()
        assert mel_l1 < bound, f"copy synthesis log-mel L1 above {floor:g}: {mel_l1:.3f}"


def test_missing_or_corrupt_files_raise_clear_errors(untrained_export, tmp_path):
    folder = tmp_path / "vocoder"
    shutil.copytree(untrained_export[1], folder)
    graph = folder / GRAPH_NAME
    graph.write_bytes(b"not an onnx model")
    with pytest.raises(RuntimeModelError, match="corrupt") as error:
        Vocoder.load(folder)
    assert str(graph) in str(error.value)
    graph.unlink()
    with pytest.raises(RuntimeModelError, match="not found") as error:
        Vocoder.load(folder)
    assert str(graph) in str(error.value)
    (folder / MANIFEST_NAME).unlink()
    with pytest.raises(RuntimeModelError, match="manifest not found"):
        Vocoder.load(folder)
