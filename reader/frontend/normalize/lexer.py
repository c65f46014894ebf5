"""The lexer: one master regex cuts a sentence into lexemes of known kinds.

Every alternative is either anchored on a literal or bounded, so scanning stays linear even on
megabytes without punctuation.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

from .tables import RATE_UNITS

_AMPM = r"[AaPp]\.?[Mm]\.?(?![^\W\d_])"
# Bounded pieces of e-mail addresses and domains: unbounded ones would rescan the rest of
# a long run at every position (quadratic on "a.a.a.a...").
_DOMAIN_LABEL = r"[A-Za-z0-9-]{1,63}"
_URL_TAIL = r"[^\s<>\"]*[^\s<>\".,;:!?'\")\]]"
_TLDS = r"com|org|net|edu|gov|mil|int|io|ai|co|uk|de|fr|info|biz|us|ca|au|eu|app|dev"

# Order matters: the first alternative that matches at a position wins.
_WORD = r"[^\W\d_]+(?:['’][^\W\d_]+)*"
_LEXEME_PATTERNS: dict[str, str] = {
    # Most lexemes are plain words followed by a space, which no other alternative can
    # start; trying them first spares the rest of the alternation.
    "spaced_word": rf"{_WORD}(?=\s|\Z)",
    "url": rf"(?:https?://|www\.){_URL_TAIL}",
    "email": rf"(?<![\w.+-])[\w.+-]{{1,64}}@{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL}){{1,8}}",
    "domain": rf"(?<![\w.@/-])(?:{_DOMAIN_LABEL}\.){{1,8}}(?:{_TLDS})(?![\w-])(?:/{_URL_TAIL})?",
    "phone": (
        r"(?<![\w+])(?:"
        r"\+\d{1,3}(?:[ .-]\(?\d{1,4}\)?){2,5}"  # +1 212 555 0100, +44 (20) 7946 0958
        r"|(?:1[ .-])?\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}"  # 555-123-4567, (555) 123-4567
        r"|\d{3}-\d{4}"  # 555-1234
        r")(?![\w-])"
    ),
    "iso_date": r"(?<![\w-])\d{4}-\d{2}-\d{2}(?![\w-])",
    "slash_date": r"(?<![\w/])\d{1,2}/\d{1,2}/(?:\d{4}|\d{2})(?![\w/])",
    "currency": (
        r"[$£€¥₹]\s?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?"
        r"(?:(?:\s?(?:trillion|billion|million|thousand|bn|tn|mn|m|k)|[bBMKT])(?![^\W\d_]))?"
    ),
    # Names that read their symbols: "C#", "F#", ".NET".
    "tech_name": r"(?<![\w.#+])(?:[CF]#|\.NET)(?![\w#])",
    "clock": rf"(?<![\d:])\d{{1,2}}:[0-5]\d(?::[0-5]\d)?(?!\d)(?:\s?{_AMPM})?",
    "ratio": r"(?<![\w:.,])\d{1,4}:(?:\d|\d{3,6})(?![\w:])",  # "16:9", "1:100" (a clock has 2-digit minutes)
    "hour": rf"(?<![\d:.,])\d{{1,2}}\s?{_AMPM}",
    "short_decade": r"['’]\d0s(?![^\W\d_])",
    "vulgar_fraction": r"\d*[\u00bc-\u00be\u2150-\u215e]",
    "fraction": r"(?<![\w/.])(?:\d+ )?\d+/\d+(?![\w/])",
    "degree_scale": r"°\s?[CF](?![^\W\d_])",
    # The sign counts only where it cannot be a hyphen joining two tokens ("5-3", "COVID-19").
    "version": r"(?<![\w.])\d{1,6}(?:\.\d{1,6}){2,8}(?![\w.])",  # "14.2.1"
    "number": (
        r"(?:(?<![\w.,)\]-])[-−])?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?"
        r"(?:(?:st|nd|rd|th|s|['’]s|bn|mn|tn)(?![^\W\d_])|x(?!\w))?"  # "8bn", "3x faster"
    ),
    "rate_unit": rf"(?<![^\W\d_])(?:{'|'.join(map(re.escape, RATE_UNITS))})(?![^\W\d_])",
    "dotted": r"(?<![\w.])(?:[A-Za-z]{1,2}\.){1,10}[A-Za-z]{1,2}\.",
    "word": _WORD,
    "punct": r"\.{3}|[!?]+|-{2,}|[.,;:()\[\]{}\"“”„‘’‚'«»‹›—–‒―…¡¿-]",
    "other": r".",
}
# Leading whitespace is skipped inside the match: one match per lexeme keeps lexing fast.
_LEXEME_RE = re.compile(
    r"\s*(?:" + "|".join(f"(?P<{kind}>{pattern})" for kind, pattern in _LEXEME_PATTERNS.items()) + ")",
    re.DOTALL,
)


class Lexeme(NamedTuple):
    kind: str
    start: int  # offsets within the sentence
    end: int


def is_mark(char: str) -> bool:
    # Combining marks continue the preceding letter (decomposed accents, Indic vowel
    # signs); variation selectors only restyle emoji and are dropped with them.
    return unicodedata.category(char)[0] == "M" and not (
        "\ufe00" <= char <= "\ufe0f" or "\U000e0100" <= char <= "\U000e01ef"
    )


def lex(text: str) -> list[Lexeme]:
    """Cuts a sentence into lexemes, dropping whitespace and gluing combining marks to words."""
    lexemes: list[Lexeme] = []
    word_end = -1  # end of the last word lexeme, which a mark or more letters may extend
    for match in _LEXEME_RE.finditer(text):
        kind = match.lastgroup
        start, end = match.span(kind)
        if kind == "spaced_word":
            kind = "word"
        elif kind == "other" and (text[start].isspace() or is_mark(text[start])):
            if start == word_end:  # a combining mark continues the word
                lexemes[-1] = Lexeme("word", lexemes[-1].start, end)
                word_end = end
            continue  # trailing whitespace, or a stray mark with no letter to carry it
        if kind == "word" and start == word_end:  # letters after a mark: still one word
            lexemes[-1] = Lexeme("word", lexemes[-1].start, end)
        else:
            lexemes.append(Lexeme(kind, start, end))
        word_end = end if kind == "word" else -1
    return lexemes
