"""The normaliser's vocabulary, read from the data files beside this module.

JSON and TSV carry the words; what each table means and how it is used is said here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

_DATA = resources.files(__package__) / "data"


def _load(name: str) -> dict:
    return json.loads((_DATA / name).read_text(encoding="utf-8"))


def _pairs(table: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
    return {key: tuple(value) for key, value in table.items()}


_dates = _load("dates.json")
MONTHS: tuple[str, ...] = tuple(_dates["months"])
MONTH_NAMES = frozenset(month.lower() for month in MONTHS)
MONTH_ABBREVIATIONS: dict[str, str] = _dates["month_abbreviations"]
WEEKDAY_ABBREVIATIONS: dict[str, str] = _dates["weekday_abbreviations"]

_units = _load("units.json")
# Units with a slash, which the lexer must keep in one piece (singular, plural).
RATE_UNITS: dict[str, tuple[str, str]] = _pairs(_units["rate_units"])
# Units read after a number: singular, plural. Keys are case-sensitive ("m" metres, "M" not).
UNITS: dict[str, tuple[str, str]] = {**_pairs(_units["units"]), **RATE_UNITS}
TEMPERATURE_SCALES: dict[str, str] = _units["temperature_scales"]

_money = _load("money.json")
# Currency symbol -> unit singular, plural, subunit singular, plural.
CURRENCIES: dict[str, tuple[str, str, str, str]] = _pairs(_money["currencies"])
MAGNITUDES: dict[str, str] = _money["magnitudes"]  # "bn" in "$1.5bn"

_symbols = _load("symbols.json")
# Symbols spoken as words; any other symbol or emoji is dropped.
SYMBOL_WORDS: dict[str, str] = _symbols["symbol_words"]
# Symbols after a number whose word is singular after "1" ("1°", "1¢").
SINGULAR_SYMBOL_WORDS: dict[str, str] = _symbols["singular_symbol_words"]
TECH_NAMES: dict[str, str] = _symbols["tech_names"]  # names that read their symbols: "C#", ".NET"
# How separators inside URLs and e-mail addresses are spoken.
ADDRESS_SEPARATORS: dict[str, str] = _symbols["address_separators"]

_numbers = _load("numbers.json")
# A 4-digit number from 1000 to 2099 is a year unless a quantity word comes before it.
QUANTITY_CUES = frozenset(_numbers["quantity_cues"])
YEAR_RANGE = range(1000, 2100)
NUMBER_SUFFIX_WORDS: dict[str, str] = _numbers["number_suffix_words"]  # "8bn" eight billion, "3x" three times
# Denominators read as fractions ("3/16"); other pairs are names or scores ("24/7").
READABLE_DENOMINATORS = frozenset(_numbers["readable_denominators"])

_roman = _load("roman.json")
# Roman numerals after these words are plain numbers ("World War II", "Chapter IV").
NUMBERED_NOUNS = frozenset(_roman["numbered_nouns"])
# Names after which a lone "I" (and "X") is a regnal number ("Elizabeth I"), not the pronoun.
REGNAL_NAMES = frozenset(_roman["regnal_names"])

_acronyms = _load("acronyms.json")
# Spoken acronyms ("NASA", "NATO") start and end with clusters English allows (upper case; "" for none).
ONSETS = frozenset(_acronyms["onsets"]) | {""}
CODAS = frozenset(_acronyms["codas"]) | {""}

# Generated words are lowercase except these proper nouns, which help the parser.
PROPER_WORDS = frozenset(MONTHS) | frozenset(WEEKDAY_ABBREVIATIONS.values()) | frozenset(TEMPERATURE_SCALES.values())


class When:
    """When an abbreviation is expanded (otherwise it is read as an ordinary word)."""

    ALWAYS = "always"
    BEFORE_NAME = "before a capitalised word"
    BEFORE_NUMBER = "before a number"
    NAME_SIDE = "saint/doctor before a name, street/drive after one"


_WHEN_COLUMN = {"always": When.ALWAYS, "before_name": When.BEFORE_NAME, "before_number": When.BEFORE_NUMBER, "name_side": When.NAME_SIDE, "-": None}


@dataclass(frozen=True)
class Abbreviation:
    expansion: str  # for NAME_SIDE: "before-name form|after-name form"
    with_period: str | None  # a When, or None when "Xx." is not this abbreviation
    bare: str | None  # the same for "Xx" without a period
    capitalised: bool = False  # only the capitalised spelling ("Co." but not "co.")


def _abbreviations() -> dict[str, Abbreviation]:
    """abbreviations.tsv: key, expansion, when with a period, when bare, capitalised only (yes/no)."""
    table: dict[str, Abbreviation] = {}
    for line in (_DATA / "abbreviations.tsv").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            key, expansion, with_period, bare, capitalised = line.split("\t")
            table[key] = Abbreviation(expansion, _WHEN_COLUMN[with_period], _WHEN_COLUMN[bare], capitalised == "yes")
    return table


# Titles, companies and addresses, Latin shorthand, counters read only before a number ("No. 5" but
# "No, thanks"), month and weekday names (bare months only before a day: "Jan 5").
ABBREVIATIONS = _abbreviations()
