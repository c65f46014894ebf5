"""The front end's linguistic cases, kept as data a linguist can extend: tests/data/frontend/*.tsv.

One file per kind (spoken words, sentences, phrase breaks, long-sentence phrasing, pronunciations);
each row is one case, run through the real normaliser, segmenter, parser, break model and pronouncer.
Columns are separated by tabs; "#" starts a comment line; in cells, \\n, \\t, \\\\ and \\uXXXX are escapes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reader.frontend.analysis import Analyzer, SentenceAnalysis, word_groups
from reader.frontend.document import split_document
from reader.frontend.normalize import normalize_sentence
from reader.frontend.prosody import BreakLevel
from reader.frontend.syntax import MIN_UNIT_WORDS

DATA = Path(__file__).resolve().parent / "data" / "frontend"
SEPARATOR = " ‖ "
_ESCAPE = re.compile(r"\\(n|t|\\|u[0-9a-fA-F]{4})")


def _unescape(cell: str) -> str:
    def replace(m: re.Match) -> str:
        code = m.group(1)
        return {"n": "\n", "t": "\t", "\\": "\\"}.get(code) or chr(int(code[1:], 16))

    return _ESCAPE.sub(replace, cell)


def cases(name: str, columns: int) -> list:
    """The rows of tests/data/frontend/<name>, each a pytest param named by its file and line."""
    rows = []
    for number, line in enumerate((DATA / name).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        assert len(cells) == columns, f"{name}:{number}: expected {columns} tab-separated columns, got {len(cells)}"
        rows.append(pytest.param(*map(_unescape, cells), id=f"{name}:{number}"))
    return rows


@pytest.fixture(scope="module")
def lexicon_analyzer(analyzer):
    """The shared analyzer's parser with the cases' user lexicon."""
    return Analyzer(parser=analyzer.parser, lexicon=DATA / "lexicon.txt")


def _sentence(analyzer: Analyzer, text: str) -> SentenceAnalysis:
    (sentence,) = analyzer.analyze_text(text).sentences
    return sentence


@pytest.mark.parametrize(("text", "expected"), cases("words.tsv", 2))
def test_spoken_words(text: str, expected: str) -> None:
    assert " ".join(t.text for t in normalize_sentence(text) if not t.is_punct) == expected


@pytest.mark.parametrize(("text", "expected"), cases("sentences.tsv", 2))
def test_sentences(text: str, expected: str) -> None:
    document = split_document(text)
    assert SEPARATOR.join(document.sentence_text(s) for s in document.sentences) == expected


@pytest.mark.parametrize(("text", "piece", "expectation"), cases("breaks.tsv", 3))
def test_phrase_breaks(analyzer: Analyzer, text: str, piece: str, expectation: str) -> None:
    sentence = _sentence(analyzer, text)
    start = text.index(piece)
    inside = [i for i, w in enumerate(sentence.words) if start <= w.start and w.end <= start + len(piece)]
    assert inside, f"no word read from {piece!r}"
    plan = " ".join(f"{w.text}{'|' * int(b)}{'^' if r else ''}" for w, b, r in zip(sentence.words, sentence.breaks, sentence.resets))
    if expectation == "no break inside":
        gaps = range(inside[0], inside[-1])
        assert all(sentence.breaks[i] == BreakLevel.NONE and not sentence.resets[i] for i in gaps), plan
    elif expectation == "break after":
        assert sentence.breaks[inside[-1]] >= BreakLevel.MINOR, plan
    elif expectation == "major break after":
        assert sentence.breaks[inside[-1]] >= BreakLevel.MAJOR, plan
    else:
        raise AssertionError(f"unknown expectation {expectation!r}")


@pytest.mark.parametrize(("text", "expected"), cases("phrasing.tsv", 2))
def test_long_sentence_phrasing(analyzer: Analyzer, text: str, expected: str) -> None:
    units = analyzer.analyze_text(text).sentences
    assert SEPARATOR.join(u.text for u in units) == expected
    assert all(MIN_UNIT_WORDS <= len(u.words) <= analyzer.max_sentence_words for u in units)
    for unit in units[:-1]:
        assert unit.breaks[-1] == BreakLevel.MAJOR and unit.resets[-1]


@pytest.mark.parametrize(("text", "word", "phonemes"), cases("pronunciations.tsv", 3))
def test_pronunciations(lexicon_analyzer: Analyzer, text: str, word: str, phonemes: str) -> None:
    sentence = _sentence(lexicon_analyzer, text)
    found = [" ".join(w.phonemes) for w in sentence.words if w.text == word]
    assert found, f"{word!r} not among {[w.text for w in sentence.words]}"
    assert found[0] == phonemes


@pytest.mark.parametrize(("text", "units"), cases("phrasing.tsv", 2))
def test_resets_fall_only_at_phrase_breaks_and_never_inside_word_groups(analyzer: Analyzer, text: str, units: str) -> None:
    for sentence in analyzer.analyze_text(text + " Sales rose year-on-year, he said (as expected) today.").sentences:
        joined = word_groups(sentence.words, sentence.text, sentence.start)
        for i, (level, reset) in enumerate(zip(sentence.breaks, sentence.resets)):
            assert not reset or level > BreakLevel.NONE
            assert not (i < len(joined) and joined[i]) or level == BreakLevel.NONE
