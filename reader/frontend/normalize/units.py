"""Units after a number ("5 km", "1 lb."), rates ("km/h") and temperature scales ("°C")."""

from __future__ import annotations

from .lexer import Lexeme
from .sentence import SentenceReader
from .tables import RATE_UNITS, TEMPERATURE_SCALES, UNITS


def is_one(number_text: str) -> bool:
    return number_text.lstrip("-−+") in ("1", "1.0")


def read_unit_after(reader: SentenceReader, index: int, singular: bool) -> int:
    """Reads the unit after the number at `index`, if one follows; returns the next index."""
    unit_index = index + 1
    unit = reader.lexeme_text(unit_index)
    if reader.kind(unit_index) not in ("word", "rate_unit") or unit not in UNITS:
        return index + 1
    lexeme = reader.lexemes[unit_index]
    reader.say(UNITS[unit][0 if singular else 1], lexeme.start, lexeme.end)
    if reader.is_period(unit_index + 1) and reader.adjacent(unit_index, unit_index + 1):
        return reader.take_period(unit_index)
    return unit_index + 1


def read_rate_unit(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    """A rate unit with no number before it ("speed in km/h")."""
    reader.say(RATE_UNITS[reader.lexeme_text(index)][1], lexeme.start, lexeme.end)
    return index + 1


def read_degree_scale(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    degrees = "degree" if is_one(reader.lexeme_text(index - 1)) else "degrees"
    scale = TEMPERATURE_SCALES[reader.text[lexeme.end - 1]]
    reader.say(f"{degrees} {scale}", lexeme.start, lexeme.end)
    return index + 1
