"""Linguistics-driven acoustic embedding selection: vectors, nearest neighbours, fallbacks, BERT export, CLI."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest

from reader.paths import PROJECT_ROOT, models_dir
from reader.prosody_selection import ProsodyBank, ProsodySelector, SentenceEncoder, SyntacticFeatures

SHA = "a" * 64
DIM = 4
# Real sentences: two share a parse shape with a bank entry but no words; one shares the meaning of one.
BANK_TEXTS = [
    "The brown fox is quick, and it is jumping over the lazy dog.",
    "Who ate the rest of my pizza?",
    "Printing, in the only sense with which we are at present concerned, differs from most if not from all the arts and crafts represented in the Exhibition.",
]
SAME_SHAPE_AS_FOX = "The black cat is small, and it is sleeping under the old table."
SAME_SHAPE_AS_PRINTING = "Weaving, in the only sense in which we are at present interested, differs from most if not from all the trades and skills shown in the Museum."

shipped = models_dir()
needs_bert = pytest.mark.skipif(not (shipped / "bert" / "manifest.json").is_file(), reason="BERT sentence encoder not exported")
needs_models = pytest.mark.skipif(
    not all((shipped / name / "manifest.json").is_file() for name in ("acoustic", "vocoder", "bert", "prosody_bank")),
    reason="shipped models not exported (python -m reader.training.embedding_bank)",
)


def fake_model(sha: str = SHA):
    """What ProsodySelector.load reads from a runtime AcousticModel."""
    return SimpleNamespace(manifest={"files": {"text_to_mel": {"sha256": sha}}}, utterance_embedding_dim=DIM)


SPEAKER = SimpleNamespace(name="LJ")


@pytest.fixture(scope="module")
def bank_entries(analyzer):
    pytest.importorskip("torch")  # the bank writer lives in the training package
    from reader.training.embedding_bank import BankEntry, clip_distances

    entries = []
    for index, text in enumerate(BANK_TEXTS):
        distances, n_words = clip_distances(text, analyzer)
        entries.append(BankEntry(f"clip{index}", "LJ", "corpus", "session", text, distances, n_words, np.eye(DIM, dtype=np.float32)[index]))
    return entries


@pytest.fixture
def bank_folder(tmp_path, bank_entries):
    from reader.training.embedding_bank import BERT_GRAPH, write_bank

    acoustic, bert = tmp_path / "acoustic", tmp_path / "bert"
    acoustic.mkdir()
    bert.mkdir()
    (acoustic / "manifest.json").write_text(json.dumps({"files": {"text_to_mel": {"sha256": SHA}}}))
    (bert / BERT_GRAPH).write_bytes(b"graph")
    bert_vectors = np.eye(len(bank_entries), 384, dtype=np.float32)
    write_bank(bank_entries, bert_vectors, acoustic, bert, tmp_path / "prosody_bank")
    return tmp_path


def test_syntactic_vectors_depend_only_on_the_order_of_distances():
    vector = SyntacticFeatures().vector
    distances = [2, 1, 3, 1, 8, 7, 6, 5, 4, 3, 2, 1]  # the seed's worked example
    reference = vector(distances, len(distances) + 1)
    for transformed in ([3 * d for d in distances], [d + 10 for d in distances], [np.exp(d) for d in distances]):
        np.testing.assert_allclose(vector(transformed, len(distances) + 1), reference)
    assert not np.allclose(vector(distances[::-1], len(distances) + 1), reference)


def test_syntactic_vectors_have_a_fixed_length_and_keep_the_major_break():
    features = SyntacticFeatures()
    lengths = {len(features.vector([1] * n, n + 1)) for n in (0, 1, 5, 40, 120)}
    assert lengths == {features.profile_bins + 3}
    long = [1] * 60
    long[30] = 5  # one major break in a long sentence survives the pooling onto fewer bins
    profile = features.vector(long, 61)[: features.profile_bins]
    assert profile.max() == 1.0 and (profile == 1.0).sum() == 1 and int(np.argmax(profile)) == 30 * features.profile_bins // 60


def test_selectors_pick_the_nearest_neighbour(bank_folder, analyzer):
    bank = ProsodyBank.load(bank_folder / "prosody_bank", SHA, DIM)
    selector = ProsodySelector("syntactic", bank, "LJ", avoid_recent=0)
    for text, expected in ((SAME_SHAPE_AS_FOX, 0), (SAME_SHAPE_AS_PRINTING, 2), (BANK_TEXTS[1], 1)):
        selection = selector.select(analyzer.analyze_text(text).sentences[0])
        assert selection.utterance.id == f"clip{expected}", text
        np.testing.assert_array_equal(selection.embedding, np.eye(DIM)[expected])
    assert selection.similarity == pytest.approx(1.0)


def test_session_offsets_are_taken_out_of_the_embeddings():
    from reader.prosody_selection import BankUtterance, without_session_offsets

    rng = np.random.default_rng(0)
    sessions = ["a"] * 6 + ["b"] * 4 + ["only"]
    offsets = {"a": np.full(DIM, 3.0), "b": np.full(DIM, -2.0), "only": np.full(DIM, 5.0)}
    raw = np.stack([offsets[s] + rng.normal(size=DIM) for s in sessions]).astype(np.float32)
    other_voice = rng.normal(size=(3, DIM)).astype(np.float32) + 10.0
    utterances = [BankUtterance(f"lj{i}", "LJ", "text", s) for i, s in enumerate(sessions)]
    utterances += [BankUtterance(f"k{i}", "kathleen", "text", "a") for i in range(3)]  # same session name, other voice
    normalised = without_session_offsets(np.concatenate([raw, other_voice]), utterances)
    speaker_mean = raw.mean(0)
    for session in offsets:
        rows = np.array([s == session for s in sessions])
        np.testing.assert_allclose(normalised[:11][rows].mean(0), speaker_mean, atol=1e-5)  # one register per voice
        np.testing.assert_allclose(normalised[:11][rows] - normalised[:11][rows].mean(0), raw[rows] - raw[rows].mean(0), atol=1e-5)  # prosody kept
    np.testing.assert_allclose(normalised[11:], other_voice, atol=1e-5)  # a one-session voice is unchanged


def test_recording_sessions_are_read_off_the_clip_ids():
    from reader.prosody_selection import recording_session

    assert [recording_session(i) for i in ("LJ001-0042", "LJ002-0116", "arctic_a0286", "arctic_b0001", "clip7", "42")] == [
        "LJ001", "LJ002", "arctic_a", "arctic_b", "clip", "42"
    ]  # fmt: skip


def test_long_form_rule_avoids_the_last_neighbours(bank_folder, analyzer):
    bank = ProsodyBank.load(bank_folder / "prosody_bank", SHA, DIM)
    selector = ProsodySelector("syntactic", bank, "LJ", avoid_recent=1)
    fox_like = analyzer.analyze_text(SAME_SHAPE_AS_FOX).sentences[0]
    reading = selector.reading()
    picks = [reading.select(fox_like).utterance.id for _ in range(4)]
    assert picks[0] == "clip0" and all(a != b for a, b in zip(picks, picks[1:]))
    assert selector.reading().select(fox_like).utterance.id == "clip0"  # each document starts afresh


@needs_bert
def test_bert_selector_picks_the_closest_meaning(bank_folder, bank_entries, analyzer):
    encoder = SentenceEncoder.load(shipped / "bert")
    bank = ProsodyBank.load(bank_folder / "prosody_bank", SHA, DIM)
    bank = ProsodyBank(bank.utterances, bank.acoustic_embeddings, bank.syntactic_vectors, encoder.encode([e.text for e in bank_entries]), encoder.graph_sha256)
    selector = ProsodySelector("bert", bank, "LJ", encoder=encoder, avoid_recent=0)
    selection = selector.select(analyzer.analyze_text("Somebody has eaten the last slice of my pizza!").sentences[0])
    assert selection.utterance.id == "clip1"


def _assert_centroid_with_one_warning(caplog, selector, analyzer, reason: str):
    assert selector.method == "centroid"
    assert selector.select(analyzer.analyze_text(BANK_TEXTS[0]).sentences[0]).embedding is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and reason in warnings[0].getMessage() and "\n" not in warnings[0].getMessage()


@pytest.mark.parametrize("damage, reason", [
    ("missing", "missing file"),
    ("corrupt array", "corrupt"),
    ("corrupt manifest", "corrupt"),
    ("other model", "another acoustic model"),
    ("old format", "format version 1"),
    ("empty", "empty"),
    ("other voice", "no utterances of voice"),
    ("no sentence encoder", "BERT sentence encoder unusable"),
])  # fmt: skip
def test_unusable_bank_falls_back_to_the_centroid_with_a_warning(bank_folder, analyzer, caplog, damage, reason):
    bank = bank_folder / "prosody_bank"
    manifest = json.loads((bank / "manifest.json").read_text())
    model, speaker, method = fake_model(), SPEAKER, "syntactic"
    if damage == "missing":
        (bank / "manifest.json").unlink()
    elif damage == "corrupt array":
        (bank / "acoustic_embeddings.npy").write_bytes(b"\x93NUMPY garbage")
    elif damage == "corrupt manifest":
        (bank / "manifest.json").write_text("{not json")
    elif damage == "other model":
        model = fake_model("b" * 64)
    elif damage == "old format":  # a bank from before utterances named their recording session
        (bank / "manifest.json").write_text(json.dumps(manifest | {"format_version": 1}))
    elif damage == "empty":
        (bank / "manifest.json").write_text(json.dumps(manifest | {"utterances": []}))
    elif damage == "other voice":
        speaker = SimpleNamespace(name="kathleen")
    else:
        method = "bert+syntactic"  # the test folder's bert/ holds a graph file but no manifest
    with caplog.at_level(logging.WARNING):
        selector = ProsodySelector.load(method, bank_folder, model, speaker)
    _assert_centroid_with_one_warning(caplog, selector, analyzer, reason)


def test_a_sentence_without_a_usable_vector_gets_the_centroid(bank_folder, analyzer, caplog):
    selector = ProsodySelector.load("syntactic", bank_folder, fake_model(), SPEAKER)
    sentence = analyzer.analyze_text(BANK_TEXTS[0]).sentences[0]
    sentence.distances = sentence.distances[:3]  # a structure the vector cannot be built from
    with caplog.at_level(logging.WARNING):
        assert selector.select(sentence).embedding is None
    assert len(caplog.records) == 1 and "centroid" in caplog.records[0].getMessage()


def test_bert_onnx_export_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import onnxruntime as ort

    from reader.training.embedding_bank import export_bert_fp32, load_torch_bert

    path = tmp_path / "bert.onnx"
    export_bert_fp32(path)
    model, tokenizer = load_torch_bert()
    batch = tokenizer(["Does he wear a black suit or a blue one?"], return_tensors="np")
    with torch.no_grad():
        expected = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state.numpy()
    actual = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, dict(batch))[0]
    np.testing.assert_allclose(actual, expected, atol=1e-3)


@needs_bert
def test_shipped_int8_bert_keeps_the_sentence_vectors():
    pytest.importorskip("transformers")
    from reader.training.embedding_bank import CHECK_SENTENCES, torch_sentence_vectors

    cosine = (SentenceEncoder.load(shipped / "bert").encode(CHECK_SENTENCES) * torch_sentence_vectors(CHECK_SENTENCES)).sum(1)
    assert cosine.min() > 0.98


@needs_models
def test_cli_prosody_option_end_to_end(tmp_path, capsys):
    import jsonschema
    import soundfile as sf

    from reader.cli import main

    voice = json.loads((shipped / "acoustic" / "manifest.json").read_text())["speakers"][0]["name"]
    text = tmp_path / "in.txt"
    text.write_text("Who ate the rest of my pizza? The brown fox is quick, and it is jumping over the lazy dog.\n")

    def run(*args) -> str:
        assert main(list(args)) == 0
        out, err = capsys.readouterr()
        assert "centroid" not in err, err  # no fallback with the shipped bank
        return out

    schema = json.loads((PROJECT_ROOT / "reader" / "data" / "analysis.schema.json").read_text())
    lines = [json.loads(line) for line in run("analyze", str(text), "--json", "--prosody", "syntactic", "--voice", voice).splitlines()]
    assert len(lines) == 2
    for line in lines:
        jsonschema.validate(line, schema)
        assert line["prosody"]["selector"] == "syntactic" and line["prosody"]["utterance_id"] and line["prosody"]["similarity"] > 0
    human = run("analyze", str(text), "--prosody", "bert+syntactic", "--voice", voice)
    assert human.count("prosody:   bert+syntactic: ") == 2
    out = tmp_path / "out.wav"
    run("render", str(text), "-o", str(out), "--prosody", "bert", "--voice", voice)
    audio, _ = sf.read(str(out))
    assert len(audio) > 0 and np.isfinite(audio).all()
