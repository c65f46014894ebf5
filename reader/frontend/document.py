"""Documents: reading input files and splitting them into chapters, paragraphs and sentences.

Every span keeps character offsets into the original text, so later stages (word timings,
highlighting) can point back at what the user wrote. Markdown markup is not deleted but
*masked*: replaced by spaces in a same-length copy of the text, so offsets never shift.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Iterator
from pathlib import Path

import pysbd

from ..errors import ReaderError

# Input files larger than this are refused: a book is a few MB; 200 MB of "text" is a mistake.
MAX_INPUT_BYTES = 200 * 1024 * 1024

# pysbd is regex-heavy; feeding it bounded pieces keeps segmentation linear on huge unpunctuated lines.
SEGMENTER_PIECE_CHARS = 2000


@dataclass(frozen=True)
class SentenceSpan:
    """One sentence (or headline, list item) as a span of the original text."""

    start: int
    end: int
    is_heading: bool = False


@dataclass
class Paragraph:
    start: int
    end: int
    # None until first needed: sentence segmentation is the slow part of splitting, so a long book
    # is segmented paragraph by paragraph as reading reaches it (Document.sentences_of).
    sentences: list[SentenceSpan] | None = None
    is_heading: bool = False


@dataclass
class Chapter:
    title: str | None
    start: int
    end: int
    paragraphs: list[Paragraph] = field(default_factory=list)


@dataclass
class Document:
    """The original text, its speakable mask (markup blanked out) and its structure."""

    text: str
    speakable: str
    chapters: list[Chapter]
    splitter: "SentenceSplitter"

    def sentence_text(self, span: SentenceSpan) -> str:
        """The speakable text of a sentence (same length as the original span)."""
        return self.speakable[span.start : span.end]

    def iter_sentences_of(self, paragraph: Paragraph) -> Iterator[SentenceSpan]:
        """The paragraph's sentences, segmented as they are consumed (remembered once all are seen)."""
        if paragraph.sentences is not None:
            yield from paragraph.sentences
            return
        found = []
        for s, e in self.splitter.split(self.speakable, paragraph.start, paragraph.end):
            if _has_speakable(self.speakable[s:e]):
                found.append(SentenceSpan(s, e))
                yield found[-1]
        paragraph.sentences = found

    def sentences_of(self, paragraph: Paragraph) -> list[SentenceSpan]:
        return list(self.iter_sentences_of(paragraph))

    @property
    def sentences(self) -> list[SentenceSpan]:
        return [s for c in self.chapters for p in c.paragraphs for s in self.sentences_of(p)]


def read_input(path: str) -> str:
    """Read a UTF-8 document from a file path, or standard input for '-'.

    Binary files, invalid UTF-8 and oversized inputs raise ReaderError with one line.
    """
    name = "standard input" if path == "-" else path
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            p = Path(path)
            if p.is_dir():
                raise ReaderError(f"{name} is a folder, not a text file")
            with p.open("rb") as fh:
                data = fh.read(MAX_INPUT_BYTES + 1)
    except FileNotFoundError:
        raise ReaderError(f"no such file: {name}") from None
    except PermissionError:
        raise ReaderError(f"cannot read {name}: permission denied") from None
    except OSError as exc:
        raise ReaderError(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise ReaderError(f"{name} is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MB; split it into parts")
    if b"\x00" in data[:65536]:
        raise ReaderError(f"{name} looks like a binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReaderError(f"{name} is not valid UTF-8 (bad byte at offset {exc.start}); convert it to UTF-8 first") from None
    return text


_FENCED_CODE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?(^[ \t]*\1[^\n]*$|\Z)", re.M | re.S)
_HTML_TAG = re.compile(r"<[A-Za-z/!][^<>\n]{0,200}>")
_IMAGE_OR_LINK = re.compile(r"(!?)\[([^\[\]\n]{0,500})\]\(([^()\s]{0,2000})(?:\s+\"[^\"\n]*\")?\)")
# Emphasis and code markers touching a word on either side ("**bold**", "`code`"); a lone " * " is not markup.
_EMPHASIS = re.compile(r"(?<=\S)(\*+|_{2,}|~~|`+)|(\*+|_{2,}|~~|`+)(?=\S)")
_HEADING_PREFIX = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+", re.M)
_HEADING_SUFFIX = re.compile(r"[ \t]+#+[ \t]*$", re.M)
_BLOCKQUOTE = re.compile(r"^[ \t]*(>[ \t]?)+", re.M)
_BULLET = re.compile(r"^[ \t]*([-*+•‣◦▪]|\d{1,3}[.)])[ \t]+", re.M)
_RULE = re.compile(r"^[ \t]*([-*_=])([ \t]*\1){2,}[ \t]*$", re.M)
_SETEXT_UNDERLINE = re.compile(r"^[ \t]*(=+|-+)[ \t]*$", re.M)
# Unicode control characters other than newline and tab are never speakable.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# Terminal escape sequences (colours, cursor moves, window titles) are blanked whole, parameters and
# all: "\x1b[31mred" is "red", never "thirty one mred".
_TERMINAL_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]{0,64}[ -/]{0,8}[@-~]?"  # CSI
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]{0,2000}(?:\x07|\x1b\\|\x9c)?"  # OSC
    r"|\x1b[ -/]{0,8}[0-~]?"  # other escapes
)

_CHAPTER_LINE = re.compile(
    r"^(chapter|book|part|prologue|epilogue|preface|introduction)\b([ \t]+([ivxlcdm]+|\d+|[a-z]+(-[a-z]+)?)\b)?[ \t]*([.:—–-].*)?$",
    re.I,
)
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)*")


def display_text(text: str) -> str:
    """Text safe to print on a terminal: escape sequences and control characters blanked, spaces collapsed."""
    return " ".join(_CONTROL.sub(" ", _TERMINAL_ESCAPE.sub(" ", text)).split())


def _blank(chars: list[str], start: int, end: int) -> None:
    for i in range(start, end):
        if chars[i] != "\n":
            chars[i] = " "


def mask_markup(text: str) -> tuple[str, set[int]]:
    """Blank out Markdown/HTML markup; return the masked text and the offsets of heading lines.

    Link targets and image URLs are not read (their visible text is); fenced code is not read.
    """
    chars = list(text)
    for m in _TERMINAL_ESCAPE.finditer(text):
        _blank(chars, m.start(), m.end())
    for m in _CONTROL.finditer(text):
        chars[m.start()] = " "
    for m in _FENCED_CODE.finditer(text):
        _blank(chars, m.start(), m.end())
    for m in _HTML_TAG.finditer(text):
        _blank(chars, m.start(), m.end())
    for m in _IMAGE_OR_LINK.finditer(text):
        # Links and images read their visible text (an image's alt text), never the target URL.
        _blank(chars, m.start(), m.start(2))
        _blank(chars, m.end(2), m.end())
    heading_lines: set[int] = set()
    for m in _HEADING_PREFIX.finditer(text):
        heading_lines.add(m.start())
        _blank(chars, m.start(), m.end())
    for pattern in (_HEADING_SUFFIX, _BLOCKQUOTE, _RULE):
        for m in pattern.finditer(text):
            _blank(chars, m.start(), m.end())
    for m in _SETEXT_UNDERLINE.finditer(text):
        # "Title\n=====" marks the previous line as a heading.
        prev_end = m.start() - 1
        if prev_end > 0 and text[prev_end] == "\n":
            prev_start = text.rfind("\n", 0, prev_end) + 1
            if text[prev_start:prev_end].strip():
                heading_lines.add(prev_start)
                _blank(chars, m.start(), m.end())
    for m in _EMPHASIS.finditer(text):
        _blank(chars, m.start(), m.end())
    return "".join(chars), heading_lines


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _pieces(text: str, start: int, end: int, limit: int = SEGMENTER_PIECE_CHARS) -> Iterator[tuple[int, int]]:
    """Cut a long span into pieces of at most `limit` characters, preferring sentence punctuation, then spaces."""
    while end - start > limit:
        window = text[start : start + limit]
        cut = max(window.rfind(". "), window.rfind("! "), window.rfind("? "))
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = limit - 1  # no space at all: a hard cut is the only bounded option
        yield start, start + cut + 1
        start += cut + 1
    yield start, end


# A line clearly shorter than its block's longest line, a line of a block whose lines are all short
# (headline lists, verse) or a title-cased line is not a wrapped line of prose: without final
# punctuation and followed by a capitalised line, it is a headline.
HEADLINE_MAX_CHARS = 40
HEADLINE_SHORT_SHARE = 0.6
_LINE_END_PUNCTUATION = frozenset(".!?…:;,-—–([{/&")
_TITLE_WORD = re.compile(r"[^\W\d_]{4,}")

# Abbreviations that can end a sentence, and the common words that start the next one
# ("He lives on Main St. Tomorrow he moves."); before a name they do not ("St. Paul", "Dr. Watson").
_FINAL_ABBREVIATION = r"(?:St|Ave|Rd|Blvd|Dr|Inc|Ltd|Co|Corp|Bros|Jr|Sr|Esq|etc|[ap]\.m|[AP]\.M|EST|PST|GMT|UTC)\."
_SENTENCE_STARTERS = (
    "The A An He She It They We I You This That These Those There Then Now Here Today Tomorrow Yesterday "
    "Tonight But And So Yet Or However Meanwhile Later After Before When While If In On At As His Her Its "
    "Their Our My Your Some Many Most All No Not Nobody Everyone One Two Three What Who Why How Where"
)
_ABBREVIATION_THEN_STARTER = re.compile(
    rf"(?<![\w.]){_FINAL_ABBREVIATION}[\"'”’)]?(?=\s+[\"“‘(]?(?:{'|'.join(_SENTENCE_STARTERS.split())})\b)"
)
# An ellipsis followed by a capital ends a sentence ("He came… Then it ended.").
_ELLIPSIS_THEN_CAPITAL = re.compile(r"(?:…|\.\.\.)[\"'”’)]?(?=\s+[\"“‘(]?[A-Z])")
# Abbreviations that never end a sentence before a number ("approx. 5 km", "vol. 2", "No. 5").
_ABBREVIATION_BEFORE_NUMBER = re.compile(
    r"(?<![\w.])(?:approx|vol|vols|no|nos|p|pp|ch|fig|figs|sec|art|para|ca|cf|ed|eq|ref|tel|est)\.\Z", re.I
)
# Time zones after a clock ("9 p.m. EST."): the clock's period does not end the sentence.
_TIME_ZONE_START = re.compile(r"(?:[ECMPA][SD]T|GMT|UTC|BST|CET|CEST|ET|PT|CT)\b")
_CLOCK_PERIOD_END = re.compile(r"(?<![\w.])[AaPp]\.[Mm]\.\Z")


def _headline_breaks(text: str, start: int, end: int) -> list[int]:
    """Offsets just past the headline lines of text[start:end]: lines that end without punctuation,
    are not wrapped prose (short, or title-cased) and are followed by a line starting with a capital."""
    lines = []
    position = start
    while position < end:
        line_end = text.find("\n", position, end)
        line_end = end if line_end < 0 else line_end
        lines.append((position, line_end))
        position = line_end + 1
    if len(lines) < 2:
        return []
    longest = max(len(text[a:b].strip()) for a, b in lines)
    breaks = []
    for (a, b), (next_a, next_b) in zip(lines, lines[1:]):
        line, following = text[a:b].strip(), text[next_a:next_b].lstrip(" \t\"“‘(")
        ends_open = not line or line[-1] in _LINE_END_PUNCTUATION
        if ends_open or not following or not (following[0].isupper() or following[0].isdigit()):
            continue
        words = line.split()
        title_cased = len(words) >= 2 and all(w[0].isupper() for w in _TITLE_WORD.findall(line))
        if longest <= HEADLINE_MAX_CHARS or len(line) < HEADLINE_SHORT_SHARE * longest or title_cased:
            breaks.append(b)
    return breaks


def _merges_with_previous(text: str, previous: tuple[int, int], current: tuple[int, int]) -> bool:
    """Whether a boundary the segmenter found between two segments is not a sentence end."""
    before, after = text[previous[0] : previous[1]], text[current[0] : current[1]]
    if previous[1] == current[0]:  # no space: inside a URL ("search?q=1") or a name (".NET")
        return True
    first = after[0]
    if first.islower() or first in ",;:)]}%":  # "30 lbs. and more", "Main St., Springfield"
        return True
    if first.isdigit() and _ABBREVIATION_BEFORE_NUMBER.search(before):
        return True
    return bool(_CLOCK_PERIOD_END.search(before) and _TIME_ZONE_START.match(after))


def _extra_breaks(text: str, start: int, end: int) -> list[int]:
    """Sentence ends the segmenter misses: an abbreviation before a sentence starter, "…" before a capital."""
    found = [m.end() for m in _ABBREVIATION_THEN_STARTER.finditer(text, start, end)]
    found += [m.end() for m in _ELLIPSIS_THEN_CAPITAL.finditer(text, start, end)]
    return sorted(found)


class SentenceSplitter:
    """Rule-based sentence segmentation (pysbd, robust to abbreviations, initials, decimals and quotes),
    corrected for headlines, abbreviations before numbers and lowercase words, URLs and ellipses."""

    def split(self, text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Sentence spans of text[start:end], produced piece by piece (a huge paragraph streams)."""
        # A pysbd Segmenter keeps the text it is segmenting on itself, so one shared by concurrent
        # readings would mix their texts; making one is cheap, so each call has its own.
        segmenter = pysbd.Segmenter(language="en", clean=False)
        pending: tuple[int, int] | None = None
        for block_start, block_end in _hard_blocks(text, start, end):
            for segment in self._segments(segmenter, text, block_start, block_end):
                mergeable = pending is not None and segment[1] - pending[0] <= SEGMENTER_PIECE_CHARS
                if mergeable and _merges_with_previous(text, pending, segment):
                    pending = (pending[0], segment[1])
                    continue
                if pending is not None:
                    yield pending
                pending = segment
            if pending is not None:  # headlines and hard pieces are never merged across
                yield pending
                pending = None

    @staticmethod
    def _segments(segmenter, text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
        for piece_start, piece_end in _pieces(text, start, end):
            piece = text[piece_start:piece_end].replace("\n", " ")
            cursor = 0
            # The processor's sentences, not segment()'s: segment() anchors each in the text with a regex
            # compiled per sentence (a third of pysbd's time). Each is anchored here by search instead.
            for seg in segmenter.processor(piece).process():
                seg_text = seg.strip()
                if not seg_text:
                    continue
                found = piece.find(seg_text, cursor)
                if found < 0:
                    continue
                cursor = found + len(seg_text)
                seg_start = piece_start + found
                for cut in _extra_breaks(text, seg_start, piece_start + cursor) + [piece_start + cursor]:
                    s, e = _strip_span(text, seg_start, cut)
                    if e > s:
                        yield s, e
                    seg_start = cut


def _hard_blocks(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """text[start:end] cut after each headline line: segments never run across these cuts."""
    for cut in _headline_breaks(text, start, end):
        yield start, cut
        start = cut
    yield start, end


def _is_chapter_line(line: str) -> bool:
    return len(line) <= 100 and bool(_CHAPTER_LINE.match(line.strip()))


def _is_untitled_chapter_line(line: str) -> bool:
    m = _CHAPTER_LINE.match(line.strip())
    return m is not None and m.group(5) is None


def _has_speakable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def split_document(text: str, splitter: SentenceSplitter | None = None) -> Document:
    """Split a document into chapters (headings, chapter lines), paragraphs (blank lines) and sentences.

    Headings and list items are sentences of their own even without final punctuation. Paragraphs
    are segmented into sentences lazily (Document.sentences_of), so splitting a book is fast.
    """
    speakable, heading_lines = mask_markup(text)
    chapters: list[Chapter] = [Chapter(title=None, start=0, end=0)]

    def add_paragraph(start: int, end: int, is_heading: bool) -> None:
        start, end = _strip_span(speakable, start, end)
        if end <= start or not _has_speakable(speakable[start:end]):
            return
        title = " ".join(speakable[start:end].split())
        chapter = chapters[-1]
        # "CHAPTER IV" followed by a short unpunctuated line: that line is the chapter's title.
        names_chapter = (
            chapter.title is not None
            and _is_untitled_chapter_line(chapter.title)
            and all(p.is_heading for p in chapter.paragraphs)
            and (is_heading or (len(title) <= 80 and "\n" not in speakable[start:end] and title[-1] not in ".!?,;:"))
        )
        if names_chapter:
            chapter.title = f"{chapter.title}: {title}"
            chapter.paragraphs.append(Paragraph(start, end, [SentenceSpan(start, end, True)], is_heading=True))
        elif is_heading:
            chapter = Chapter(title=title, start=start, end=end)
            chapters.append(chapter)
            chapter.paragraphs.append(Paragraph(start, end, [SentenceSpan(start, end, True)], is_heading=True))
        else:
            chapters[-1].paragraphs.append(Paragraph(start, end))
        chapters[-1].end = max(chapters[-1].end, end)

    block_start = 0
    for block_end, next_start in [(m.start(), m.end()) for m in _BLANK_LINES.finditer(speakable)] + [
        (len(speakable), len(speakable))
    ]:
        # Within a block, headings, chapter lines and list items stand alone; other lines are wrapped prose.
        prose_start = None
        line_start = block_start
        while line_start < block_end:
            line_end = speakable.find("\n", line_start, block_end)
            line_end = block_end if line_end < 0 else line_end
            line = speakable[line_start:line_end]
            standalone_heading = line_start in heading_lines or _is_chapter_line(line)
            bullet = _BULLET.match(text, line_start, line_end) is not None
            if standalone_heading or bullet:
                if prose_start is not None:
                    add_paragraph(prose_start, line_start, False)
                    prose_start = None
                if bullet:
                    add_paragraph(_BULLET.match(text, line_start, line_end).end(), line_end, False)
                else:
                    add_paragraph(line_start, line_end, True)
            elif prose_start is None:
                prose_start = line_start
            line_start = line_end + 1
        if prose_start is not None:
            add_paragraph(prose_start, block_end, False)
        block_start = next_start

    chapters = [c for c in chapters if c.paragraphs]
    return Document(text=text, speakable=speakable, chapters=chapters, splitter=splitter or SentenceSplitter())


def read_document(path: str) -> str:
    """The text of a text, Markdown or EPUB file (or '-' for standard input), for reading it whole."""
    from .epub import is_epub, read_epub

    if not is_epub(path):
        return read_input(path)
    return "\n\n".join(chapter.text for chapter in read_epub(path).chapters)


def require_speakable(text: str, source: str) -> None:
    """Refuse, before any model loads, a text without a letter or digit to read."""
    if not any(ch.isalnum() for ch in text):
        raise ReaderError(f"nothing speakable in {'standard input' if source == '-' else source}")
