import io
import sys

import pytest

from reader.frontend.document import read_input, split_document
from reader.errors import ReaderError


def sentences(text):
    doc = split_document(text)
    return [doc.sentence_text(s).strip() for s in doc.sentences], doc


def test_offsets_point_into_original_text():
    text = "Mr. Smith paid $3.50. Then he left.\n\nA new paragraph here."
    found, doc = sentences(text)
    assert found == ["Mr. Smith paid $3.50.", "Then he left.", "A new paragraph here."]
    for s in doc.sentences:
        assert text[s.start : s.end] == doc.sentence_text(s)
    assert [len(doc.sentences_of(p)) for p in doc.chapters[0].paragraphs] == [2, 1]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Dr. J. R. R. Tolkien wrote it. It sold well.", 2),  # titles and initials
        ("The rate rose 2.5 percent in the U.S. economy. Then it fell.", 2),  # decimals, acronyms
        ('"Is it?" she asked. He nodded.', 2),  # quotes
        ("Wait for it... The answer came.", 2),  # ellipsis
        ("They met at 5 p.m. on Friday.", 1),
        ("See e.g. the appendix, i.e. part two.", 1),
    ],
)
def test_segmentation_survives_hard_cases(text, expected):
    found, _ = sentences(text)
    assert len(found) == expected, found


def test_markdown_headings_and_chapter_lines_start_chapters():
    text = "# Title\n\nIntro text.\n\nCHAPTER IV\n\nThe Return\n\nBody one. Body two.\n\nChapter 12: The End\n\nLast words."
    doc = split_document(text)
    assert [c.title for c in doc.chapters] == ["Title", "CHAPTER IV: The Return", "Chapter 12: The End"]
    body = doc.chapters[1].paragraphs[-1]
    assert [doc.sentence_text(s) for s in doc.sentences_of(body)] == ["Body one.", "Body two."]


def test_bullets_and_headlines_are_sentences_without_final_punctuation():
    found, _ = sentences("Breaking news headline\n\n- first item\n- second item\n* third item")
    assert found == ["Breaking news headline", "first item", "second item", "third item"]


def test_markup_is_masked_not_removed():
    text = "Read **this** [guide](https://example.com/x) and `code` now."
    found, doc = sentences(text)
    assert len(doc.speakable) == len(text)
    assert "https" not in found[0] and "**" not in found[0]
    assert found[0].split() == ["Read", "this", "guide", "and", "code", "now."]


def test_empty_and_symbol_only_documents_have_no_sentences():
    assert split_document("").sentences == []
    assert split_document("\n\n   \n").sentences == []
    assert split_document("*** --- ###").sentences == []


def test_huge_unpunctuated_line_is_cut_into_bounded_pieces():
    text = "word " * 200_000  # 1 MB, no punctuation
    doc = split_document(text)
    assert doc.sentences and max(s.end - s.start for s in doc.sentences) <= 2000
    assert doc.sentences[-1].end == len(text.rstrip())


def test_control_characters_and_rtl_text_do_not_break_splitting():
    text = "Hello\x07 world.\u202e Shalom שלום עולם. Emoji 😀 here."
    doc = split_document(text)
    assert len(doc.sentences) == 3


def test_read_input_rejects_binary_and_invalid_utf8(tmp_path):
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(ReaderError, match="binary"):
        read_input(str(binary))
    latin = tmp_path / "l.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ReaderError, match="UTF-8"):
        read_input(str(latin))
    with pytest.raises(ReaderError, match="no such file"):
        read_input(str(tmp_path / "missing.txt"))
    with pytest.raises(ReaderError, match="folder"):
        read_input(str(tmp_path))


def test_read_input_from_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("\ufeffHello there.".encode("utf-8"))))
    assert read_input("-") == "Hello there."
