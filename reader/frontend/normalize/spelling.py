"""Number spelling, all through num2words."""

from __future__ import annotations

import functools

from num2words import num2words

MAX_SPELLED_DIGITS = 30  # beyond this num2words overflows; such strings are read digit by digit


@functools.lru_cache(maxsize=4096)
def cardinal(value: int) -> str:
    return num2words(value)


@functools.lru_cache(maxsize=1024)
def ordinal(value: int) -> str:
    return num2words(value, to="ordinal")


def year(value: int) -> str:
    # num2words says "two thousand and five"; years are read without the "and".
    return num2words(value, to="year").replace(" and ", " ")


DIGIT_NAMES = tuple(num2words(digit) for digit in range(10))


def digit_words(digits: str) -> list[str]:
    return [DIGIT_NAMES[int(digit)] for digit in digits]


def pluralise(phrase: str) -> str:
    """ "nineteen ninety" -> "nineteen nineties" (decades and plural numbers)."""
    head, _, last = phrase.rpartition(" ")
    if last.endswith("y"):
        last = last[:-1] + "ies"
    elif last.endswith("x"):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}".strip()


def decimal(integer_digits: str, fraction_digits: str) -> str:
    integer_part = cardinal(int(integer_digits)) if integer_digits else ""
    return " ".join([integer_part, "point", *digit_words(fraction_digits)]).strip()


def fraction(numerator: int, denominator: int) -> str:
    if denominator == 2:
        name = "half" if numerator == 1 else "halves"
    elif denominator == 4:
        name = "quarter" if numerator == 1 else "quarters"
    else:
        name = ordinal(denominator) + ("" if numerator == 1 else "s")
    return f"{cardinal(numerator)} {name}"


def mixed_fraction(whole: int, numerator: int, denominator: int) -> str:
    spoken = fraction(numerator, denominator)
    if numerator == 1:
        spoken = "a " + spoken.split(" ", 1)[1]  # "two and a half", not "two and one half"
    return f"{cardinal(whole)} and {spoken}"


def twenty_four_hour(hour: int, minute: int) -> str:
    """A 24-hour time written with a leading zero, as said: "08:00" oh eight hundred, "00:30" zero zero thirty."""
    hour_words = "zero zero" if hour == 0 else ("oh " if hour < 10 else "") + cardinal(hour)
    minute_words = "hundred" if minute == 0 else ("oh " if minute < 10 else "") + cardinal(minute)
    return f"{hour_words} {minute_words}"
