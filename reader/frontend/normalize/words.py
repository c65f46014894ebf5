"""Words, symbols and punctuation: the common case, and what a word may turn out to be."""

from __future__ import annotations

import unicodedata

from .abbreviations import is_initial, read_abbreviation
from .acronyms import read_capitals
from .lexer import Lexeme, is_mark
from .numbers import vulgar_fraction_parts
from .roman import roman_as_number
from .sentence import SentenceReader
from .spelling import fraction
from .tables import ABBREVIATIONS, SINGULAR_SYMBOL_WORDS, SYMBOL_WORDS, TECH_NAMES
from .units import is_one


def read_word(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    word = reader.text[lexeme.start:lexeme.end].replace("’", "'")
    if word.lower() in reader.keep:  # the user's lexicon decides how it sounds
        reader.word(word, lexeme.start, lexeme.end)
        return index + 1
    ordinary_case = word.islower() or (word[:1].isupper() and word[1:].islower())
    if ordinary_case and not reader.shouted and word.lower() not in ABBREVIATIONS:
        if word.replace("'", "").isalpha():  # the common case: nothing to interpret
            reader.word(word, lexeme.start, lexeme.end)
            return index + 1
    if not word.replace("'", "").isalpha():
        return _read_mixed_word(reader, index, lexeme)
    roman = roman_as_number(reader, index, word)
    if roman is not None:
        reader.say(roman, lexeme.start, lexeme.end)
        return index + 1
    if is_initial(reader, index, word):  # "J. Smith": the period is no sentence break
        reader.word(word, lexeme.start, lexeme.end)
        return index + 2
    after_abbreviation = read_abbreviation(reader, index, lexeme, word)
    if after_abbreviation is not None:
        return after_abbreviation
    if read_capitals(reader, lexeme, word):
        return index + 1
    if reader.shouted and word != "I":
        word = word.lower()
    reader.word(word, lexeme.start, lexeme.end)
    return index + 1


def _read_mixed_word(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    """A word holding combining marks or non-letter numerics ("x²", "café" decomposed)."""
    piece_start = lexeme.start
    for position in range(lexeme.start, lexeme.end + 1):
        char = reader.text[position] if position < lexeme.end else ""
        if char and (char.isalpha() or char in "'’" or is_mark(char)):
            continue
        if position > piece_start:
            piece = reader.text[piece_start:position].replace("’", "'")
            reader.word(piece.lower() if reader.shouted else piece, piece_start, position)
        if char:
            _read_symbol(reader, position)
        piece_start = position + 1
    return index + 1


def _read_symbol(reader: SentenceReader, position: int) -> None:
    char = reader.text[position]
    if char in SYMBOL_WORDS:
        reader.say(SYMBOL_WORDS[char], position, position + 1)
    elif parts := vulgar_fraction_parts(char):  # a lone "½"
        reader.say(fraction(*parts), position, position + 1)
    elif unicodedata.category(char) in ("Pd", "Ps", "Pe", "Pi", "Pf"):
        reader.punct(char, position, position + 1)  # dashes, brackets and quotes of any script


def read_tech_name(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    for word in TECH_NAMES[reader.text[lexeme.start:lexeme.end]].split():  # "C sharp": the letter stays a capital
        reader.word(word, lexeme.start, lexeme.end)
    return index + 1


def read_other(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    char = reader.text[lexeme.start]
    following = reader.lexeme_text(index + 1) if reader.adjacent(index, index + 1) else ""
    if char == "#":  # "#5" -> "number five", "#MeToo" -> "hashtag MeToo"
        if reader.kind(index + 1) == "number" and following:
            reader.say("number", lexeme.start, lexeme.end)
        elif reader.kind(index + 1) == "word" and following:
            reader.say("hashtag", lexeme.start, lexeme.end)
    elif char in SINGULAR_SYMBOL_WORDS and is_one(reader.lexeme_text(index - 1)):
        reader.say(SINGULAR_SYMBOL_WORDS[char], lexeme.start, lexeme.end)
    else:
        _read_symbol(reader, lexeme.start)
    return index + 1


_NUMERIC_KINDS = frozenset({"number", "currency", "fraction", "vulgar_fraction"})


def read_punct(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    mark = reader.text[lexeme.start:lexeme.end]
    joins = reader.adjacent(index - 1, index) and reader.adjacent(index, index + 1)
    if mark in ("-", "–") and joins:
        if reader.kind(index - 1) in _NUMERIC_KINDS and reader.kind(index + 1) in _NUMERIC_KINDS:
            reader.say("to", lexeme.start, lexeme.end)  # "1990-1995", "pages 10–20"
        elif mark == "-":
            pass  # a hyphen inside a compound: "well-known" is read as two words
        else:
            reader.punct(mark, lexeme.start, lexeme.end)
    else:
        reader.punct(mark, lexeme.start, lexeme.end)
    return index + 1
