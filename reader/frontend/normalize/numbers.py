"""Numbers: cardinals, ordinals, years, decimals, fractions, ratios, versions, decades."""

from __future__ import annotations

import re
import unicodedata

from .lexer import Lexeme
from .sentence import SentenceReader
from .spelling import MAX_SPELLED_DIGITS, cardinal, decimal, fraction, mixed_fraction, ordinal, pluralise, twenty_four_hour, year
from .tables import NUMBER_SUFFIX_WORDS, QUANTITY_CUES, READABLE_DENOMINATORS, UNITS, YEAR_RANGE
from .units import read_unit_after

_NUMBER_RE = re.compile(
    r"(?P<sign>[-−])?(?P<whole>[\d,]+)(?:\.(?P<fraction>\d+))?(?P<suffix>\D*)", re.DOTALL
)


def _is_hhmm(digits: str) -> bool:
    return int(digits[:2]) < 24 and int(digits[2:]) < 60


def read_number(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    parts = _NUMBER_RE.fullmatch(reader.text, lexeme.start, lexeme.end)
    start, end = lexeme.start, lexeme.end
    whole, fraction_digits = parts["whole"], parts["fraction"]
    suffix = parts["suffix"].replace("’", "'").lower()
    plain = whole.replace(",", "")
    if parts["sign"]:
        # "minus" is read from the sign, the rest from the digits: spans stay disjoint and in order.
        reader.say("minus", start, parts.end("sign"))
        start = parts.end("sign")
    if len(plain) > MAX_SPELLED_DIGITS:
        reader.digits(start, end)
        return index + 1
    value = int(plain)
    if suffix in NUMBER_SUFFIX_WORDS:  # "8bn" eight billion, "3x" three times
        amount = decimal(plain, fraction_digits) if fraction_digits is not None else cardinal(value)
        reader.say(f"{amount} {NUMBER_SUFFIX_WORDS[suffix]}", start, end)
        return index + 1
    if len(whole) == 4 and whole.startswith("0") and not fraction_digits and not suffix and _is_hhmm(plain):
        reader.say(twenty_four_hour(value // 100, value % 100), start, end)  # "0800" oh eight hundred
        return index + 1
    is_year = (len(plain) == 4 and "," not in whole and not fraction_digits and value in YEAR_RANGE
               and not parts["sign"]
               and reader.lexeme_text(index - 1).lower() not in QUANTITY_CUES
               and reader.lexeme_text(index + 1) not in UNITS)
    if fraction_digits is not None:
        reader.say(decimal(plain, fraction_digits), start, end)
    elif suffix in ("st", "nd", "rd", "th"):
        reader.say(ordinal(value), start, end)
    elif suffix in ("s", "'s"):  # "the 1990s", "in his 80s"
        reader.say(pluralise(year(value) if is_year else cardinal(value)), start, end)
    elif 1 <= value <= 31 and reader.is_month(reader.word_before(index)):  # "Jan. 5"
        reader.say(ordinal(value), start, end)
    elif 1 <= value <= 31 and reader.is_month(index + 1):  # "5 January"
        reader.say(f"the {ordinal(value)} of", start, end)
    elif is_year:
        reader.say(year(value), start, end)
    elif plain.startswith("0") and len(plain) > 1 or (len(plain) >= 5 and "," not in whole
                                                      and value % 1000):
        reader.digits(start, end)  # zip codes, IDs, "007"; round "10000" stays a number
    else:
        reader.number(plain, start, end)
    return read_unit_after(reader, index, value == 1 and not fraction_digits)


def read_short_decade(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    decade = int(reader.text[lexeme.start + 1:lexeme.start + 3])  # "'90s" -> 90
    reader.say(pluralise(cardinal(decade)), lexeme.start, lexeme.end)
    return index + 1


def vulgar_fraction_parts(char: str) -> tuple[int, int] | None:
    """ "½" -> (1, 2), from its decomposition "<fraction> 0031 2044 0032"; None if not one."""
    tag, *codes = unicodedata.decomposition(char).split() or [""]
    if tag != "<fraction>" or "2044" not in codes:
        return None
    slash = codes.index("2044")
    numerator = "".join(chr(int(code, 16)) for code in codes[:slash])
    denominator = "".join(chr(int(code, 16)) for code in codes[slash + 1:])
    return (int(numerator), int(denominator)) if numerator and denominator else None


def read_vulgar_fraction(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    whole = reader.text[lexeme.start:lexeme.end - 1]
    parts = vulgar_fraction_parts(reader.text[lexeme.end - 1])
    assert parts is not None  # the lexer admits only complete fractions ("½", "⅞")
    numerator, denominator = parts
    if whole and len(whole) <= MAX_SPELLED_DIGITS:
        reader.say(mixed_fraction(int(whole), numerator, denominator), lexeme.start, lexeme.end)
    else:
        if whole:
            reader.digits(lexeme.start, lexeme.end - 1)
        reader.say(fraction(numerator, denominator), lexeme.end - 1, lexeme.end)
    return index + 1


def read_fraction(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    source = reader.text[lexeme.start:lexeme.end]
    whole, _, ratio = source.rpartition(" ")
    numerator_text, denominator_text = ratio.split("/")
    numerator, denominator = int(numerator_text), int(denominator_text)
    # Proper fractions, and halves and quarters ("3/2"), are read as fractions; other pairs are
    # names or scores read as their numbers ("24/7" twenty four seven, "9/11", "50/50").
    readable = (len(source) <= MAX_SPELLED_DIGITS
                and denominator in READABLE_DENOMINATORS
                and (0 < numerator < denominator or not whole and denominator in (2, 4)))
    if readable and whole:
        reader.say(mixed_fraction(int(whole), int(numerator_text), int(denominator_text)),
                   lexeme.start, lexeme.end)
    elif readable:
        reader.say(fraction(int(numerator_text), int(denominator_text)), lexeme.start, lexeme.end)
    else:
        reader.numbers_in(lexeme.start, lexeme.end, "")
    return index + 1


def read_ratio(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    reader.numbers_in(lexeme.start, lexeme.end, "to")  # "16:9" sixteen to nine
    return index + 1


def read_version(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    reader.numbers_in(lexeme.start, lexeme.end, "point")  # "14.2.1" fourteen point two point one
    return index + 1
