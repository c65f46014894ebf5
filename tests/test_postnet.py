"""The acoustic model's post-net: trains and resumes, exports a graph equal to the torch module, is
recorded in the manifest, and the runtime applies it to every decoded mel (or not, when asked)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from reader.paths import models_dir
from reader.model_inputs import token_inputs
from reader.transfer import transcript_tokens
from reader.training.acoustic import postnet as postnet_training
from reader.training.config import config_from_dict
from reader.training.acoustic.postnet import Config, Postnet, load_postnet, spectral_contrast
from reader.training.vocoder.data import Clip
from reader_runtime.acoustic import AcousticModel
from reader_runtime.errors import RuntimeModelError
from reader_runtime.session import SessionOptions

ONE_THREAD = SessionOptions(intra_op_threads=1, inter_op_threads=1)


def tiny_config(run_dir) -> Config:
    config = config_from_dict(Config, {"data": {"segment_frames": 16, "batch_size": 2}, "model": {"channels": 8, "layers": 3, "kernel_size": 3}})
    config.train.run_dir = str(run_dir)
    config.train.discriminator_channels, config.train.adversarial_start_step, config.train.log_every_steps = 4, 2, 1
    return config


def smooth_and_sharp_clips(count: int, rng: np.random.Generator) -> list[Clip]:
    """Pairs as the teacher-forced data has them: a smoothed mel (the model's) and the sharp one."""
    clips = []
    for index in range(count):
        sharp = (rng.normal(size=(40, 80)) - 5.0).astype(np.float32)
        smooth = np.stack([np.convolve(row, np.ones(5) / 5, mode="same") for row in sharp]).astype(np.float32)
        clips.append(Clip(f"clip{index}", np.zeros(40 * 256, np.float32), sharp, smooth))
    return clips


def test_postnet_starts_as_the_identity():
    mel = torch.randn(1, 30, 80) - 4.0
    assert torch.equal(Postnet(tiny_config("x").model)(mel), mel)


def test_training_resumes_and_export_matches_the_torch_module(tmp_path, monkeypatch, analyzer):
    clips = smooth_and_sharp_clips(4, np.random.default_rng(0))
    monkeypatch.setattr(postnet_training, "training_clips", lambda config, split: clips if split == "train" else clips[:1])
    config = tiny_config(tmp_path / "run")
    postnet_training.train(config, max_steps=3)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("adversarial" in record for record in log)  # the discriminator took part after start_step
    assert log[-1]["step"] == 3 and "valid_l1" in log[-1]
    postnet_training.train(config, max_steps=2)
    assert json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])["step"] == 5  # resumed, not restarted

    acoustic = tmp_path / "acoustic"
    shutil.copytree(models_dir() / "acoustic", acoustic)
    (acoustic / "postnet.onnx").unlink(missing_ok=True)
    postnet_training.export(tmp_path / "run" / "checkpoint.pt", acoustic)
    manifest = json.loads((acoustic / "manifest.json").read_text())
    assert manifest["files"]["postnet"]["file"] == "postnet.onnx" and manifest["postnet"]["steps"] == 5

    module, _ = load_postnet(tmp_path / "run" / "checkpoint.pt")
    model = AcousticModel.load(acoustic, ONE_THREAD)
    tokens = token_inputs(transcript_tokens("A short test sentence.", analyzer))
    speaker = model.speaker("LJ")
    exported, decoded = model.synthesize(tokens, speaker).mel, model.synthesize(tokens, speaker, postnet=False).mel
    with torch.no_grad():
        expected = module(torch.from_numpy(decoded)[None])[0].numpy()
    assert np.abs(exported - expected).max() < 1e-4


def test_runtime_applies_the_postnet_unless_told_not_to(tmp_path, analyzer):
    acoustic = tmp_path / "acoustic"
    shutil.copytree(models_dir() / "acoustic", acoustic)
    if not (acoustic / "postnet.onnx").is_file():
        module = Postnet(tiny_config("x").model)
        torch.nn.init.normal_(module.convs[-1].weight, std=0.05)  # not the identity
        torch.save({"postnet": module.state_dict(), "step": 0, "training_clips": 0, "config": tiny_config("x").as_dict()}, tmp_path / "checkpoint.pt")
        postnet_training.export(tmp_path / "checkpoint.pt", acoustic)
    tokens = token_inputs(transcript_tokens("A short test sentence.", analyzer))
    model = AcousticModel.load(acoustic, ONE_THREAD)
    speaker = model.speaker("LJ")
    sharpened, plain = model.synthesize(tokens, speaker), model.synthesize(tokens, speaker, postnet=False)
    assert sharpened.mel.shape == plain.mel.shape and np.array_equal(sharpened.durations, plain.durations)
    assert not np.allclose(sharpened.mel, plain.mel)

    # the manifest's residual gain for a voice scales what the post-net adds to its mels (others: 1);
    # an impossible one is refused at load
    manifest_path = acoustic / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    gain = model.postnet_gains.get("lj", 1.0)
    manifest["postnet"]["residual_gain"] = {"LJ": 2.0 * gain}
    manifest_path.write_text(json.dumps(manifest))
    doubled = AcousticModel.load(acoustic, ONE_THREAD)
    np.testing.assert_allclose(doubled.synthesize(tokens, speaker).mel - plain.mel, 2.0 * (sharpened.mel - plain.mel), atol=1e-4)
    other = doubled.speaker("kathleen")
    (acoustic / "manifest.json").write_text(json.dumps({**manifest, "postnet": {**manifest["postnet"], "residual_gain": {}}}))
    ungained = AcousticModel.load(acoustic, ONE_THREAD).synthesize(tokens, other).mel
    np.testing.assert_allclose(doubled.synthesize(tokens, other).mel, ungained, atol=1e-5)  # kathleen is not named: gain 1
    for bad in ({"LJ": 0.0}, {"LJ": -1.0}, {"LJ": float("nan")}, {"LJ": 100.0}, {"LJ": "loud"}, 1.5):
        manifest["postnet"]["residual_gain"] = bad
        manifest_path.write_text(json.dumps(manifest))
        with pytest.raises(RuntimeModelError, match="residual_gain"):
            AcousticModel.load(acoustic, ONE_THREAD)
    (acoustic / "postnet.onnx").write_bytes(b"not a graph")
    with pytest.raises(RuntimeModelError):
        AcousticModel.load(acoustic, ONE_THREAD)


def test_pieces_sharpened_apart_join_into_the_whole_sentence(tmp_path, analyzer):
    """A stream sharpens each piece just before its vocoder: with the post-net's receptive field as
    context, any cuts give the whole sentence's post-net output; a manifest without it is refused."""
    model = AcousticModel.load(models_dir() / "acoustic", ONE_THREAD)
    tokens = token_inputs(transcript_tokens("Pieces of a sentence, sharpened one by one, make the whole of it.", analyzer))
    for voice in ("LJ", "kathleen"):  # kathleen's post-net residual has a gain
        speaker = model.speaker(voice)
        plain = model.synthesize(tokens, speaker, postnet=False).mel
        cuts = [0, 1, 7, 30, 31, 90, len(plain) - 3, len(plain)]
        joined = np.concatenate([model.sharpen(plain, speaker, lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:])])
        np.testing.assert_allclose(joined, model.synthesize(tokens, speaker).mel, atol=1e-4)
        assert not np.allclose(joined, plain)
    acoustic = tmp_path / "acoustic"
    shutil.copytree(models_dir() / "acoustic", acoustic)
    manifest = json.loads((acoustic / "manifest.json").read_text())
    del manifest["postnet"]["receptive_field_frames"]
    (acoustic / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RuntimeModelError, match="receptive_field_frames"):
        AcousticModel.load(acoustic, ONE_THREAD)


def test_residual_gain_is_the_smallest_that_restores_the_recordings_spectral_contrast(tmp_path):
    acoustic = models_dir() / "acoustic"
    if not (acoustic / "postnet.onnx").is_file():
        pytest.skip("the shipped acoustic model has no post-net")
    clips = smooth_and_sharp_clips(6, np.random.default_rng(3))
    gain, how = postnet_training.calibrate_residual_gain(acoustic, clips)
    assert 1.0 <= gain <= postnet_training.MAX_GAIN_SEARCHED and "contrast ratio" in how
    import onnxruntime

    session = onnxruntime.InferenceSession(str(acoustic / "postnet.onnx"), providers=["CPUExecutionProvider"])
    residuals = [session.run(None, {"log_mel": c.gta_mel[None]})[0][0] - c.gta_mel for c in clips]

    def mean_ratio(g: float) -> float:
        return float(np.mean([spectral_contrast(c.gta_mel + g * r) / spectral_contrast(c.log_mel) for c, r in zip(clips, residuals)]))

    assert mean_ratio(0.0) < mean_ratio(1.0)  # the post-net sharpens these smoothed mels
    if gain < postnet_training.MAX_GAIN_SEARCHED:
        assert mean_ratio(gain) >= 1.0
    if gain > 1.0:
        assert mean_ratio(gain - 0.05) < 1.0


def test_calibrating_a_voice_no_corpus_reads_says_so():
    from reader.paths import data_dir

    if not (data_dir() / "splits.json").is_file():
        pytest.skip("speech data (../shared/data) not present")
    with pytest.raises(SystemExit, match="nobody"):
        postnet_training.calibrate_voices(Config(), models_dir() / "acoustic", ["nobody"])
