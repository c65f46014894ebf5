import logging
import time
from pathlib import Path

import pytest

from reader.frontend.analysis import MAX_SENTENCE_WORDS, Analyzer
from reader.cli import format_sentence
from reader.frontend.normalize import WORD_PIECE_CHARS
from reader.frontend.prosody import BreakLevel
from reader.frontend.syntax import MIN_UNIT_WORDS

SEED = "The brown fox is quick, and it is jumping over the lazy dog."


def test_seed_sentence_end_to_end(analyzer):
    (sentence,) = analyzer.analyze_text(SEED).sentences
    words = [w.text for w in sentence.words]
    assert words == "The brown fox is quick and it is jumping over the lazy dog".split()
    assert sentence.distances == [2, 1, 3, 1, 8, 7, 6, 5, 4, 3, 2, 1]
    quick = words.index("quick")
    assert sentence.words[quick].punct_after == ","
    assert sentence.breaks[quick] >= BreakLevel.MINOR  # clause boundary with a comma
    assert sentence.breaks[0] == BreakLevel.NONE  # inside "The brown fox"
    assert sentence.breaks[-1] == BreakLevel.PARAGRAPH and sentence.resets[-1]
    assert len(sentence.breaks) == len(sentence.resets) == len(words)
    assert all(w.phonemes for w in sentence.words)


def test_word_offsets_point_at_source_text(analyzer):
    text = "It cost $3.50 on Jan. 5, 2020, said Dr. Smith."
    (sentence,) = analyzer.analyze_text(text).sentences
    for w in sentence.words:
        assert 0 <= w.start < w.end <= len(text)
    dollars = [w for w in sentence.words if w.text == "dollars"][0]
    assert text[dollars.start : dollars.end] == "$3.50"
    doctor = [w for w in sentence.words if w.text.lower() == "doctor"][0]
    assert text[doctor.start : doctor.end].startswith("Dr")
    assert sentence.text == text


def test_sentence_and_paragraph_final_breaks(analyzer):
    doc = analyzer.analyze_text("First one. Second one.\n\nNew paragraph.")
    assert [s.breaks[-1] for s in doc.sentences] == [BreakLevel.SENTENCE, BreakLevel.PARAGRAPH, BreakLevel.PARAGRAPH]
    assert [s.paragraph for s in doc.sentences] == [0, 0, 1]


def test_long_sentences_split_at_largest_distance(analyzer):
    clause = "the committee that met on a cold morning in the old town hall discussed the budget at length"
    text = f"{clause}, and {clause}, while {clause}, because {clause}."
    sentences = analyzer.analyze_text(text).sentences
    assert len(sentences) >= 2
    assert all(len(s.words) <= MAX_SENTENCE_WORDS for s in sentences)
    for s in sentences[:-1]:
        assert s.breaks[-1] == BreakLevel.MAJOR and s.resets[-1]
    assert sentences[-1].breaks[-1] == BreakLevel.PARAGRAPH
    # the pieces tile the sentence without losing words
    assert sum(len(s.words) for s in sentences) == len(text.replace(",", "").replace(".", "").split())


def test_unspeakable_tokens_leave_consistent_gaps(analyzer):
    (sentence,) = analyzer.analyze_text("Hello 😀 world ✓ again.").sentences
    assert [w.text for w in sentence.words] == ["Hello", "world", "again"]
    assert len(sentence.distances) == 2


def test_rtl_control_and_symbol_only_text(analyzer):
    assert analyzer.analyze_text("★ ☆ ♦ ♠").sentences == []
    doc = analyzer.analyze_text("Hello\x07 there.\u202e He said שלום to me.")
    assert doc.sentences and all(w.phonemes for s in doc.sentences for w in s.words)


def test_numbers_only_document_is_spoken(analyzer):
    words = [w.text for s in analyzer.analyze_text("1 2 3 42").sentences for w in s.words]
    assert words[:3] == ["one", "two", "three"] and "forty" in words


def test_headings_form_chapters(analyzer):
    doc = analyzer.analyze_text("# Part One\n\nSome text here.\n\n# Part Two\n\nMore text.")
    assert [c.title for c in doc.chapters] == ["Part One", "Part Two"]
    assert doc.sentences[0].is_heading and doc.sentences[0].breaks[-1] == BreakLevel.PARAGRAPH


ROOT = Path(__file__).resolve().parent.parent


def test_docs_sample_matches_what_analyze_prints(analyzer):
    page = (ROOT / "docs" / "analysis.md").read_text(encoding="utf-8")
    sample = page.split("and the prosody\nplan:\n\n```\n", 1)[1].split("```", 1)[0].strip("\n")
    index = int(sample[1 : sample.index("]")])
    text = (ROOT / "examples" / "article.md").read_text(encoding="utf-8")
    sentences = list(analyzer.iter_sentences(analyzer.split(text)))
    assert format_sentence(index, sentences[index - 1]) == sample


@pytest.mark.parametrize(
    "text",
    [
        "1" * 10_000,  # one token read as 10,000 words
        "https://example.com/" + "abc/def?x=1&" * 850,  # a 10 kB URL
        "word " * 5_000,  # a long line without punctuation
    ],
    ids=["digits", "url", "unpunctuated"],
)
def test_huge_inputs_are_cut_into_bounded_balanced_units(analyzer, text):
    started = time.perf_counter()
    units = list(analyzer.iter_sentences(analyzer.split(text)))
    assert time.perf_counter() - started < 30  # about 1-2 s here
    assert all(MIN_UNIT_WORDS <= len(u.words) <= MAX_SENTENCE_WORDS for u in units)


def test_a_huge_single_word_is_read_in_bounded_pieces(analyzer):
    text = "q" * 50_000 + " end."
    words = [w for s in analyzer.iter_sentences(analyzer.split(text)) for w in s.words]
    assert max(len(w.text) for w in words) <= WORD_PIECE_CHARS
    assert "".join(w.text for w in words[:-1]) == "q" * 50_000


def test_unspeakable_scripts_are_skipped_with_one_warning(analyzer, caplog):
    fresh = Analyzer(parser=analyzer.parser)
    with caplog.at_level(logging.WARNING, logger="reader.frontend.analysis"):
        first = fresh.analyze_text("He said שלום to me.").sentences
        second = fresh.analyze_text("Then مرحبا and 東京 again.").sentences
    assert [w.text for w in first[0].words] == ["He", "said", "to", "me"]
    assert [w.text for w in second[0].words] == ["Then", "and", "again"]
    assert len(caplog.records) == 1 and "cannot speak" in caplog.records[0].getMessage()


def test_terminal_escapes_are_neither_read_nor_printed(analyzer):
    (sentence,) = analyzer.analyze_text("The \x1b[1;31mred\x1b[0m light \x1b]0;title\x07flashed\x9b2J twice.").sentences
    assert [w.text for w in sentence.words] == ["The", "red", "light", "flashed", "twice"]
    printed = format_sentence(1, sentence)
    assert not any(ch in printed for ch in "\x1b\x07\x9b")
