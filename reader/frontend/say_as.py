"""SSML <say-as>: how a span is read, by `interpret-as` (Amazon Polly's list), with the normaliser's pieces.

Each reading returns Tokens whose spans point into the SSML source; text that does not fit its
interpretation (an impossible date, letters as a cardinal) raises CannotSay, and is read as written.
"""

from __future__ import annotations

import calendar
import re
from typing import Callable, Sequence

from .normalize import Token, normalize_sentence
from .normalize.sentence import SentenceReader
from .normalize.spelling import DIGIT_NAMES, MAX_SPELLED_DIGITS, cardinal, decimal, fraction, mixed_fraction, ordinal, year
from .normalize.tables import MONTHS

DATE_FORMATS = ("mdy", "dmy", "ymd", "md", "dm", "ym", "my", "d", "m", "y")


class CannotSay(ValueError):
    """The text does not fit the interpretation (the message says why)."""


class Content:
    """The text of an element with, for every character, its offset in the SSML source."""

    def __init__(self, text: str, positions: Sequence[int]) -> None:
        self.text = text
        self.positions = positions

    @property
    def span(self) -> tuple[int, int]:
        return self.positions[0], self.positions[-1] + 1

    def tokens(self, words: str) -> list[Token]:
        """Generated words, all spanning the whole content (as the normaliser's say() does)."""
        start, end = self.span
        return [Token(w, start, end, False) for w in words.replace("-", " ").replace(",", "").split()]

    def remap(self, tokens: Sequence[Token]) -> list[Token]:
        """Tokens of normalize_sentence(self.text) moved onto the source offsets."""
        return [Token(t.text, self.positions[t.start], self.positions[t.end - 1] + 1, t.is_punct) for t in tokens if t.end > t.start]


def _characters(content: Content) -> list[Token]:
    tokens = []
    for i, char in enumerate(content.text):
        span = (content.positions[i], content.positions[i] + 1)
        if char.isalpha():
            tokens.append(Token(char.upper(), *span, False))
        elif char.isdecimal():
            tokens.append(Token(DIGIT_NAMES[int(char)], *span, False))
        elif not char.isspace():
            tokens += [Token(t.text, *span, t.is_punct) for t in normalize_sentence(char) if not t.is_punct]
    return tokens


_NUMBER = re.compile(r"([-−+]?)(\d{1,3}(?:,\d{3})+|\d+)?(?:\.(\d+))?")


def _cardinal(content: Content) -> list[Token]:
    match = _NUMBER.fullmatch(content.text.strip())
    if not match or not (match[2] or match[3]):
        raise CannotSay("not a number")
    integer = (match[2] or "").replace(",", "")
    if len(integer) > MAX_SPELLED_DIGITS:
        raise CannotSay("too many digits")
    words = decimal(integer, match[3]) if match[3] else cardinal(int(integer))
    return content.tokens(("minus " if match[1] in "-−" and match[1] else "") + words)


def _ordinal(content: Content) -> list[Token]:
    match = re.fullmatch(r"(\d{1,3}(?:,\d{3})+|\d+)(?:st|nd|rd|th)?\.?", content.text.strip(), re.I)
    if not match or len(match[1]) > MAX_SPELLED_DIGITS:
        raise CannotSay("not an ordinal number")
    return content.tokens(ordinal(int(match[1].replace(",", ""))))


def _digits(content: Content) -> list[Token]:
    if not any(ch.isdecimal() for ch in content.text):
        raise CannotSay("no digits")
    return _characters(content)


def _fraction(content: Content) -> list[Token]:
    match = re.fullmatch(r"(?:(\d+)\s*\+?\s+|(\d+)\+)?(\d+)\s*/\s*(\d+)", content.text.strip())
    if not match or int(match[4]) == 0:
        raise CannotSay("not a fraction")
    whole = match[1] or match[2]
    numerator, denominator = int(match[3]), int(match[4])
    return content.tokens(mixed_fraction(int(whole), numerator, denominator) if whole else fraction(numerator, denominator))


def _date(content: Content, date_format: str) -> list[Token]:
    date_format = (date_format or "mdy").lower()
    if date_format not in DATE_FORMATS:
        raise CannotSay(f"unknown date format {date_format!r} (use one of {', '.join(DATE_FORMATS)})")
    fields = [f for f in re.split(r"[-/.\s,]+", content.text.strip()) if f]
    if len(fields) != len(date_format) or not all(f.isdecimal() or f.isalpha() for f in fields):
        raise CannotSay(f"not a date in the format {date_format}")
    values = dict(zip(date_format, fields))
    month = values.get("m")
    if month is not None and month.isalpha():
        names = [m.lower() for m in MONTHS]
        matches = [k + 1 for k, name in enumerate(names) if name.startswith(month.lower()[:3])]
        month_number = matches[0] if matches else 0
    else:
        month_number = int(month) if month is not None else 1
    day = int(values["d"]) if "d" in values and values["d"].isdecimal() else (1 if "d" not in values else 0)
    year_text = values.get("y")
    if year_text is not None and not year_text.isdecimal():
        raise CannotSay("the year is not a number")
    year_value = int(year_text) if year_text is not None else 2000  # a leap year: "2/29" alone is a date
    if len(year_text or "") == 2:
        year_value += 2000
    if not 1 <= month_number <= 12 or not 1 <= day <= calendar.monthrange(year_value or 2000, month_number)[1]:
        raise CannotSay("impossible date")
    words = []
    if "m" in values:
        words.append(MONTHS[month_number - 1])
    if "d" in values:
        words.append(("the " if "m" not in values else "") + ordinal(day))
    if year_text is not None:
        words.append(year(int(year_text)) if len(year_text) == 4 else cardinal(int(year_text)))
    return content.tokens(" ".join(words))


def _time(content: Content) -> list[Token]:
    # Polly's durations: 1'21" is one minute twenty-one seconds; clocks go to the normaliser.
    match = re.fullmatch(r"(?:(\d+)h\s*)?(?:(\d+)['′]\s*)?(?:(\d+)[\"″])?", content.text.strip())
    if match and any(match.groups()):
        parts = [(match[1], "hour"), (match[2], "minute"), (match[3], "second")]
        words = [f"{cardinal(int(v))} {unit}{'' if int(v) == 1 else 's'}" for v, unit in parts if v]
        return content.tokens(" ".join(words))
    return _default(content)


def _telephone(content: Content) -> list[Token]:
    if not any(ch.isdecimal() for ch in content.text):
        raise CannotSay("no digits")
    reader = SentenceReader(content.text, 0, False)
    reader.digits(0, len(content.text))
    return content.remap(reader.tokens)


def _default(content: Content) -> list[Token]:
    return content.remap(normalize_sentence(content.text))


READINGS: dict[str, Callable[..., list[Token]]] = {
    "characters": _characters,
    "spell-out": _characters,
    "cardinal": _cardinal,
    "number": _cardinal,
    "ordinal": _ordinal,
    "digits": _digits,
    "fraction": _fraction,
    "unit": _default,
    "date": _date,
    "time": _time,
    "telephone": _telephone,
    "address": _default,
    "expletive": _default,  # read, then silenced by the caller (bleep)
}


def say_as(content: Content, interpret_as: str, date_format: str | None = None) -> list[Token]:
    """The tokens of `content` read as `interpret_as`; raises CannotSay (then read it as written)."""
    reading = READINGS[interpret_as]
    return reading(content, date_format) if interpret_as == "date" else reading(content)


def as_written(content: Content) -> list[Token]:
    return _default(content)
