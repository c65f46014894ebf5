import pytest

from reader.errors import ReaderError
from reader.pronounce import PHONEMES, Pronouncer, load_lexicon, parse_lexicon


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
