"""Abbreviations ("Mr.", "St. John" / "Baker St.", "No. 5"), dotted forms ("e.g.", "U.S.") and initials ("J. Smith")."""

from __future__ import annotations

from .lexer import Lexeme
from .sentence import SentenceReader, is_capitalised
from .tables import ABBREVIATIONS, When


def read_dotted(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    source = reader.text[lexeme.start:lexeme.end - 1].lower()
    abbreviation = ABBREVIATIONS.get(source)
    if abbreviation:
        reader.say(abbreviation.expansion, lexeme.start, lexeme.end)
    else:
        reader.spell(lexeme.start, lexeme.end)  # "U.S.", "a.m.", "Ph.D."
    if lexeme.end >= reader.content_end:
        reader.punct(".", lexeme.end - 1, lexeme.end)
    return index + 1


def _applies(reader: SentenceReader, index: int, when: str | None) -> bool:
    after = index + 2 if reader.is_period(index + 1) else index + 1
    if when == When.ALWAYS or when == When.NAME_SIDE:
        return True
    if when == When.BEFORE_NAME:
        return reader.kind(after) == "word" and is_capitalised(reader.lexeme_text(after))
    if when == When.BEFORE_NUMBER:
        return reader.kind(after) in ("number", "fraction", "phone")
    return False


def read_abbreviation(reader: SentenceReader, index: int, lexeme: Lexeme, word: str) -> int | None:
    """Expands the abbreviation `word` if its context calls for it; returns the next index, or None."""
    abbreviation = ABBREVIATIONS.get(word.lower())
    if abbreviation is None:
        return None
    capitalised_form = word[:1].isupper() and (word[1:].islower() or not word[1:] or reader.shouted)
    if abbreviation.capitalised and not capitalised_form:
        return None
    has_period = reader.is_period(index + 1) and reader.adjacent(index, index + 1)
    when = abbreviation.with_period if has_period else abbreviation.bare
    if not _applies(reader, index, when):
        return None
    expansion = abbreviation.expansion
    if when == When.NAME_SIDE:
        before_name, after_name = expansion.split("|")
        following = index + 2 if has_period else index + 1
        before_a_name = reader.kind(following) == "word" and is_capitalised(reader.lexeme_text(following))
        after_a_name = reader.kind(index - 1) == "word" and is_capitalised(reader.lexeme_text(index - 1))
        expansion = after_name if after_a_name and not before_a_name else before_name
    reader.say(expansion, lexeme.start, lexeme.end)
    return reader.take_period(index) if has_period else index + 1


def is_initial(reader: SentenceReader, index: int, word: str) -> bool:
    return (len(word) == 1 and word.isupper() and reader.is_period(index + 1)
            and reader.adjacent(index, index + 1) and reader.kind(index + 2) == "word"
            and is_capitalised(reader.lexeme_text(index + 2)))
