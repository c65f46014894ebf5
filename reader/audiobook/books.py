"""The book: a text, Markdown or EPUB file as one text and its chapters."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..frontend.document import read_input, split_document
from ..frontend.epub import is_epub


@dataclass(frozen=True)
class BookChapter:
    title: str
    start: int  # [start, end): the chapter in Book.text
    end: int


@dataclass(frozen=True)
class Book:
    title: str
    text: str  # what is read (for EPUB: the extracted Markdown-like text)
    chapters: list[BookChapter]


def read_book(path: str) -> Book:
    """A text, Markdown or EPUB file (or '-' for standard input) as one text and its chapters."""
    if is_epub(path):
        from ..frontend.epub import read_epub

        epub = read_epub(path)
        texts, chapters, cursor = [], [], 0
        for number, chapter in enumerate(epub.chapters, 1):
            chapters.append(BookChapter(chapter.title or f"Chapter {number}", cursor, cursor + len(chapter.text)))
            texts.append(chapter.text)
            cursor += len(chapter.text) + 2
        return Book(epub.title or Path(path).stem, "\n\n".join(texts), chapters)
    text = read_input(path)
    # Chapters run from the line of one heading to the line of the next, so each chapter's text
    # starts with its own heading markup (and its heading is read as a heading).
    found = split_document(text).chapters
    bounds = [0] + [text.rfind("\n", 0, c.start) + 1 for c in found[1:]] + [len(text)]
    chapters = [
        BookChapter(c.title or f"Chapter {number}", start, end)
        for number, (c, start, end) in enumerate(zip(found, bounds[:-1], bounds[1:]), 1)
    ]
    return Book(Path(path).stem if path != "-" else "book", text, chapters)
