"""SSML, as data a linguist can extend (tests/data/ssml/*.tsv), through the real parser and analyser;
PLS lexicons; bad input through the command line; generated nested SSML (hypothesis)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_frontend_cases import _unescape

from reader.cli import main
from reader.errors import ReaderError
from reader.frontend.analysis import Analyzer
from reader.frontend.prosody import BreakLevel
from reader.frontend.pronounce import load_lexicon
from reader.frontend.ssml import MAX_DEPTH, MAX_SSML_CHARS, is_ssml, parse_ssml

DATA = Path(__file__).resolve().parent / "data" / "ssml"


def cases(name: str, columns: int) -> list:
    """The rows of tests/data/ssml/<name> (same conventions as tests/data/frontend/)."""
    rows = []
    for number, line in enumerate((DATA / name).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            cells = line.split("\t")
            assert len(cells) == columns, f"{name}:{number}: expected {columns} tab-separated columns, got {len(cells)}"
            rows.append(pytest.param(*map(_unescape, cells), id=f"{name}:{number}"))
    return rows


def spoken(analyzer: Analyzer, text: str) -> list:
    return analyzer.analyze_text(text).sentences


def check_offsets(text: str, sentences) -> None:
    """Every word points at text of its own inside the source: never into a tag, never outside."""
    for sentence in sentences:
        for word in sentence.words:
            assert 0 <= word.start < word.end <= len(text), word
            source = text[word.start : word.end]
            assert "<" not in source and ">" not in source and source.strip(), (word, source)


@pytest.mark.parametrize(("text", "expected"), cases("words.tsv", 2))
def test_words_as_read(analyzer: Analyzer, text: str, expected: str) -> None:
    sentences = spoken(analyzer, text)
    assert " ".join(w.text for s in sentences for w in s.words) == expected
    check_offsets(text, sentences)


@pytest.mark.parametrize(("text", "word", "phonemes"), cases("phonemes.tsv", 3))
def test_phonemes(analyzer: Analyzer, text: str, word: str, phonemes: str) -> None:
    found = [" ".join(w.phonemes) for s in spoken(analyzer, text) for w in s.words if w.text == word]
    assert found, f"{word!r} not read from {text!r}"
    assert found[0] == phonemes


@pytest.mark.parametrize(("text", "before", "level", "pause", "marks"), cases("breaks.tsv", 5))
def test_breaks_and_marks(analyzer: Analyzer, text: str, before: str, level: str, pause: str, marks: str) -> None:
    sentences = spoken(analyzer, text)
    if before == "^":
        sentence, gap = sentences[0], -1
    else:
        sentence, gap = next((s, i) for s in sentences for i, w in enumerate(s.words) if w.text == before)
        if level != "-":
            assert sentence.breaks[gap] == BreakLevel[level.upper()], [(w.text, b.name) for w, b in zip(sentence.words, sentence.breaks)]
    assert sentence.ssml.pauses.get(gap) == (None if pause == "-" else float(pause)), sentence.ssml.pauses
    assert [m[1] for m in sentence.ssml.marks if m[0] == gap] == ([] if marks == "-" else marks.split(","))


@pytest.mark.parametrize(("text", "message"), cases("errors.tsv", 2))
def test_bad_ssml_is_one_line(analyzer: Analyzer, text: str, message: str) -> None:
    assert is_ssml(text)
    with pytest.raises(ReaderError) as error:
        spoken(analyzer, text)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(("text", "warning", "expected"), cases("warnings.tsv", 3))
def test_read_with_one_warning(analyzer: Analyzer, caplog, text: str, warning: str, expected: str) -> None:
    with caplog.at_level(logging.WARNING):
        sentences = spoken(analyzer, text)
    messages = [r.getMessage() for r in caplog.records if warning in r.getMessage()]
    assert len(messages) == 1, [r.getMessage() for r in caplog.records]
    assert " ".join(w.text for s in sentences for w in s.words) == expected


def test_one_warning_per_element_name(analyzer: Analyzer, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        spoken(analyzer, "<speak>" + "<voice>a b.</voice> " * 5 + "<audio>c</audio></speak>")
    assert sorted(r.getMessage() for r in caplog.records) == [
        "reader: SSML: <audio> is not supported; its text is read",
        "reader: SSML: <voice> is not supported; its text is read",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<speak>Hi.</speak>", True),
        ('  \n<?xml version="1.0" encoding="UTF-8"?>\n<speak xmlns="http://www.w3.org/2001/10/synthesis">Hi.</speak>', True),
        ("<!-- news -->\n<speak>Hi.</speak>", True),
        ("I <speak> plainly: 3 < 4.", False),
        ("<speaker>Bob</speaker> said hi.", False),
        ("<p>Some HTML.</p>", False),
    ],
)
def test_ssml_is_recognised_only_at_the_start(text: str, expected: bool) -> None:
    assert is_ssml(text) is expected


def test_depth_and_size_limits() -> None:
    deep = "<speak>" + "<prosody>" * 10_000 + "deep" + "</prosody>" * 10_000 + "</speak>"
    with pytest.raises(ReaderError, match=f"nested deeper than {MAX_DEPTH}"):
        parse_ssml(deep)
    with pytest.raises(ReaderError, match="larger than"):
        parse_ssml("<speak>" + "a " * (MAX_SSML_CHARS // 2) + "</speak>")


def test_offsets_point_into_a_non_ascii_source(analyzer: Analyzer) -> None:
    text = '<speak>Caf\u00e9 \u2014 <emphasis>na\u00efve</emphasis> r\u00e9sum\u00e9 &#233;t\u00e9 <sub alias="two">\u2461</sub>.</speak>'
    sentences = spoken(analyzer, text)
    check_offsets(text, sentences)
    assert [text[w.start : w.end] for w in sentences[0].words] == ["Caf\u00e9", "na\u00efve", "r\u00e9sum\u00e9", "&#233;t\u00e9", "\u2461"]


PLS = """<?xml version="1.0" encoding="UTF-8"?>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon" alphabet="ipa" xml:lang="en-US">
  <lexeme><grapheme>tomato</grapheme><phoneme>təˈmɑːtoʊ</phoneme></lexeme>
  <lexeme><grapheme>Acme</grapheme><alias>ack me</alias></lexeme>
  <lexeme><grapheme>nginx</grapheme><phoneme alphabet="x-sampa">"EndZIn"Eks</phoneme></lexeme>
  <lexeme><grapheme>pecan</grapheme><phoneme>ˈpiːkæn</phoneme><phoneme prefer="true">pɪˈkɑːn</phoneme></lexeme>
</lexicon>
"""


def test_pls_lexicon(analyzer: Analyzer, tmp_path: Path) -> None:
    path = tmp_path / "house.pls"
    path.write_text(PLS, encoding="utf-8")
    reader = Analyzer(parser=analyzer.parser, lexicon=path)
    words = {w.text: " ".join(w.phonemes) for s in spoken(reader, "Tomato, nginx and pecan. The acme of Acme.") for w in s.words}
    assert words["Tomato"] == "T AH0 M AA1 T OW0"  # an all-lowercase grapheme matches any capitalisation
    assert words["nginx"] == "EH1 N JH IH0 N EH1 K S"
    assert words["pecan"] == "P IH0 K AA1 N"  # prefer="true"
    assert words["Acme"] == "AE1 K M IY1"  # the alias, read
    assert words["acme"] != words["Acme"]  # a grapheme with capitals matches only itself


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nginx  EH1 N JH AH0 N EH1 K S\n", "not a PLS lexicon: XML error at line 1"),
        ("<foo/>", "not a PLS lexicon (its root element is <foo>"),
        ('<!DOCTYPE lexicon [<!ENTITY x "y">]><lexicon/>', "DTDs, entities and external references are not allowed"),
        ("<lexicon><lexeme><grapheme>a</grapheme><phoneme>kɛ€</phoneme></lexeme></lexicon>", "'€' is not an English IPA symbol"),
        ("<lexicon><lexeme><grapheme>a</grapheme></lexeme></lexicon>", "has no <phoneme> or <alias>"),
    ],
)
def test_bad_pls_is_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.pls"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ReaderError) as error:
        load_lexicon(path)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("name", "content", "lexicon"),
    [
        ("unclosed.ssml", "<speak><p>Hello <s>there</p></speak>", None),
        ("bomb.ssml", '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>\n<speak>&b;</speak>', None),
        ("deep.ssml", "<speak>" + "<s>" * 10_000 + "x" + "</s>" * 10_000 + "</speak>", None),
        ("plain.txt", "Hello there.", "not PLS at all\n"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, capsys, name: str, content: str, lexicon: str | None) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    args = ["analyze", str(path)]
    if lexicon is not None:
        (tmp_path / "x.pls").write_text(lexicon, encoding="utf-8")
        args += ["--lexicon", str(tmp_path / "x.pls")]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("reader: error: ") and captured.err.count("\n") == 1, captured.err


WORDS = st.sampled_from(["alpha", "beta", "Gamma", "3", "42nd", "caf\u00e9", "&amp;", "x", "NASA", "read"])
_ELEMENTS = [
    ("<s>", "</s>"), ("<p>", "</p>"), ('<prosody rate="150%" pitch="+2st">', "</prosody>"), ('<prosody volume="-6dB">', "</prosody>"),
    ('<emphasis level="strong">', "</emphasis>"), ("<lang xml:lang=\"en-GB\">", "</lang>"), ('<w role="amazon:VBD">', "</w>"),
    ("<voice>", "</voice>"),
]  # fmt: skip
_LEAVES = [
    '<break time="200ms"/>', '<break strength="strong"/>', '<mark name="m"/>', '<sub alias="sub word">SW</sub>',
    '<say-as interpret-as="characters">abc</say-as>', '<say-as interpret-as="cardinal">12</say-as>',
    '<phoneme alphabet="ipa" ph="ˈtɛst">test</phoneme>',
]  # fmt: skip


def _fragments(children):
    return st.one_of(
        st.builds(lambda pair, inside: pair[0] + inside + pair[1], st.sampled_from(_ELEMENTS), children),
        st.lists(children, min_size=1, max_size=4).map(" ".join),
    )


SSML_BODIES = st.recursive(st.one_of(WORDS, st.sampled_from(_LEAVES)), _fragments, max_leaves=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=SSML_BODIES)
def test_generated_nested_ssml(analyzer: Analyzer, body: str) -> None:
    text = f"<speak>{body}</speak>"
    sentences = spoken(analyzer, text)
    check_offsets(text, sentences)
    for sentence in sentences:
        assert len(sentence.ssml.voices) == len(sentence.words) == len(sentence.breaks)
        for gap, _, start, end, _ in sentence.ssml.marks:
            assert -1 <= gap < len(sentence.words) and text[start:end] == '<mark name="m"/>'
    assert sum(len(s.ssml.marks) for s in sentences) == text.count("<mark ") or not sentences


def test_analyze_shows_what_the_ssml_did(tmp_path: Path, capsys) -> None:
    import json

    import jsonschema

    path = tmp_path / "news.ssml"
    path.write_text('<speak><s>Hello <mark name="m"/><break time="700ms"/>there.</s><s><prosody rate="x-slow">Slowly</prosody> now.</s></speak>', encoding="utf-8")
    assert main(["analyze", str(path)]) == 0
    text = capsys.readouterr().out
    assert "ssml:      pause 0.7 s after 'Hello'; mark 'm' after 'Hello'" in text
    assert "'Slowly' rate 0.5 pitch +0.0 st volume +0.0 dB" in text
    assert main(["analyze", "--json", str(path)]) == 0
    schema = json.loads((Path(__file__).resolve().parent.parent / "reader" / "data" / "analysis.schema.json").read_text())
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for line in lines:
        jsonschema.validate(line, schema)
    assert lines[0]["ssml"]["pauses"] == [{"after_word": 0, "seconds": 0.7}]
    assert lines[1]["ssml"]["voices"] == [{"word": 0, "rate": 0.5, "pitch": 1.0, "gain": 1.0}]


def test_pause_settings_are_in_the_audiobook_fingerprint() -> None:
    from reader.audiobook import RenderOptions, fingerprint

    default = fingerprint(RenderOptions())
    assert fingerprint(RenderOptions(sentence_pause=None, paragraph_pause=None)) == default
    assert len({default, fingerprint(RenderOptions(sentence_pause=1.2)), fingerprint(RenderOptions(paragraph_pause=1.2))}) == 3
