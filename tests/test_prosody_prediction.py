"""Prosody by prediction (issue 15): the code predictor's inputs, its ONNX export, and the engine's mode."""

from __future__ import annotations

import dataclasses
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
    CONTEXT_DIM,
    FEATURE_SETS,
    LONE_SENTENCE,
    POSITION_DIM,
    SYNTAX_DIM,
    CodePredictor,
    ReadingContext,
    SentenceCodes,
    context_features,
    punctuation_breaks,
    predictor_inputs,
    sentence_word_vectors,
)
from reader.prosody_selection import SentenceEncoder

TEXT = "The warders, who were paid by the prisoners, kept the keys of the gate that the sheriffs had built in 1783."
# Two paragraphs; the first's second sentence is longer than the front end's longest unit (40 words),
# so it is read in pieces, the later of which continue a sentence.
LONG = " ".join(["the prisoners who could pay for it had a room of their own and a fire"] * 4)
PARAGRAPHS = f"The gaol stood by the river. Inside, {LONG}, while the others slept on straw.\n\nA new keeper came in the spring."


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
    context = np.ones(CONTEXT_DIM, np.float32)
    for feature_set in FEATURE_SETS:
        inputs = predictor_inputs(sentences, feature_set, vectors, context)
        assert len(inputs) == len(tokens)
        assert inputs.position.shape == (len(tokens), POSITION_DIM) and inputs.syntax.shape == (len(tokens), SYNTAX_DIM)
        assert np.array_equal(inputs.stress_ids, tokens.stress_ids)  # the phonemes are the same in every set
        assert np.any(inputs.syntax) == ("syntax" in feature_set)
        assert np.any(inputs.bert) == ("bert" in feature_set)
        assert inputs.context.shape == (CONTEXT_DIM,) and np.any(inputs.context) == ("context" in feature_set)
    assert not predictor_inputs(sentences, "syntax+context", vectors).context.any()  # no context given: a lone sentence
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


def test_a_paragraphs_sentences_see_the_one_before_and_a_new_paragraph_starts_afresh(analyzer, encoder):
    sentences = analyzer.analyze_text(PARAGRAPHS).sentences
    assert [s.paragraph for s in sentences] == [0, 0, 0, 1]  # the long sentence read in two pieces
    contexts = [ReadingContext.after(previous, sentence) for previous, sentence in zip([None, *sentences[:-1]], sentences)]
    assert contexts[0] == LONE_SENTENCE and contexts[3] == LONE_SENTENCE  # each paragraph starts afresh
    assert contexts[1] == ReadingContext(sentences[0].text, continues=False)
    assert contexts[2] == ReadingContext(sentences[1].text, continues=True)  # the long sentence's second piece
    features = context_features(contexts, encoder)
    assert features.shape == (4, CONTEXT_DIM)
    assert not features[0].any() and not features[3].any()
    np.testing.assert_allclose(features[1, :BERT_DIM], encoder.encode([sentences[0].text])[0], atol=1e-5)
    assert features[1, BERT_DIM] == 0 and features[2, BERT_DIM] == 1


def test_clips_read_in_order_see_the_clip_before_in_their_section_and_only_among_those_given():
    from pathlib import Path

    from reader.training.acoustic.data import Utterance
    from reader.training.code_predictor.data import clip_contexts

    clip = lambda corpus, clip_id, text: Utterance(corpus, clip_id, "x", text, Path("unused"))  # noqa: E731
    lj = [clip("ljspeech_longform", i, t) for i, t in [("LJ001-0001", "Printing, in the only sense"), ("LJ001-0002", "in being modern."), ("LJ001-0003", "For although"), ("LJ002-0001", "In the year")]]
    arctic = [clip("kathleen_arctic", "arctic_a0002", "Not at this particular case."), clip("kathleen_arctic", "arctic_a0003", "For the twentieth time.")]
    contexts = clip_contexts([*lj, *arctic])
    assert contexts["LJ001-0001"] == LONE_SENTENCE and contexts["LJ002-0001"] == LONE_SENTENCE  # a section's first clip
    assert contexts["LJ001-0002"] == ReadingContext("Printing, in the only sense", continues=True)
    assert contexts["LJ001-0003"] == ReadingContext("in being modern.", continues=False)
    assert contexts["arctic_a0003"] == LONE_SENTENCE  # ARCTIC's prompts are isolated sentences
    assert clip_contexts(lj[1:])["LJ001-0002"] == LONE_SENTENCE  # a clip not given (a held-out one) is never read


def export_variant(folder, feature_set: str):
    """A freshly initialised predictor of `feature_set` exported through the training package's export
    (real ONNX); returns the torch model (eval) and the text_to_mel sha256 it is exported for."""
    import torch
    from dataclasses import asdict

    from reader.training.code_predictor.export import export_run
    from reader.training.code_predictor.model import CodePredictorNet, PredictorConfig

    config = PredictorConfig(hidden=16, dilations=[1, 2])
    torch.manual_seed(0)
    model = CodePredictorNet(config)
    model.previous_mean.uniform_(-0.1, 0.1)
    statistics = {"predicted_mean": [0.1, 0.0, -0.1, 0.0], "predicted_std": [0.5, 0.5, 0.25, 1.0], "recorded_std": [1.0, 0.5, 0.5, 1.0]}
    state = {"model": model.state_dict(), "config": asdict(config), "feature_set": feature_set, "step": 1, "code_statistics": statistics}
    torch.save(state, folder / "checkpoint.pt")
    sha = json.loads((models_dir() / "acoustic" / "manifest.json").read_text())["files"]["text_to_mel"]["sha256"]
    (folder / "summary.json").write_text(json.dumps({"acoustic_text_to_mel_sha256": sha, "steps": 1}))
    export_run(folder, compensation=1.0)
    return model.eval(), sha


@pytest.fixture(scope="module")
def exported_variant(tmp_path_factory, sentences, encoder):
    """An exported predictor, inputs with every feature non-zero (the graph must read them all), and
    the codes torch gives for them."""
    torch = pytest.importorskip("torch")
    run = tmp_path_factory.mktemp("run")
    model, sha = export_variant(run, "syntax+bert")
    context = context_features([ReadingContext("The gaol stood by the river.", continues=True)], encoder)[0]
    inputs = predictor_inputs(sentences, "syntax+bert", sentence_word_vectors(encoder, sentences))
    inputs = dataclasses.replace(inputs, context=context)
    with torch.no_grad():
        raw = model(**{k: torch.from_numpy(v) for k, v in inputs.feeds(1).items()})[0].numpy()
    # full variance compensation: deviations from the predicted mean scaled by recorded / predicted std
    mean, scale = np.array([0.1, 0.0, -0.1, 0.0]), np.array([2.0, 1.0, 2.0, 1.0])  # export_variant's statistics
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


@pytest.fixture(scope="module")
def context_models(tmp_path_factory):
    """A models folder with a (freshly initialised) bert+context predictor and the shipped BERT encoder."""
    pytest.importorskip("torch")
    models = tmp_path_factory.mktemp("models")
    (models / "code_predictor").mkdir()
    _, sha = export_variant(models / "code_predictor", "bert+context")
    (models / "bert").symlink_to(models_dir() / "bert", target_is_directory=True)
    return models, sha


def test_a_context_variant_reads_the_sentence_before(context_models, analyzer):
    models, sha = context_models
    first, second = analyzer.analyze_text("The gaol stood by the river. Inside, the prisoners slept on straw.").sentences
    codes = SentenceCodes.load(models, sha, required=True)
    alone = codes.codes(second, 0)
    after = codes.codes(second, 0, ReadingContext.after(first, second))
    assert alone.shape == after.shape and not np.allclose(alone, after)


def test_a_context_variant_without_its_bert_model_falls_back_as_the_bert_modes_do(context_models, sentences, tmp_path):
    models, sha = context_models
    without_bert = tmp_path / "models"
    without_bert.mkdir()
    (without_bert / "code_predictor").symlink_to(models / "code_predictor", target_is_directory=True)
    with pytest.raises(ModelError, match="predicted prosody is unavailable: .*BERT manifest not found"):
        SentenceCodes.load(without_bert, sha, required=True)
    with pytest.warns(UserWarning, match="predicted prosody is unavailable.*acoustic model's own text-only prosody"):
        fallback = SentenceCodes.load(without_bert, sha, required=False)
    assert fallback.codes(sentences[0], 0, ReadingContext("Before.")) is None


def test_a_run_from_before_the_context_input_exports_with_no_context(tmp_path):
    torch = pytest.importorskip("torch")
    from reader.training.code_predictor.export import CONTEXT_WEIGHTS, load_run

    model, _ = export_variant(tmp_path, "syntax")
    state = torch.load(tmp_path / "checkpoint.pt")
    state["model"] = {name: value for name, value in state["model"].items() if name not in CONTEXT_WEIGHTS}
    torch.save(state, tmp_path / "checkpoint.pt")
    loaded, _ = load_run(tmp_path)
    assert not loaded.context.weight.any() and not loaded.previous_mean.any()
    assert torch.equal(loaded.head.weight, model.head.weight)


def test_the_engine_gives_each_sentence_the_one_before_it_in_its_paragraph(analyzer):
    from reader import Reader

    class Recorder:
        def __init__(self):
            self.seen = []

        def codes(self, sentence, speaker_id, context):
            self.seen.append((sentence.text, context))

    reader = Reader(voice="LJ", prosody="centroid", threads=1)
    reader.predicted = recorder = Recorder()
    planned = list(reader.sentences(PARAGRAPHS))
    sentences = [p.analysis for p in planned]
    assert [p.context for p in planned] == [ReadingContext.after(a, b) for a, b in zip([None, *sentences[:-1]], sentences)]
    assert planned[1].context.previous_text == sentences[0].text and planned[3].context == LONE_SENTENCE
    list(reader.requests(PARAGRAPHS))
    assert recorder.seen == [(p.analysis.text, p.context) for p in planned]


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
    from reader_runtime.stream import decode

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
