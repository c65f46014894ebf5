"""Text normalisation: one sentence of raw text -> speakable word tokens with source offsets.

The sentence is first cut into lexemes by one master regex (lexer), then each lexeme is read
aloud by a handler for its kind that may look at its neighbours (a month before a day, a unit
after a number, a capitalised name after "St."): numbers, money, units, dates and times,
addresses, abbreviations, acronyms, Roman numerals, words and symbols. The vocabulary those
handlers use lives in data/ (tables).

Every Token keeps the span of the source text it was read from, so that audio can be
aligned back onto the original document. All number spelling goes through num2words (spelling).
"""

from __future__ import annotations

from typing import Container

from .abbreviations import read_dotted
from .addresses import read_digit_string, read_email_or_domain, read_url
from .dates import read_iso_date, read_slash_date, read_time
from .money import read_currency
from .numbers import read_fraction, read_number, read_ratio, read_short_decade, read_version, read_vulgar_fraction
from .sentence import MAX_WORD_CHARS, WORD_PIECE_CHARS, Handler, SentenceReader, Token
from .units import read_degree_scale, read_rate_unit
from .words import read_other, read_punct, read_tech_name, read_word

__all__ = ["MAX_WORD_CHARS", "WORD_PIECE_CHARS", "Token", "normalize_sentence"]

_HANDLERS: dict[str, Handler] = {
    "url": read_url,
    "email": read_email_or_domain,
    "domain": read_email_or_domain,
    "phone": read_digit_string,
    "iso_date": read_iso_date,
    "slash_date": read_slash_date,
    "currency": read_currency,
    "tech_name": read_tech_name,
    "ratio": read_ratio,
    "version": read_version,
    "clock": read_time,
    "hour": read_time,
    "short_decade": read_short_decade,
    "vulgar_fraction": read_vulgar_fraction,
    "fraction": read_fraction,
    "degree_scale": read_degree_scale,
    "number": read_number,
    "rate_unit": read_rate_unit,
    "dotted": read_dotted,
    "word": read_word,
    "punct": read_punct,
    "other": read_other,
}


def normalize_sentence(
    text: str, offset: int = 0, heading: bool = False, keep: Container[str] = frozenset()
) -> list[Token]:
    """Turns one sentence into speakable word and punctuation tokens.

    `offset` is where the sentence starts in the original document; every token's
    [start, end) indexes the source text it was read from. `heading` marks a heading or
    chapter line, where Roman numerals are read as numbers ("CHAPTER IV"). Words whose
    lowercase form is in `keep` (the user's lexicon) are passed on as written, never
    spelled or expanded ("SQL", "GIF").
    """
    reader = SentenceReader(text, offset, heading, keep)
    index = 0
    while index < len(reader.lexemes):
        lexeme = reader.lexemes[index]
        index = _HANDLERS[lexeme.kind](reader, index, lexeme)
    return reader.tokens
