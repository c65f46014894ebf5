"""All-capitals words: spoken when pronounceable ("NASA"), spelled otherwise ("FBI", "CDs", "FBI's")."""

from __future__ import annotations

import re

from .lexer import Lexeme
from .sentence import SentenceReader
from .tables import CODAS, ONSETS

_VOWELS = frozenset("AEIOUY")
# A leading Y is a consonant ("YOU"), elsewhere a vowel; W after a vowel is part of it ("BROWN").
_ONSET_RE = re.compile(r"Y?[^AEIOUY]*")
_CODA_RE = re.compile(r"[^AEIOUYW]*\Z")
_CONSONANT_RUN_RE = re.compile(r"[^AEIOUYW]+")
_VOWEL_RUN_RE = re.compile(r"[AEIOUY]{3,}")


def is_pronounceable(letters: str) -> bool:
    """Whether an all-capitals word can be read as a word rather than spelled out."""
    onset = _ONSET_RE.match(letters).group()
    nucleus_on = letters[len(onset):]
    if not letters.isascii() or not _VOWELS.intersection(nucleus_on) or _VOWEL_RUN_RE.search(nucleus_on):
        return False
    coda = _CODA_RE.search(letters).group()
    if coda.endswith("S") and coda not in CODAS:
        coda = coda[:-1]  # plural "AIDS"
    runs = _CONSONANT_RUN_RE.findall(letters)
    return onset in ONSETS and coda in CODAS and all(len(run) <= 4 for run in runs)


def read_capitals(reader: SentenceReader, lexeme: Lexeme, word: str) -> bool:
    """Reads an all-capitals word: spelled when unpronounceable ("FBI", "CDs", "FBI's")."""
    letters, apostrophe, possessive = word.partition("'")
    plural = not apostrophe and len(letters) > 2 and letters.endswith("s")
    if plural:
        letters = letters[:-1]
    if len(letters) < 2 or not letters.isupper() or apostrophe and possessive != "s":
        return False
    if is_pronounceable(letters) and (reader.shouted or len(letters) >= 4):
        return False
    start = lexeme.start
    reader.spell(start, start + len(letters) - 1)
    last = start + len(letters) - 1
    # The plural or possessive rides on the last letter: "CDs" -> "C", "D's".
    reader.word(letters[-1] + ("'s" if plural or apostrophe else ""), last, lexeme.end)
    return True
