"""Acoustic model: alignment search, tiny training run with resume, 2-process gloo run, ONNX export, and the
torch model rebuilt from exported graphs (the shipped model's, for fine-tunes)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from reader.model_inputs import SYMBOLS, words_to_inputs  # noqa: E402
from reader.paths import PROJECT_ROOT, data_dir  # noqa: E402
from reader.training.acoustic.align import alignment_matrix, monotonic_alignment_search  # noqa: E402

TINY_CONFIG = PROJECT_ROOT / "configs" / "acoustic_tiny.toml"
needs_data = pytest.mark.skipif(not (data_dir() / "splits.json").is_file(), reason="speech data not available")


def best_path_by_brute_force(log_probs: np.ndarray) -> np.ndarray:
    frames, tokens = log_probs.shape
    best_score, best_durations = -np.inf, None
    for cuts in itertools.combinations(range(1, frames), tokens - 1):
        bounds = (0, *cuts, frames)
        score = sum(log_probs[bounds[i] : bounds[i + 1], i].sum() for i in range(tokens))
        if score > best_score:
            best_score, best_durations = score, np.diff(bounds)
    return best_durations


def test_mas_finds_the_optimal_monotonic_path():
    rng = np.random.default_rng(7)
    for _ in range(25):
        tokens = int(rng.integers(1, 5))
        frames = int(rng.integers(tokens, 9))
        log_probs = rng.normal(size=(1, frames, tokens))
        durations = monotonic_alignment_search(log_probs, np.array([tokens]), np.array([frames]))
        np.testing.assert_array_equal(durations[0], best_path_by_brute_force(log_probs[0]))


def test_mas_respects_padding_in_a_batch():
    # A cost matrix whose best path is obvious: token i owns frames 2i, 2i+1.
    log_probs = np.full((2, 8, 4), -10.0)
    for i in range(4):
        log_probs[:, 2 * i : 2 * i + 2, i] = 0.0
    durations = monotonic_alignment_search(log_probs, np.array([4, 2]), np.array([8, 5]))
    np.testing.assert_array_equal(durations[0], [2, 2, 2, 2])
    assert durations[1, :2].sum() == 5 and (durations[1, 2:] == 0).all() and (durations[1, :2] >= 1).all()
    alignment = alignment_matrix(torch.from_numpy(durations[:1]), 8)
    np.testing.assert_array_equal(alignment[0].argmax(-1).numpy(), [0, 0, 1, 1, 2, 2, 3, 3])


def test_model_inputs_put_a_boundary_token_after_every_word():
    inputs = words_to_inputs([(("HH", "AH0", "L", "OW1"), 1), ((), 2), (("W", "ER1", "L", "D"), 4)])
    symbols = [SYMBOLS[i] for i in inputs.symbol_ids]
    # The unspoken middle word's MAJOR break merges into the boundary after "hello";
    # a PARAGRAPH break is read as SENTENCE.
    assert symbols == ["<bos>", "HH", "AH", "L", "OW", "<break:major>", "W", "ER", "L", "D", "<break:sentence>"]
    assert inputs.stress_ids.tolist() == [0, 0, 1, 0, 2, 0, 0, 2, 0, 0, 0]
    assert inputs.word_position_ids.tolist() == [0, 1, 2, 2, 3, 0, 1, 2, 2, 3, 0]
    assert inputs.break_ids.tolist() == [0, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4]
    assert inputs.boundary_mask.sum() == 2


def test_corrupt_or_missing_audio_is_reported_and_skipped(tmp_path, capsys):
    from reader.training.acoustic.data import FeatureCache, Utterance

    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"not audio at all")
    cache = FeatureCache(root=tmp_path / "cache")
    for path in (corrupt, tmp_path / "missing.flac"):
        assert cache.load(Utterance("corpus", path.stem, "LJ", "text", path)) is None
        assert f"skipping {path}" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Three steps of the tiny config, then a resumed run of three more; features cached in a temp dir."""
    from reader.training.acoustic.train import load_config, train

    root = tmp_path_factory.mktemp("acoustic")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("READER_CACHE_DIR", str(root / "cache"))
        config = load_config(TINY_CONFIG)
        config.train.run_dir = str(root / "run")
        first = train(config, max_steps=3)
        first_state = torch.load(first, weights_only=False)
        second = train(config, max_steps=3)
        yield root, first_state, torch.load(second, weights_only=False)


@needs_data
def test_tiny_config_trains_checkpoints_and_resumes(tiny_run):
    root, first, second = tiny_run
    assert first["step"] == 3 and second["step"] == 6
    assert second["speakers"] == ["LJ", "kathleen"]
    log = [json.loads(line) for line in (root / "run" / "log.jsonl").read_text().splitlines()]
    steps = [record["step"] for record in log if "mel" in record]
    assert steps == [1, 2, 3, 4, 5, 6]  # the resumed run continues the count
    assert all(np.isfinite(record["total"]) for record in log if "total" in record)
    changed = [name for name, value in second["model"].items() if not torch.equal(value, first["model"][name])]
    assert "mel_out.weight" in changed


@needs_data
def test_two_process_gloo_training(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "READER_CACHE_DIR": str(tmp_path / "cache")}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "reader.training.acoustic.train", "--config", str(TINY_CONFIG), "--run-dir", str(tmp_path / "run"), "--max-steps", "2",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 2


@needs_data
def test_a_fine_tune_takes_every_weight_but_the_reinitialised_ones(tiny_run):
    from reader.training.acoustic.data import NormalisationStats
    from reader.training.acoustic.model import AcousticModel, ModelConfig
    from reader.training.acoustic.train import initialise_from

    root, _, parent = tiny_run
    torch.manual_seed(0)
    model = AcousticModel(ModelConfig(**parent["config"]["model"]), NormalisationStats(**parent["stats"]))
    lineage = initialise_from(model, root / "run" / "checkpoint.pt", ["utterance_encoder."], "cpu")
    assert lineage[-1]["steps"] == 6
    for name, value in model.named_parameters():
        assert torch.equal(value, parent["model"][name]) != name.startswith("utterance_encoder."), name


@pytest.fixture(scope="module")
def tiny_export(tiny_run, tmp_path_factory):
    """The tiny run's checkpoint exported: (torch model, ONNX paths by graph name, manifest)."""
    from reader.training.acoustic.decoder_split import split as split_decoder
    from reader.training.acoustic.export import export_onnx, load_model, write_manifest

    root, _, _ = tiny_run
    out_dir = tmp_path_factory.mktemp("export")
    model, state = load_model(root / "run" / "checkpoint.pt")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("READER_CACHE_DIR", str(root / "cache"))
        paths = export_onnx(model, out_dir)
        write_manifest(model, state, paths, out_dir)
        paths |= split_decoder(out_dir)  # as the export command does
    return model, paths, json.loads((out_dir / "manifest.json").read_text())


@pytest.fixture(scope="module")
def real_clip():
    """A real utterance (a valid-split clip, never trained on by the tiny config): its text and (1, T, 80) mel."""
    import soundfile as sf

    from reader_runtime.features import log_mel_spectrogram

    audio, _ = sf.read(str(data_dir() / "kathleen_arctic" / "wavs" / "arctic_b0470.flac"), dtype="float32")
    return "The very thing, Ernest agreed.", log_mel_spectrogram(audio)[None]


def test_an_exported_model_decodes_in_parts_as_whole(tiny_export, analyzer):
    from reader.model_inputs import token_inputs
    from reader.transfer import transcript_tokens
    from reader_runtime.acoustic import AcousticModel

    _, paths, manifest = tiny_export
    model = AcousticModel.load(paths["mel_decoder"].parent)
    assert manifest["decoder"]["context_frames"] == model.decoder_context > 0
    tokens = token_inputs(transcript_tokens("A tiny model reads this sentence in two parts.", analyzer))
    speaker = model.speakers[0]
    whole = model.synthesize(tokens, speaker, postnet=False)
    part = model.synthesize(tokens, speaker, postnet=False, first_frames=whole.frames // 3)
    assert part.features is not None
    np.testing.assert_allclose(model.decode_more(part).mel, whole.mel, atol=1e-5)


@needs_data
def test_onnx_export_matches_torch_on_a_real_clip(tiny_export, real_clip, analyzer):
    from reader.model_inputs import transcript_to_inputs
    from reader.training.acoustic.export import COPYCAT_INPUTS, TEXT_TO_MEL_INPUTS
    from reader_runtime.session import load_session

    model, paths, manifest = tiny_export
    assert manifest["sample_rate"] == 22050 and manifest["opset"] >= 17
    assert [s["synthetic"] for s in manifest["speakers"]] == [False, False]
    assert manifest["training"]["steps"] == 6

    text, log_mel = real_clip
    inputs = transcript_to_inputs(text, analyzer)
    n_tokens = len(inputs)
    rng = np.random.default_rng(0)
    tokens = {name: getattr(inputs, name)[None] for name in ("symbol_ids", "stress_ids", "word_position_ids", "break_ids")}
    durations = np.full((1, n_tokens), log_mel.shape[1] // n_tokens)
    durations[0, -1] += log_mel.shape[1] - durations.sum()
    copycat_feeds = {**tokens, "log_mel": log_mel, "speaker_id": np.array([1]), "durations": durations}
    embedding_feeds = {"log_mel": log_mel}

    def both(graph: str, feeds: dict, torch_function, names) -> tuple[list, list]:
        onnx_outputs = load_session(paths[graph]).run(None, feeds)
        with torch.no_grad():
            torch_outputs = torch_function(*[torch.from_numpy(feeds[name]) for name in names])
        torch_outputs = torch_outputs if isinstance(torch_outputs, tuple) else (torch_outputs,)
        return onnx_outputs, [t.numpy() for t in torch_outputs]

    (embedding,), (torch_embedding,) = both("utterance_encoder", embedding_feeds, model.reference_utterance_embedding, ["log_mel"])
    np.testing.assert_allclose(embedding, torch_embedding, atol=1e-3)
    (codes,), (torch_codes,) = both("copycat_encoder", copycat_feeds, model.reference_prosody_codes, COPYCAT_INPUTS)
    np.testing.assert_allclose(codes, torch_codes, atol=1e-3)

    # Plain TTS (everything predicted), then transfer with codes, duration and F0 overrides on some tokens.
    plain = {
        **tokens, "speaker_id": np.array([0]), "utterance_embedding": embedding,
        "prosody_codes": np.zeros_like(codes), "prosody_code_mask": np.zeros((1, n_tokens), np.float32),
        "duration_override": -np.ones((1, n_tokens), np.float32), "f0_override": np.zeros((1, n_tokens), np.float32),
    }  # fmt: skip
    some = (rng.random((1, n_tokens)) < 0.3).astype(np.float32)
    transfer = {**plain, "prosody_codes": codes, "prosody_code_mask": np.ones((1, n_tokens), np.float32),
                "duration_override": np.where(some > 0, durations, -1).astype(np.float32), "f0_override": 180.0 * some}  # fmt: skip
    for feeds in (plain, transfer):
        (mel, frames, f0), (torch_mel, torch_frames, torch_f0) = both("text_to_mel", feeds, model.synthesise, TEXT_TO_MEL_INPUTS)
        np.testing.assert_array_equal(frames, torch_frames)
        assert mel.shape == (1, frames.sum(), 80)
        np.testing.assert_allclose(mel, torch_mel, atol=1e-3)
        np.testing.assert_allclose(f0, torch_f0, rtol=1e-3)
    np.testing.assert_array_equal(frames[some > 0], durations[some > 0])
    np.testing.assert_allclose(f0[some > 0], 180.0, rtol=1e-3)


@needs_data
def test_aligner_onnx_matches_torch_and_runtime_alignment(tiny_export, real_clip, analyzer):
    from reader.model_inputs import token_inputs, transcript_to_inputs
    from reader.training.acoustic.export import ALIGNER_INPUTS, AlignerGraph
    from reader_runtime.acoustic import AcousticModel
    from reader_runtime.aligner import RuntimeAligner

    model, paths, manifest = tiny_export
    assert manifest["files"]["aligner"]["sha256"] and manifest["aligner"]["calibration"]["clips"] == 6
    text, log_mel = real_clip
    inputs = transcript_to_inputs(text, analyzer)
    tokens = token_inputs(inputs)
    aligner = RuntimeAligner(AcousticModel.load(paths["aligner"].parent))
    log_probs = aligner.log_probs(tokens, log_mel[0])
    with torch.no_grad():
        torch_log_probs = AlignerGraph(model)(*[torch.from_numpy({**tokens.feeds(), "log_mel": log_mel}[name]) for name in ALIGNER_INPUTS])
    assert log_probs.shape == (log_mel.shape[1], len(inputs))
    np.testing.assert_allclose(log_probs, torch_log_probs[0].numpy(), atol=1e-3)
    # The runtime's path is training's MAS over torch's log-probabilities.
    alignment = aligner.align(tokens, log_mel[0])
    expected = monotonic_alignment_search(torch_log_probs.numpy(), np.array([len(inputs)]), np.array([log_mel.shape[1]]))[0]
    np.testing.assert_array_equal(alignment.durations, expected)
    assert alignment.durations.sum() == log_mel.shape[1] and alignment.durations.min() >= 1 and np.isfinite(alignment.cost)


SHIPPED_ACOUSTIC = PROJECT_ROOT / "exported_models" / "acoustic"
needs_shipped = pytest.mark.skipif(not (SHIPPED_ACOUSTIC / "manifest.json").is_file(), reason="no exported acoustic model")


@pytest.fixture(scope="module")
def shipped_model():
    from reader.training.acoustic.export import load_exported_model

    torch.set_num_threads(1)
    return load_exported_model(SHIPPED_ACOUSTIC)


@needs_shipped
def test_the_shipped_model_is_rebuilt_exactly_from_its_graphs(shipped_model, analyzer):
    """The rebuilt torch model computes what each shipped graph computes: text_to_mel (plain TTS, then
    transfer with codes and overrides), and the two encoders on the mel it synthesised."""
    from reader.training.acoustic.export import COPYCAT_INPUTS, TEXT_TO_MEL_INPUTS
    from reader.model_inputs import token_inputs
    from reader.transfer import transcript_tokens
    from reader_runtime.session import SessionOptions, load_session

    model, manifest = shipped_model
    tokens = token_inputs(transcript_tokens("The very thing, Ernest agreed.", analyzer)).feeds()
    n_tokens = tokens["symbol_ids"].shape[1]

    def onnx_and_torch(graph: str, feeds: dict, torch_function, names) -> tuple[list, list]:
        session = load_session(SHIPPED_ACOUSTIC / manifest["files"][graph]["file"], SessionOptions(intra_op_threads=1, inter_op_threads=1))
        with torch.no_grad():
            torch_outputs = torch_function(*[torch.from_numpy(feeds[name]) for name in names])
        return session.run(None, feeds), [t.numpy() for t in (torch_outputs if isinstance(torch_outputs, tuple) else (torch_outputs,))]

    centroid = np.array([manifest["speakers"][1]["utterance_embedding_centroid"]], np.float32)
    plain = {
        **tokens, "speaker_id": np.array([1]), "utterance_embedding": centroid,
        "prosody_codes": np.zeros((1, n_tokens, model.config.prosody_code_dim), np.float32), "prosody_code_mask": np.zeros((1, n_tokens), np.float32),
        "duration_override": -np.ones((1, n_tokens), np.float32), "f0_override": np.zeros((1, n_tokens), np.float32),
    }  # fmt: skip
    (mel, durations, f0), (torch_mel, torch_durations, torch_f0) = onnx_and_torch("text_to_mel", plain, model.synthesise, TEXT_TO_MEL_INPUTS)
    np.testing.assert_array_equal(durations, torch_durations)
    np.testing.assert_allclose(mel, torch_mel, atol=1e-4)
    np.testing.assert_allclose(f0, torch_f0, rtol=1e-5)

    (embedding,), (torch_embedding,) = onnx_and_torch("utterance_encoder", {"log_mel": mel}, model.reference_utterance_embedding, ["log_mel"])
    np.testing.assert_allclose(embedding, torch_embedding, atol=1e-5)
    copycat = {**tokens, "log_mel": mel, "speaker_id": np.array([1]), "durations": durations}
    (codes,), (torch_codes,) = onnx_and_torch("copycat_encoder", copycat, model.reference_prosody_codes, COPYCAT_INPUTS)
    np.testing.assert_allclose(codes, torch_codes, atol=2e-5)

    some = (np.arange(n_tokens) % 3 == 0).astype(np.float32)[None]
    transfer = {
        **plain, "utterance_embedding": embedding, "prosody_codes": codes, "prosody_code_mask": np.ones((1, n_tokens), np.float32),
        "duration_override": np.where(some > 0, durations + 1, -1).astype(np.float32), "f0_override": 180.0 * some,
    }  # fmt: skip
    (mel, durations, f0), (torch_mel, torch_durations, torch_f0) = onnx_and_torch("text_to_mel", transfer, model.synthesise, TEXT_TO_MEL_INPUTS)
    np.testing.assert_array_equal(durations, torch_durations)
    np.testing.assert_allclose(mel, torch_mel, atol=1e-4)
    np.testing.assert_allclose(f0, torch_f0, rtol=1e-5)


@needs_shipped
def test_a_fine_tune_starts_from_the_shipped_graphs(shipped_model):
    from reader.training.acoustic.data import NormalisationStats
    from reader.training.acoustic.model import AcousticModel, ModelConfig
    from reader.training.acoustic.train import initialise_from

    exported, manifest = shipped_model
    torch.manual_seed(0)
    model = AcousticModel(ModelConfig(**manifest["training"]["config"]["model"]), NormalisationStats(1.0, 1.0, 0.0, 1.0, [0.0] * 80))
    lineage = initialise_from(model, SHIPPED_ACOUSTIC, ["utterance_encoder."], "cpu")
    for name, value in model.state_dict().items():
        assert torch.equal(value, exported.state_dict()[name]) != name.startswith("utterance_encoder."), name
    source = lineage[-1]
    assert source["exported"] == str(SHIPPED_ACOUSTIC) and source["graphs_sha256"]["joint_aligner"] == manifest["files"]["joint_aligner"]["sha256"]
    assert set(source["graphs_sha256"]) == {"text_to_mel", "utterance_encoder", "copycat_encoder", "joint_aligner"}
    assert sum(run["steps"] for run in lineage) == manifest["training"]["steps"]


@needs_shipped
def test_graphs_that_do_not_fit_the_architecture_are_refused(tmp_path):
    import shutil

    import onnx

    from reader.training.acoustic.export import load_exported_model
    from reader_runtime.manifest import record_files

    lacking = shutil.copytree(SHIPPED_ACOUSTIC, tmp_path / "lacking")
    # The decoder's last norm bias under another name, as where the exporter shares an identical initializer
    graph = onnx.load(str(lacking / "text_to_mel.onnx"))
    next(i for i in graph.graph.initializer if i.name == "model.decoder.norm.bias").name = "onnx::Add_shared"
    for node in graph.graph.node:
        node.input[:] = ["onnx::Add_shared" if name == "model.decoder.norm.bias" else name for name in node.input]
    onnx.save(graph, str(lacking / "text_to_mel.onnx"))
    record_files(lacking)
    with pytest.raises(ValueError, match=r"missing \['decoder.norm.bias'\], unexpected \[\]"):
        load_exported_model(lacking)

    deeper = shutil.copytree(SHIPPED_ACOUSTIC, tmp_path / "deeper")
    manifest = json.loads((deeper / "manifest.json").read_text())
    manifest["training"]["config"]["model"]["decoder_dilations"].append(1)
    (deeper / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"missing \['decoder.blocks.6.conv.bias', 'decoder.blocks.6.conv.weight', 'decoder.blocks.6.norm.bias', 'decoder.blocks.6.norm.weight'\]"):
        load_exported_model(deeper)


@needs_data
def test_an_export_gives_back_every_weight_of_its_checkpoint(tiny_export):
    from reader.training.acoustic.export import load_exported_model

    model, paths, _ = tiny_export
    rebuilt, _ = load_exported_model(paths["text_to_mel"].parent)
    for name, value in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], value), name
