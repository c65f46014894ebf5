"""Roman numerals in context: "Chapter IV" four, "Henry VIII" the eighth, "I Know Why" a pronoun."""

from __future__ import annotations

import re

from .sentence import SentenceReader, is_capitalised
from .spelling import cardinal, ordinal
from .tables import NUMBERED_NOUNS, REGNAL_NAMES

_ROMAN_RE = re.compile(r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
# Regnal numbers stay small and use only I, V, X: "DC" after "Washington" is not 600.
_REGNAL_RE = re.compile(r"X{0,3}(?:IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"M": 1000, "D": 500, "C": 100, "L": 50, "X": 10, "V": 5, "I": 1}


def roman_value(numeral: str) -> int:
    values = [_ROMAN_VALUES[char] for char in numeral]
    return sum(-value if value < following else value
               for value, following in zip(values, values[1:] + [0]))


def roman_as_number(reader: SentenceReader, index: int, word: str) -> str | None:
    """How a Roman numeral in context is read ("Henry VIII" -> "the eighth"), or None."""
    if not _ROMAN_RE.fullmatch(word):
        return None
    previous = reader.lexeme_text(index - 1) if reader.kind(index - 1) == "word" else ""
    if previous.lower() in NUMBERED_NOUNS:
        return cardinal(roman_value(word))
    ends_phrase = reader.kind(index + 1) in ("punct", "")
    if reader.heading and index == 0 and (len(word) >= 2 or ends_phrase):
        return cardinal(roman_value(word))  # "IV. The Return", but not "I Know Why"
    # Single letters are too often something else ("Malcolm X", "When I"); "Henry V" is kept.
    if (is_capitalised(previous) and _REGNAL_RE.fullmatch(word)
            and (len(word) >= 2 or word == "V" or previous.lower() in REGNAL_NAMES)):
        return f"the {ordinal(roman_value(word))}"
    return None
