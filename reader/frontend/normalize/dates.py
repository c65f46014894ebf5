"""Dates and times: "2024-03-05", "3/5/24", "9:30 a.m.", "5pm"."""

from __future__ import annotations

import re

from .lexer import Lexeme
from .sentence import SentenceReader
from .spelling import cardinal, ordinal, twenty_four_hour, year
from .tables import MONTHS


def _say_date(reader: SentenceReader, month: int, day: int, year_text: str, start: int, end: int) -> None:
    value = int(year_text)
    if len(year_text) == 4:
        year_words = year(value)
    elif value < 10:
        year_words = "oh " + cardinal(value)  # "'05" -> "oh five"
    else:
        year_words = cardinal(value)
    reader.say(f"{MONTHS[month - 1]} {ordinal(day)} {year_words}", start, end)


def read_iso_date(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    year_text, month, day = reader.text[lexeme.start:lexeme.end].split("-")
    if 1 <= int(month) <= 12 and 1 <= int(day) <= 31:
        _say_date(reader, int(month), int(day), year_text, lexeme.start, lexeme.end)
    else:
        reader.numbers_in(lexeme.start, lexeme.end, "")
    return index + 1


def read_slash_date(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    first_text, second_text, year_text = reader.text[lexeme.start:lexeme.end].split("/")
    first, second = int(first_text), int(second_text)
    if 1 <= first <= 12 and 1 <= second <= 31:  # American month/day first
        _say_date(reader, first, second, year_text, lexeme.start, lexeme.end)
    elif 1 <= second <= 12 and 1 <= first <= 31:  # day/month when the first cannot be a month
        _say_date(reader, second, first, year_text, lexeme.start, lexeme.end)
    else:
        reader.numbers_in(lexeme.start, lexeme.end, "slash")
    return index + 1


_CLOCK_RE = re.compile(r"(?P<hour>\d+)(?::(?P<minute>\d+))?(?::(?P<second>\d+))?\s?(?P<ampm>.*)", re.DOTALL)


def read_time(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    parts = _CLOCK_RE.fullmatch(reader.text, lexeme.start, lexeme.end)
    hour = int(parts["hour"])
    minute = int(parts["minute"] or 0)
    ampm_start = parts.start("ampm")
    words = [cardinal(hour)]
    if parts["hour"].startswith("0") and len(parts["hour"]) == 2 and not parts["ampm"]:
        words = [twenty_four_hour(hour, minute)]  # "08:30", "00:30": 24-hour reading
    elif minute:
        words.append(("oh " if minute < 10 else "") + cardinal(minute))
    elif parts["minute"] and not parts["ampm"]:
        words.append("hundred" if hour == 0 or hour > 12 else "o'clock")
    if parts["second"]:
        words.append(f"and {cardinal(int(parts['second']))} seconds")
    # The clock's words come from its digits, "a.m."/"p.m." from its letters: spans stay disjoint.
    clock_end = max(parts.end("hour"), parts.end("minute"), parts.end("second"))  # -1 for a group not there
    reader.say(" ".join(words), lexeme.start, clock_end)
    reader.spell(ampm_start, lexeme.end)
    if parts["ampm"].endswith(".") and lexeme.end >= reader.content_end:
        reader.punct(".", lexeme.end - 1, lexeme.end)
    return index + 1
