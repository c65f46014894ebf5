"""URLs, e-mail addresses and domains read piece by piece; phone numbers digit by digit."""

from __future__ import annotations

import re

from .lexer import Lexeme
from .sentence import SentenceReader
from .tables import ADDRESS_SEPARATORS

_URL_SCHEME_RE = re.compile(r"https?://")
_ADDRESS_PIECE_RE = re.compile(r"[A-Za-z]+|\d+|.", re.DOTALL)


def read_url(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    start = lexeme.start
    scheme = _URL_SCHEME_RE.match(reader.text, start, lexeme.end)
    if scheme:
        start = scheme.end()  # "https://" is not read out
    _read_address(reader, start, lexeme.end)
    return index + 1


def _read_address(reader: SentenceReader, start: int, end: int) -> None:
    """Reads a URL, domain or e-mail address piece by piece: "john at example dot org"."""
    for piece in _ADDRESS_PIECE_RE.finditer(reader.text, start, end):
        text, (piece_start, piece_end) = piece.group(), piece.span()
        if text.isdecimal():
            reader.digits(piece_start, piece_end)
        elif text.isalpha() and (len(text) <= 2 or text.lower() == "www"):
            reader.spell(piece_start, piece_end)  # "io", "uk", "www" are spelled
        elif text.isalpha():
            reader.word(text, piece_start, piece_end)
        elif text in ADDRESS_SEPARATORS:
            reader.say(ADDRESS_SEPARATORS[text], piece_start, piece_end)


def read_email_or_domain(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    _read_address(reader, lexeme.start, lexeme.end)
    return index + 1


def read_digit_string(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    reader.digits(lexeme.start, lexeme.end)
    return index + 1
