"""Prosody by prediction (issue 15): the code predictor's inputs, its ONNX export, and the engine's mode."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest

from reader.errors import ModelError
from reader.frontend.prosody import BreakLevel
from reader.model_inputs import BREAK_IDS, sentences_to_inputs
from reader.paths import PROJECT_ROOT, models_dir
from reader.prosody_prediction import (
    BERT_DIM,
    FEATURE_SETS,
    POSITION_DIM,
    SYNTAX_DIM,
    CodePredictor,
    SentenceCodes,
    punctuation_breaks,
    predictor_inputs,
    sentence_word_vectors,
)
from reader.prosody_selection import SentenceEncoder

TEXT = "The warders, who were paid by the prisoners, kept the keys of the gate that the sheriffs had built in 1783."


@pytest.fixture(scope="module")
def sentences(analyzer):
    return analyzer.analyze_text(TEXT).sentences


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder.load(models_dir() / "bert")


def test_every_feature_set_gives_one_row_per_acoustic_token(sentences, encoder):
    tokens = sentences_to_inputs(sentences)
    vectors = sentence_word_vectors(encoder, sentences)
    assert vectors.shape == (sum(len(s.words) for s in sentences), BERT_DIM)
    for feature_set in FEATURE_SETS:
        inputs = predictor_inputs(sentences, feature_set, vectors)
        assert len(inputs) == len(tokens)
        assert inputs.position.shape == (len(tokens), POSITION_DIM) and inputs.syntax.shape == (len(tokens), SYNTAX_DIM)
        assert np.array_equal(inputs.stress_ids, tokens.stress_ids)  # the phonemes are the same in every set
        assert np.any(inputs.syntax) == ("syntax" in feature_set)
        assert np.any(inputs.bert) == ("bert" in feature_set)
    with pytest.raises(ValueError, match="one word vector per word"):
        predictor_inputs(sentences, "bert", None)


def test_without_syntax_the_boundaries_come_from_punctuation_alone(sentences):
    plain = punctuation_breaks(sentences)
    words = [w for s in plain for w in s.words]
    levels = [level for s in plain for level in s.breaks]
    for word, level in zip(words[:-1], levels[:-1], strict=True):
        assert level == (BreakLevel.MINOR if word.punct_after == "," else BreakLevel.NONE)
    assert levels[-1] == BreakLevel.SENTENCE
    with_syntax, without = predictor_inputs(sentences, "syntax"), predictor_inputs(sentences, "phonemes")
    boundaries = np.isin(with_syntax.symbol_ids, BREAK_IDS)
    assert np.array_equal(boundaries, np.isin(without.symbol_ids, BREAK_IDS))
    # the parser's break plan adds breaks where there is no comma ("gate | that", "built | in")
    assert (with_syntax.break_ids != without.break_ids).any()


def test_word_vectors_follow_the_words_context(encoder):
    first = encoder.word_vectors("The bank of the river.", [(4, 8)])
    second = encoder.word_vectors("The bank closed its doors.", [(4, 8)])
    assert first.shape == (1, BERT_DIM) and np.linalg.norm(first) > 0
    assert float(first[0] @ second[0] / np.linalg.norm(first) / np.linalg.norm(second)) < 0.99  # contextual, not a lookup
    assert not encoder.word_vectors("Short.", [(40, 45)]).any()  # a span past the text has no pieces


@pytest.fixture(scope="module")
def exported_variant(tmp_path_factory, sentences, encoder):
    """A freshly initialised predictor exported through the training package's export (real ONNX)."""
    torch = pytest.importorskip("torch")
    from reader.training.code_predictor.export import export_run
    from reader.training.code_predictor.model import CodePredictorNet, PredictorConfig

    run = tmp_path_factory.mktemp("run")
    config = PredictorConfig(hidden=16, dilations=[1, 2])
    torch.manual_seed(0)
    model = CodePredictorNet(config)
    from dataclasses import asdict

    statistics = {"predicted_mean": [0.1, 0.0, -0.1, 0.0], "predicted_std": [0.5, 0.5, 0.25, 1.0], "recorded_std": [1.0, 0.5, 0.5, 1.0]}
    state = {"model": model.state_dict(), "config": asdict(config), "feature_set": "syntax+bert", "step": 1, "code_statistics": statistics}
    torch.save(state, run / "checkpoint.pt")
    sha = json.loads((models_dir() / "acoustic" / "manifest.json").read_text())["files"]["text_to_mel"]["sha256"]
    (run / "summary.json").write_text(json.dumps({"acoustic_text_to_mel_sha256": sha, "steps": 1}))
    export_run(run, compensation=1.0)
    inputs = predictor_inputs(sentences, "syntax+bert", sentence_word_vectors(encoder, sentences))
    with torch.no_grad():
        raw = model.eval()(**{k: torch.from_numpy(v) for k, v in inputs.feeds(1).items()})[0].numpy()
    # full variance compensation: deviations from the predicted mean scaled by recorded / predicted std
    mean, scale = np.array(statistics["predicted_mean"]), np.array([2.0, 1.0, 2.0, 1.0])
    expected = mean + (raw - mean) * scale
    return run, sha, inputs, expected


def test_the_exported_predictor_matches_torch_and_refuses_another_acoustic_model(exported_variant):
    run, sha, inputs, expected = exported_variant
    predictor = CodePredictor.load(run, sha)
    codes = predictor.predict(inputs, speaker_id=1)
    assert codes.shape == (len(inputs), 4)
    np.testing.assert_allclose(codes, expected, atol=1e-4)
    with pytest.raises(ModelError, match="another acoustic model"):
        CodePredictor.load(run, "0" * 64)


def test_a_missing_predictor_is_an_error_by_name_and_a_warning_by_default(tmp_path, sentences):
    sha = "0" * 64
    with pytest.raises(ModelError, match="predicted prosody is unavailable: code predictor manifest not found"):
        SentenceCodes.load(tmp_path, sha, required=True)
    with pytest.warns(UserWarning, match="acoustic model's own text-only prosody"):
        fallback = SentenceCodes.load(tmp_path, sha, required=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, not once per sentence
        assert fallback.codes(sentences[0], 0) is None


@pytest.mark.skipif(not (models_dir() / "code_predictor" / "manifest.json").is_file(), reason="no shipped code predictor")
def test_predicted_prosody_reads_with_the_shipped_predictor_and_moves_the_melody():
    from reader import Reader

    plain = Reader(voice="LJ", prosody="centroid", threads=1)
    predicted = Reader(voice="LJ", prosody="predicted", threads=1)
    assert predicted.prosody_mode == "predicted" and predicted.prosody.method == "centroid"
    (request,) = list(predicted.requests(TEXT))
    assert request.prosody_codes.shape == (len(request.tokens), predicted.acoustic.prosody_code_dim)
    audio = predicted.synthesize(TEXT)
    assert audio.seconds > 3 and np.isfinite(audio.samples).all()
    from runtime.stream import decode

    (plain_request,) = list(plain.requests(TEXT))
    ours, theirs = decode(predicted.acoustic, request), decode(plain.acoustic, plain_request)
    assert not np.allclose(ours.f0, theirs.f0, atol=1.0)  # the predicted codes change the melody


@pytest.mark.skipif(not (models_dir() / "code_predictor" / "manifest.json").is_file(), reason="no shipped code predictor")
def test_a_corrupt_predictor_fails_by_name(tmp_path):
    from reader import Reader

    models = tmp_path / "models"
    shutil.copytree(PROJECT_ROOT / "exported_models", models, ignore=shutil.ignore_patterns("__pycache__"))
    graph = models / "code_predictor" / "code_predictor.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"predicted prosody is unavailable: code predictor model file does not match its manifest"):
        Reader(models=models, prosody="predicted", threads=1)
