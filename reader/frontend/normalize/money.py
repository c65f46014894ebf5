"""Amounts of money: "$5", "£3.50", "$1.5bn"."""

from __future__ import annotations

import re

from .lexer import Lexeme
from .sentence import SentenceReader
from .spelling import MAX_SPELLED_DIGITS, cardinal, decimal
from .tables import CURRENCIES, MAGNITUDES

_CURRENCY_RE = re.compile(
    r"(?P<symbol>.)\s?(?P<whole>[\d,]+)(?:\.(?P<fraction>\d+))?(?:\s?(?P<magnitude>[A-Za-z]+))?",
    re.DOTALL,
)


def read_currency(reader: SentenceReader, index: int, lexeme: Lexeme) -> int:
    parts = _CURRENCY_RE.fullmatch(reader.text, lexeme.start, lexeme.end)
    unit, units, subunit, subunits = CURRENCIES[parts["symbol"]]
    whole = parts["whole"].replace(",", "")
    fraction = parts["fraction"] or ""
    if len(whole) > MAX_SPELLED_DIGITS:
        reader.digits(lexeme.start, lexeme.end)
        reader.say(units, lexeme.start, lexeme.end)
    elif parts["magnitude"]:  # "$1.5bn" -> "one point five billion dollars"
        amount = decimal(whole, fraction) if fraction else cardinal(int(whole))
        reader.say(f"{amount} {MAGNITUDES[parts['magnitude'].lower()]} {units}", lexeme.start, lexeme.end)
    elif len(fraction) > 2:
        reader.say(f"{decimal(whole, fraction)} {units}", lexeme.start, lexeme.end)
    else:
        main, cents = int(whole), int(fraction.ljust(2, "0")) if fraction else 0
        phrases = []
        if main or not cents:
            phrases.append(f"{cardinal(main)} {unit if main == 1 else units}")
        if cents:
            phrases.append(f"{cardinal(cents)} {subunit if cents == 1 else subunits}")
        reader.say(" and ".join(phrases), lexeme.start, lexeme.end)
    return index + 1
