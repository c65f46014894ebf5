"""Text normalisation: one sentence of raw text -> speakable word tokens with source offsets.

The sentence is first cut into lexemes by one master regex (every alternative is either
anchored on a literal or bounded, so scanning stays linear even on megabytes without
punctuation), then each lexeme is read aloud by a handler that may look at its
neighbours (a month before a day, a unit after a number, a capitalised name after "St.").

Every Token keeps the span of the source text it was read from, so that audio can be
aligned back onto the original document. All number spelling goes through num2words.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, Container, NamedTuple

from num2words import num2words


@dataclass(frozen=True)
class Token:
    text: str  # one speakable word, or a punctuation mark
    start: int  # offset of the source span in the original document (inclusive)
    end: int  # exclusive; several spoken words from one source token share its span
    is_punct: bool


# ---------------------------------------------------------------------------------------
# Lexer
# ---------------------------------------------------------------------------------------

_AMPM = r"[AaPp]\.?[Mm]\.?(?![^\W\d_])"
# Bounded pieces of e-mail addresses and domains: unbounded ones would rescan the rest of
# a long run at every position (quadratic on "a.a.a.a...").
_DOMAIN_LABEL = r"[A-Za-z0-9-]{1,63}"
_URL_TAIL = r"[^\s<>\"]*[^\s<>\".,;:!?'\")\]]"
_TLDS = r"com|org|net|edu|gov|mil|int|io|ai|co|uk|de|fr|info|biz|us|ca|au|eu|app|dev"

# Order matters: the first alternative that matches at a position wins.
# Units with a slash, which the lexer must keep in one piece (singular, plural).
_RATE_UNITS: dict[str, tuple[str, str]] = {
    "km/h": ("kilometre per hour", "kilometres per hour"), "mi/h": ("mile per hour", "miles per hour"),
    "m/s": ("metre per second", "metres per second"), "ft/s": ("foot per second", "feet per second"),
}
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
    "rate_unit": rf"(?<![^\W\d_])(?:{'|'.join(map(re.escape, _RATE_UNITS))})(?![^\W\d_])",
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


class _Lexeme(NamedTuple):
    kind: str
    start: int  # offsets within the sentence
    end: int


def _is_mark(char: str) -> bool:
    # Combining marks continue the preceding letter (decomposed accents, Indic vowel
    # signs); variation selectors only restyle emoji and are dropped with them.
    return unicodedata.category(char)[0] == "M" and not (
        "\ufe00" <= char <= "\ufe0f" or "\U000e0100" <= char <= "\U000e01ef"
    )


def _lex(text: str) -> list[_Lexeme]:
    """Cuts a sentence into lexemes, dropping whitespace and gluing combining marks to words."""
    lexemes: list[_Lexeme] = []
    word_end = -1  # end of the last word lexeme, which a mark or more letters may extend
    for match in _LEXEME_RE.finditer(text):
        kind = match.lastgroup
        start, end = match.span(kind)
        if kind == "spaced_word":
            kind = "word"
        elif kind == "other" and (text[start].isspace() or _is_mark(text[start])):
            if start == word_end:  # a combining mark continues the word
                lexemes[-1] = _Lexeme("word", lexemes[-1].start, end)
                word_end = end
            continue  # trailing whitespace, or a stray mark with no letter to carry it
        if kind == "word" and start == word_end:  # letters after a mark: still one word
            lexemes[-1] = _Lexeme("word", lexemes[-1].start, end)
        else:
            lexemes.append(_Lexeme(kind, start, end))
        word_end = end if kind == "word" else -1
    return lexemes


# ---------------------------------------------------------------------------------------
# Number spelling (all through num2words)
# ---------------------------------------------------------------------------------------

# Longer letter runs than any English word (45 letters) are read in pieces of WORD_PIECE_CHARS.
MAX_WORD_CHARS = 45
WORD_PIECE_CHARS = 20
_MAX_SPELLED_DIGITS = 30  # beyond this num2words overflows; such strings are read digit by digit
_WORD_SPLIT_RE = re.compile(r"[\s,-]+")


@functools.lru_cache(maxsize=4096)
def _cardinal(value: int) -> str:
    return num2words(value)


@functools.lru_cache(maxsize=1024)
def _ordinal(value: int) -> str:
    return num2words(value, to="ordinal")


def _year(value: int) -> str:
    # num2words says "two thousand and five"; years are read without the "and".
    return num2words(value, to="year").replace(" and ", " ")


_DIGIT_NAMES = tuple(num2words(digit) for digit in range(10))


def _digit_words(digits: str) -> list[str]:
    return [_DIGIT_NAMES[int(digit)] for digit in digits]


def _pluralise(phrase: str) -> str:
    """ "nineteen ninety" -> "nineteen nineties" (decades and plural numbers)."""
    head, _, last = phrase.rpartition(" ")
    if last.endswith("y"):
        last = last[:-1] + "ies"
    elif last.endswith("x"):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}".strip()


def _decimal(integer_digits: str, fraction_digits: str) -> str:
    integer_part = _cardinal(int(integer_digits)) if integer_digits else ""
    return " ".join([integer_part, "point", *_digit_words(fraction_digits)]).strip()


def _fraction(numerator: int, denominator: int) -> str:
    if denominator == 2:
        name = "half" if numerator == 1 else "halves"
    elif denominator == 4:
        name = "quarter" if numerator == 1 else "quarters"
    else:
        name = _ordinal(denominator) + ("" if numerator == 1 else "s")
    return f"{_cardinal(numerator)} {name}"


def _mixed_fraction(whole: int, numerator: int, denominator: int) -> str:
    fraction = _fraction(numerator, denominator)
    if numerator == 1:
        fraction = "a " + fraction.split(" ", 1)[1]  # "two and a half", not "two and one half"
    return f"{_cardinal(whole)} and {fraction}"


_READABLE_DENOMINATORS = frozenset({2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 16, 32, 64, 100})

# ---------------------------------------------------------------------------------------
# Vocabulary tables
# ---------------------------------------------------------------------------------------

_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
_MONTH_NAMES = frozenset(month.lower() for month in _MONTHS)
_MONTH_ABBREVIATIONS = {
    "jan": "January", "feb": "February", "mar": "March", "apr": "April", "jun": "June",
    "jul": "July", "aug": "August", "sep": "September", "sept": "September",
    "oct": "October", "nov": "November", "dec": "December",
}
_WEEKDAY_ABBREVIATIONS = {
    "mon": "Monday", "tue": "Tuesday", "tues": "Tuesday", "wed": "Wednesday",
    "thu": "Thursday", "thur": "Thursday", "thurs": "Thursday", "fri": "Friday",
    "sat": "Saturday", "sun": "Sunday",
}


class _When:
    """When an abbreviation is expanded (otherwise it is read as an ordinary word)."""

    ALWAYS = "always"
    BEFORE_NAME = "before a capitalised word"
    BEFORE_NUMBER = "before a number"
    NAME_SIDE = "saint/doctor before a name, street/drive after one"


@dataclass(frozen=True)
class _Abbreviation:
    expansion: str  # for NAME_SIDE: "before-name form|after-name form"
    with_period: str | None  # a _When, or None when "Xx." is not this abbreviation
    bare: str | None  # the same for "Xx" without a period
    capitalised: bool = False  # only the capitalised spelling ("Co." but not "co.")


_ABBREVIATIONS: dict[str, _Abbreviation] = {
    # Titles and name suffixes.
    "mr": _Abbreviation("mister", _When.ALWAYS, _When.ALWAYS, capitalised=True),
    "mrs": _Abbreviation("missus", _When.ALWAYS, _When.ALWAYS, capitalised=True),
    "ms": _Abbreviation("miz", _When.ALWAYS, _When.ALWAYS, capitalised=True),
    "messrs": _Abbreviation("messieurs", _When.ALWAYS, _When.ALWAYS, capitalised=True),
    "jr": _Abbreviation("junior", _When.ALWAYS, _When.ALWAYS, capitalised=True),
    "sr": _Abbreviation("senior", _When.ALWAYS, _When.ALWAYS, capitalised=True),
    "esq": _Abbreviation("esquire", _When.ALWAYS, _When.ALWAYS, capitalised=True),
    "st": _Abbreviation("saint|street", _When.NAME_SIDE, _When.NAME_SIDE, capitalised=True),
    "dr": _Abbreviation("doctor|drive", _When.NAME_SIDE, _When.NAME_SIDE, capitalised=True),
    **{
        key: _Abbreviation(title, _When.BEFORE_NAME, None, capitalised=True)
        for key, title in {
            "prof": "professor", "gen": "general", "capt": "captain", "col": "colonel",
            "lt": "lieutenant", "sgt": "sergeant", "cpl": "corporal", "adm": "admiral",
            "rev": "reverend", "hon": "honourable", "gov": "governor", "sen": "senator",
            "rep": "representative", "pres": "president", "fr": "father", "mt": "mount",
            "ft": "fort", "supt": "superintendent", "insp": "inspector",
        }.items()
    },
    # Companies and addresses.
    **{
        key: _Abbreviation(word, _When.ALWAYS, None, capitalised=True)
        for key, word in {
            "inc": "incorporated", "ltd": "limited", "co": "company", "corp": "corporation",
            "bros": "brothers", "ave": "avenue", "blvd": "boulevard", "rd": "road",
        }.items()
    },
    # Latin and scholarly shorthand.
    "etc": _Abbreviation("et cetera", _When.ALWAYS, _When.ALWAYS),
    "vs": _Abbreviation("versus", _When.ALWAYS, _When.ALWAYS),
    "v": _Abbreviation("versus", _When.ALWAYS, None),
    "cf": _Abbreviation("compare", _When.ALWAYS, None),
    "viz": _Abbreviation("namely", _When.ALWAYS, None),
    "approx": _Abbreviation("approximately", _When.ALWAYS, _When.ALWAYS),
    "incl": _Abbreviation("including", _When.ALWAYS, None),
    "dept": _Abbreviation("department", _When.ALWAYS, _When.ALWAYS),
    "govt": _Abbreviation("government", _When.ALWAYS, _When.ALWAYS),
    "misc": _Abbreviation("miscellaneous", _When.ALWAYS, None),
    "e.g": _Abbreviation("for example", _When.ALWAYS, None),
    "i.e": _Abbreviation("that is", _When.ALWAYS, None),
    "a.k.a": _Abbreviation("also known as", _When.ALWAYS, None),
    # Counters read only before a number ("No. 5" but "No, thanks").
    **{
        key: _Abbreviation(word, _When.BEFORE_NUMBER, None)
        for key, word in {
            "no": "number", "nos": "numbers", "p": "page", "pp": "pages", "vol": "volume",
            "ch": "chapter", "fig": "figure", "sec": "section",
        }.items()
    },
    # Month and weekday names: with a period anywhere, bare only before a day ("Jan 5").
    **{
        key: _Abbreviation(month, _When.ALWAYS, _When.BEFORE_NUMBER, capitalised=True)
        for key, month in _MONTH_ABBREVIATIONS.items()
    },
    **{
        key: _Abbreviation(day, _When.ALWAYS, None, capitalised=True)
        for key, day in _WEEKDAY_ABBREVIATIONS.items()
    },
}

# Units read after a number: singular, plural. Keys are case-sensitive ("m" metres, "M" not).
_UNITS: dict[str, tuple[str, str]] = {
    "ft": ("foot", "feet"), "yd": ("yard", "yards"), "mi": ("mile", "miles"),
    "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"), "oz": ("ounce", "ounces"),
    "km": ("kilometre", "kilometres"), "m": ("metre", "metres"),
    "cm": ("centimetre", "centimetres"), "mm": ("millimetre", "millimetres"),
    "kg": ("kilogram", "kilograms"), "g": ("gram", "grams"), "mg": ("milligram", "milligrams"),
    "ml": ("millilitre", "millilitres"), "mL": ("millilitre", "millilitres"),
    "mph": ("mile per hour", "miles per hour"), "kph": ("kilometre per hour", "kilometres per hour"),
    **_RATE_UNITS,
    "h": ("hour", "hours"), "hr": ("hour", "hours"), "hrs": ("hour", "hours"),
    "min": ("minute", "minutes"), "mins": ("minute", "minutes"),
    "KB": ("kilobyte", "kilobytes"), "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"), "TB": ("terabyte", "terabytes"),
    "Hz": ("hertz", "hertz"), "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"), "GHz": ("gigahertz", "gigahertz"),
}

# Currency symbol -> unit singular, plural, subunit singular, plural.
_CURRENCIES: dict[str, tuple[str, str, str, str]] = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", "sen", "sen"),
    "₹": ("rupee", "rupees", "paisa", "paise"),
}
_MAGNITUDES = {
    "thousand": "thousand", "k": "thousand", "million": "million", "m": "million",
    "mn": "million", "billion": "billion", "bn": "billion", "b": "billion", "trillion": "trillion",
    "tn": "trillion", "t": "trillion",
}

# Symbols spoken as words; any other symbol or emoji is dropped.
_SYMBOL_WORDS = {
    "&": "and", "%": "percent", "‰": "per mille", "§": "section", "¶": "paragraph",
    "°": "degrees", "+": "plus", "=": "equals", "@": "at", "×": "times", "÷": "divided by",
    "~": "about", "≈": "approximately", "±": "plus or minus", "<": "less than",
    ">": "greater than", "≤": "less than or equal to", "≥": "greater than or equal to",
    "−": "minus", "/": "slash", "²": "squared", "³": "cubed", "©": "copyright",
    "$": "dollars", "£": "pounds", "€": "euros", "¥": "yen", "₹": "rupees", "¢": "cents",
}
# Symbols after a number whose word is singular after "1" ("1°", "1¢").
_SINGULAR_SYMBOL_WORDS = {"°": "degree", "¢": "cent"}
_TECH_NAMES = {"C#": "C sharp", "F#": "F sharp", ".NET": "dot net"}
_TEMPERATURE_SCALES = {"C": "Celsius", "F": "Fahrenheit"}
# Generated words are lowercase except these proper nouns, which help the parser.
_PROPER_WORDS = frozenset(_MONTHS) | frozenset(_WEEKDAY_ABBREVIATIONS.values()) | frozenset(
    _TEMPERATURE_SCALES.values())

# How separators inside URLs and e-mail addresses are spoken.
_ADDRESS_SEPARATORS = {
    ".": "dot", "/": "slash", ":": "colon", "-": "dash", "_": "underscore", "@": "at",
    "?": "question mark", "=": "equals", "&": "and", "#": "hash", "%": "percent",
    "+": "plus", "~": "tilde",
}
_URL_SCHEME_RE = re.compile(r"https?://")
_ADDRESS_PIECE_RE = re.compile(r"[A-Za-z]+|\d+|.", re.DOTALL)

# Roman numerals after these words are plain numbers ("World War II", "Chapter IV").
_NUMBERED_NOUNS = frozenset({
    "chapter", "part", "book", "volume", "vol", "act", "scene", "section", "war", "phase",
    "stage", "level", "type", "class", "article", "title", "appendix", "canto", "psalm",
    "bowl", "series", "tier", "grade", "round", "episode", "apollo", "gemini", "soyuz", "vostok",
})
# Names after which a lone "I" (and "X") is a regnal number ("Elizabeth I"), not the pronoun.
_REGNAL_NAMES = frozenset({
    "elizabeth", "charles", "james", "henry", "edward", "george", "william", "mary", "richard", "john",
    "louis", "peter", "catherine", "alexander", "nicholas", "frederick", "philip", "francis", "napoleon",
    "pius", "leo", "gregory", "benedict", "paul", "clement", "innocent", "ferdinand", "isabella", "anne",
    "david", "robert", "malcolm", "constantine", "otto", "wilhelm", "carlos", "juan", "felipe", "umberto",
    "selim", "suleiman", "mehmed", "darius", "xerxes", "ptolemy", "ramesses", "cyrus", "victor", "stephen",
    "matilda", "harold", "alfonso", "manuel", "pedro", "sancho", "casimir", "sigismund", "rudolf", "leopold",
})
_ROMAN_RE = re.compile(r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
# Regnal numbers stay small and use only I, V, X: "DC" after "Washington" is not 600.
_REGNAL_RE = re.compile(r"X{0,3}(?:IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"M": 1000, "D": 500, "C": 100, "L": 50, "X": 10, "V": 5, "I": 1}

# A 4-digit number from 1000 to 2099 is a year unless a quantity word comes before it.
_QUANTITY_CUES = frozenset({
    "about", "over", "under", "than", "nearly", "almost", "approximately", "roughly",
    "some", "exactly", "only", "just", "total", "number",
})
_YEAR_RANGE = range(1000, 2100)

# Spoken acronyms ("NASA", "NATO") start and end with clusters English allows.
_VOWELS = frozenset("AEIOUY")
_ONSETS = frozenset(
    "b bl br c ch cl cr d dr f fl fr g gl gn gr h j k kl kn kr l m n p ph pl pr ps q r s sc "
    "sch scr sh shr sk sl sm sn sp sph spl spr sq st str sw t th thr tr tw v w wh wr y z".upper().split()
) | {""}
# A leading Y is a consonant ("YOU"), elsewhere a vowel; W after a vowel is part of it ("BROWN").
_ONSET_RE = re.compile(r"Y?[^AEIOUY]*")
_CODA_RE = re.compile(r"[^AEIOUYW]*\Z")
_CODAS = frozenset(
    "b c ch ck ct d f ff ft g gh ght k l ld lf lk ll lm lp lt lth m mb mp n nch nd ng ngth nk "
    "nt nth p pt r rb rc rch rd rf rg rk rl rld rm rn rp rs rst rt rth s sh sk sp ss st t tch "
    "th tt v x xt z zz".upper().split()
) | {""}
_CONSONANT_RUN_RE = re.compile(r"[^AEIOUYW]+")
_VOWEL_RUN_RE = re.compile(r"[AEIOUY]{3,}")


def _is_pronounceable(letters: str) -> bool:
    """Whether an all-capitals word can be read as a word rather than spelled out."""
    onset = _ONSET_RE.match(letters).group()
    nucleus_on = letters[len(onset):]
    if not letters.isascii() or not _VOWELS.intersection(nucleus_on) or _VOWEL_RUN_RE.search(nucleus_on):
        return False
    coda = _CODA_RE.search(letters).group()
    if coda.endswith("S") and coda not in _CODAS:
        coda = coda[:-1]  # plural "AIDS"
    runs = _CONSONANT_RUN_RE.findall(letters)
    return onset in _ONSETS and coda in _CODAS and all(len(run) <= 4 for run in runs)


def _is_capitalised(word: str) -> bool:
    return word[:1].isupper()


def _roman_value(numeral: str) -> int:
    values = [_ROMAN_VALUES[char] for char in numeral]
    return sum(-value if value < following else value
               for value, following in zip(values, values[1:] + [0]))


# ---------------------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------------------


class _SentenceReader:
    """Reads the lexemes of one sentence aloud, appending Tokens."""

    def __init__(self, text: str, offset: int, heading: bool, keep: Container[str] = frozenset()) -> None:
        self.text = text
        self.keep = keep
        self.offset = offset
        self.heading = heading
        self.lexemes = _lex(text)
        self.tokens: list[Token] = []
        self.content_end = len(text.rstrip())
        # Capitals throughout (banner headlines, "CHAPTER IV"): capitalised words are
        # ordinary words here, and only unpronounceable ones are spelled out.
        long_words = sum(1 for lexeme in self.lexemes
                         if lexeme.kind == "word" and lexeme.end - lexeme.start >= 2)
        self.shouted = text.upper() == text and (heading or long_words >= 2)

    # -- emitting ------------------------------------------------------------------------

    def say(self, phrase: str, start: int, end: int) -> None:
        """Emits generated words (lowercase unless proper nouns) sharing one source span."""
        for word in _WORD_SPLIT_RE.split(phrase):
            if word:
                spoken = word if word in _PROPER_WORDS else word.lower()
                self.tokens.append(Token(spoken, self.offset + start, self.offset + end, False))

    def word(self, word: str, start: int, end: int) -> None:
        if len(word) > MAX_WORD_CHARS and len(word) == end - start:
            # No real word is this long: read it in bounded pieces (the pronouncer's cost grows with length).
            for cut in range(0, len(word), WORD_PIECE_CHARS):
                piece = word[cut : cut + WORD_PIECE_CHARS]
                self.tokens.append(Token(piece, self.offset + start + cut, self.offset + start + cut + len(piece), False))
            return
        self.tokens.append(Token(word, self.offset + start, self.offset + end, False))

    def punct(self, mark: str, start: int, end: int) -> None:
        self.tokens.append(Token(mark, self.offset + start, self.offset + end, True))

    def spell(self, start: int, end: int) -> None:
        """Letters read one by one as capitals, each with its own span ("U.S." -> U, S)."""
        for position in range(start, end):
            char = self.text[position]
            if char.isalpha():
                self.word(char.upper(), position, position + 1)

    def digits(self, start: int, end: int) -> None:
        """Digits read one by one (phone numbers, IDs); separators between groups become pauses."""
        said_digit = pending_pause = False
        for position in range(start, end):
            char = self.text[position]
            if char.isdecimal():
                if pending_pause:
                    self.punct(",", position - 1, position)
                    pending_pause = False
                self.word(_DIGIT_NAMES[int(char)], position, position + 1)
                said_digit = True
            elif char == "+":
                self.say("plus", position, position + 1)
            elif said_digit:
                pending_pause = True

    def number(self, digits: str, start: int, end: int) -> None:
        """A whole number as a cardinal, or digit by digit when too long to say."""
        plain = digits.replace(",", "")
        if len(plain) > _MAX_SPELLED_DIGITS:
            self.digits(start, end)
        else:
            self.say(_cardinal(int(plain)), start, end)

    # -- context -------------------------------------------------------------------------

    def lexeme_text(self, index: int) -> str:
        if 0 <= index < len(self.lexemes):
            lexeme = self.lexemes[index]
            return self.text[lexeme.start:lexeme.end]
        return ""

    def kind(self, index: int) -> str:
        return self.lexemes[index].kind if 0 <= index < len(self.lexemes) else ""

    def adjacent(self, left: int, right: int) -> bool:
        """Whether two lexemes touch with no space between them."""
        return (0 <= left and right < len(self.lexemes)
                and self.lexemes[left].end == self.lexemes[right].start)

    def word_before(self, index: int) -> int:
        """Index of the lexeme before `index`, skipping an abbreviation's period ("Jan. 5")."""
        return index - 2 if self.is_period(index - 1) else index - 1

    def is_month(self, index: int) -> bool:
        word = self.lexeme_text(index)
        return self.kind(index) == "word" and _is_capitalised(word) and (
            word.lower() in _MONTH_NAMES or word.lower() in _MONTH_ABBREVIATIONS)

    def is_period(self, index: int) -> bool:
        return self.kind(index) == "punct" and self.lexeme_text(index) == "."

    def take_period(self, word_index: int) -> int:
        """Consumes a period glued to an abbreviation; re-emits it if it also ends the sentence."""
        period = word_index + 1
        if self.lexemes[period].end >= self.content_end:
            self.punct(".", self.lexemes[period].start, self.lexemes[period].end)
        return period + 1

    # -- reading -------------------------------------------------------------------------

    def read(self) -> list[Token]:
        index = 0
        while index < len(self.lexemes):
            lexeme = self.lexemes[index]
            index = _HANDLERS[lexeme.kind](self, index, lexeme)
        return self.tokens


# Handlers take the reader, the lexeme's index and the lexeme; they return the next index.
_Handler = Callable[[_SentenceReader, int, _Lexeme], int]


def _read_url(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    start = lexeme.start
    scheme = _URL_SCHEME_RE.match(reader.text, start, lexeme.end)
    if scheme:
        start = scheme.end()  # "https://" is not read out
    _read_address(reader, start, lexeme.end)
    return index + 1


def _read_address(reader: _SentenceReader, start: int, end: int) -> None:
    """Reads a URL, domain or e-mail address piece by piece: "john at example dot org"."""
    for piece in _ADDRESS_PIECE_RE.finditer(reader.text, start, end):
        text, (piece_start, piece_end) = piece.group(), piece.span()
        if text.isdecimal():
            reader.digits(piece_start, piece_end)
        elif text.isalpha() and (len(text) <= 2 or text.lower() == "www"):
            reader.spell(piece_start, piece_end)  # "io", "uk", "www" are spelled
        elif text.isalpha():
            reader.word(text, piece_start, piece_end)
        elif text in _ADDRESS_SEPARATORS:
            reader.say(_ADDRESS_SEPARATORS[text], piece_start, piece_end)


def _read_email_or_domain(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    _read_address(reader, lexeme.start, lexeme.end)
    return index + 1


def _read_digit_string(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    reader.digits(lexeme.start, lexeme.end)
    return index + 1


def _say_date(reader: _SentenceReader, month: int, day: int, year_text: str, start: int, end: int) -> None:
    year = int(year_text)
    if len(year_text) == 4:
        year_words = _year(year)
    elif year < 10:
        year_words = "oh " + _cardinal(year)  # "'05" -> "oh five"
    else:
        year_words = _cardinal(year)
    reader.say(f"{_MONTHS[month - 1]} {_ordinal(day)} {year_words}", start, end)


_DIGIT_GROUP_RE = re.compile(r"\d+")


def _read_numbers_in(reader: _SentenceReader, start: int, end: int, separator: str) -> None:
    """Fallback for digit groups that make no valid date or fraction: each group as a number."""
    for group in _DIGIT_GROUP_RE.finditer(reader.text, start, end):
        if group.start() > start and separator:
            reader.say(separator, group.start() - 1, group.start())
        reader.number(group.group(), group.start(), group.end())


def _read_iso_date(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    year, month, day = reader.text[lexeme.start:lexeme.end].split("-")
    if 1 <= int(month) <= 12 and 1 <= int(day) <= 31:
        _say_date(reader, int(month), int(day), year, lexeme.start, lexeme.end)
    else:
        _read_numbers_in(reader, lexeme.start, lexeme.end, "")
    return index + 1


def _read_slash_date(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    first_text, second_text, year = reader.text[lexeme.start:lexeme.end].split("/")
    first, second = int(first_text), int(second_text)
    if 1 <= first <= 12 and 1 <= second <= 31:  # American month/day first
        _say_date(reader, first, second, year, lexeme.start, lexeme.end)
    elif 1 <= second <= 12 and 1 <= first <= 31:  # day/month when the first cannot be a month
        _say_date(reader, second, first, year, lexeme.start, lexeme.end)
    else:
        _read_numbers_in(reader, lexeme.start, lexeme.end, "slash")
    return index + 1


_CURRENCY_RE = re.compile(
    r"(?P<symbol>.)\s?(?P<whole>[\d,]+)(?:\.(?P<fraction>\d+))?(?:\s?(?P<magnitude>[A-Za-z]+))?",
    re.DOTALL,
)


def _read_currency(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    parts = _CURRENCY_RE.fullmatch(reader.text, lexeme.start, lexeme.end)
    unit, units, subunit, subunits = _CURRENCIES[parts["symbol"]]
    whole = parts["whole"].replace(",", "")
    fraction = parts["fraction"] or ""
    if len(whole) > _MAX_SPELLED_DIGITS:
        reader.digits(lexeme.start, lexeme.end)
        reader.say(units, lexeme.start, lexeme.end)
    elif parts["magnitude"]:  # "$1.5bn" -> "one point five billion dollars"
        amount = _decimal(whole, fraction) if fraction else _cardinal(int(whole))
        reader.say(f"{amount} {_MAGNITUDES[parts['magnitude'].lower()]} {units}", lexeme.start, lexeme.end)
    elif len(fraction) > 2:
        reader.say(f"{_decimal(whole, fraction)} {units}", lexeme.start, lexeme.end)
    else:
        main, cents = int(whole), int(fraction.ljust(2, "0")) if fraction else 0
        phrases = []
        if main or not cents:
            phrases.append(f"{_cardinal(main)} {unit if main == 1 else units}")
        if cents:
            phrases.append(f"{_cardinal(cents)} {subunit if cents == 1 else subunits}")
        reader.say(" and ".join(phrases), lexeme.start, lexeme.end)
    return index + 1


def _twenty_four_hour(hour: int, minute: int) -> str:
    """A 24-hour time written with a leading zero, as said: "08:00" oh eight hundred, "00:30" zero zero thirty."""
    hour_words = "zero zero" if hour == 0 else ("oh " if hour < 10 else "") + _cardinal(hour)
    minute_words = "hundred" if minute == 0 else ("oh " if minute < 10 else "") + _cardinal(minute)
    return f"{hour_words} {minute_words}"


_CLOCK_RE = re.compile(r"(?P<hour>\d+)(?::(?P<minute>\d+))?(?::(?P<second>\d+))?\s?(?P<ampm>.*)", re.DOTALL)


def _read_time(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    parts = _CLOCK_RE.fullmatch(reader.text, lexeme.start, lexeme.end)
    hour = int(parts["hour"])
    minute = int(parts["minute"] or 0)
    ampm_start = parts.start("ampm")
    words = [_cardinal(hour)]
    if parts["hour"].startswith("0") and len(parts["hour"]) == 2 and not parts["ampm"]:
        words = [_twenty_four_hour(hour, minute)]  # "08:30", "00:30": 24-hour reading
    elif minute:
        words.append(("oh " if minute < 10 else "") + _cardinal(minute))
    elif parts["minute"] and not parts["ampm"]:
        words.append("hundred" if hour == 0 or hour > 12 else "o'clock")
    if parts["second"]:
        words.append(f"and {_cardinal(int(parts['second']))} seconds")
    # The clock's words come from its digits, "a.m."/"p.m." from its letters: spans stay disjoint.
    clock_end = max(parts.end("hour"), parts.end("minute"), parts.end("second"))  # -1 for a group not there
    reader.say(" ".join(words), lexeme.start, clock_end)
    reader.spell(ampm_start, lexeme.end)
    if parts["ampm"].endswith(".") and lexeme.end >= reader.content_end:
        reader.punct(".", lexeme.end - 1, lexeme.end)
    return index + 1


def _read_short_decade(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    decade = int(reader.text[lexeme.start + 1:lexeme.start + 3])  # "'90s" -> 90
    reader.say(_pluralise(_cardinal(decade)), lexeme.start, lexeme.end)
    return index + 1


def _vulgar_fraction_parts(char: str) -> tuple[int, int] | None:
    """ "½" -> (1, 2), from its decomposition "<fraction> 0031 2044 0032"; None if not one."""
    tag, *codes = unicodedata.decomposition(char).split() or [""]
    if tag != "<fraction>" or "2044" not in codes:
        return None
    slash = codes.index("2044")
    numerator = "".join(chr(int(code, 16)) for code in codes[:slash])
    denominator = "".join(chr(int(code, 16)) for code in codes[slash + 1:])
    return (int(numerator), int(denominator)) if numerator and denominator else None


def _read_vulgar_fraction(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    whole = reader.text[lexeme.start:lexeme.end - 1]
    fraction = _vulgar_fraction_parts(reader.text[lexeme.end - 1])
    assert fraction is not None  # the lexer admits only complete fractions ("½", "⅞")
    numerator, denominator = fraction
    if whole and len(whole) <= _MAX_SPELLED_DIGITS:
        reader.say(_mixed_fraction(int(whole), numerator, denominator), lexeme.start, lexeme.end)
    else:
        if whole:
            reader.digits(lexeme.start, lexeme.end - 1)
        reader.say(_fraction(numerator, denominator), lexeme.end - 1, lexeme.end)
    return index + 1


def _read_fraction(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    source = reader.text[lexeme.start:lexeme.end]
    whole, _, ratio = source.rpartition(" ")
    numerator_text, denominator_text = ratio.split("/")
    numerator, denominator = int(numerator_text), int(denominator_text)
    # Proper fractions, and halves and quarters ("3/2"), are read as fractions; other pairs are
    # names or scores read as their numbers ("24/7" twenty four seven, "9/11", "50/50").
    readable = (len(source) <= _MAX_SPELLED_DIGITS
                and denominator in _READABLE_DENOMINATORS
                and (0 < numerator < denominator or not whole and denominator in (2, 4)))
    if readable and whole:
        reader.say(_mixed_fraction(int(whole), int(numerator_text), int(denominator_text)),
                   lexeme.start, lexeme.end)
    elif readable:
        reader.say(_fraction(int(numerator_text), int(denominator_text)), lexeme.start, lexeme.end)
    else:
        _read_numbers_in(reader, lexeme.start, lexeme.end, "")
    return index + 1


def _read_ratio(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    _read_numbers_in(reader, lexeme.start, lexeme.end, "to")  # "16:9" sixteen to nine
    return index + 1


def _read_version(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    _read_numbers_in(reader, lexeme.start, lexeme.end, "point")  # "14.2.1" fourteen point two point one
    return index + 1


def _read_tech_name(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    for word in _TECH_NAMES[reader.text[lexeme.start:lexeme.end]].split():  # "C sharp": the letter stays a capital
        reader.word(word, lexeme.start, lexeme.end)
    return index + 1


def _is_one(number_text: str) -> bool:
    return number_text.lstrip("-−+") in ("1", "1.0")


def _read_degree_scale(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    degrees = "degree" if _is_one(reader.lexeme_text(index - 1)) else "degrees"
    scale = _TEMPERATURE_SCALES[reader.text[lexeme.end - 1]]
    reader.say(f"{degrees} {scale}", lexeme.start, lexeme.end)
    return index + 1


_NUMBER_RE = re.compile(
    r"(?P<sign>[-−])?(?P<whole>[\d,]+)(?:\.(?P<fraction>\d+))?(?P<suffix>\D*)", re.DOTALL
)


_NUMBER_SUFFIX_WORDS = {"bn": "billion", "mn": "million", "tn": "trillion", "x": "times"}


def _is_hhmm(digits: str) -> bool:
    return int(digits[:2]) < 24 and int(digits[2:]) < 60


def _read_number(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    parts = _NUMBER_RE.fullmatch(reader.text, lexeme.start, lexeme.end)
    start, end = lexeme.start, lexeme.end
    whole, fraction = parts["whole"], parts["fraction"]
    suffix = parts["suffix"].replace("’", "'").lower()
    plain = whole.replace(",", "")
    if parts["sign"]:
        # "minus" is read from the sign, the rest from the digits: spans stay disjoint and in order.
        reader.say("minus", start, parts.end("sign"))
        start = parts.end("sign")
    if len(plain) > _MAX_SPELLED_DIGITS:
        reader.digits(start, end)
        return index + 1
    value = int(plain)
    if suffix in _NUMBER_SUFFIX_WORDS:  # "8bn" eight billion, "3x" three times
        amount = _decimal(plain, fraction) if fraction is not None else _cardinal(value)
        reader.say(f"{amount} {_NUMBER_SUFFIX_WORDS[suffix]}", start, end)
        return index + 1
    if len(whole) == 4 and whole.startswith("0") and not fraction and not suffix and _is_hhmm(plain):
        reader.say(_twenty_four_hour(value // 100, value % 100), start, end)  # "0800" oh eight hundred
        return index + 1
    is_year = (len(plain) == 4 and "," not in whole and not fraction and value in _YEAR_RANGE
               and not parts["sign"]
               and reader.lexeme_text(index - 1).lower() not in _QUANTITY_CUES
               and reader.lexeme_text(index + 1) not in _UNITS)
    if fraction is not None:
        reader.say(_decimal(plain, fraction), start, end)
    elif suffix in ("st", "nd", "rd", "th"):
        reader.say(_ordinal(value), start, end)
    elif suffix in ("s", "'s"):  # "the 1990s", "in his 80s"
        reader.say(_pluralise(_year(value) if is_year else _cardinal(value)), start, end)
    elif 1 <= value <= 31 and reader.is_month(reader.word_before(index)):  # "Jan. 5"
        reader.say(_ordinal(value), start, end)
    elif 1 <= value <= 31 and reader.is_month(index + 1):  # "5 January"
        reader.say(f"the {_ordinal(value)} of", start, end)
    elif is_year:
        reader.say(_year(value), start, end)
    elif plain.startswith("0") and len(plain) > 1 or (len(plain) >= 5 and "," not in whole
                                                      and value % 1000):
        reader.digits(start, end)  # zip codes, IDs, "007"; round "10000" stays a number
    else:
        reader.number(plain, start, end)
    return _read_unit_after(reader, index, value == 1 and not fraction)


def _read_unit_after(reader: _SentenceReader, index: int, singular: bool) -> int:
    unit_index = index + 1
    unit = reader.lexeme_text(unit_index)
    if reader.kind(unit_index) not in ("word", "rate_unit") or unit not in _UNITS:
        return index + 1
    lexeme = reader.lexemes[unit_index]
    reader.say(_UNITS[unit][0 if singular else 1], lexeme.start, lexeme.end)
    if reader.is_period(unit_index + 1) and reader.adjacent(unit_index, unit_index + 1):
        return reader.take_period(unit_index)
    return unit_index + 1


def _read_rate_unit(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    """A rate unit with no number before it ("speed in km/h")."""
    reader.say(_RATE_UNITS[reader.lexeme_text(index)][1], lexeme.start, lexeme.end)
    return index + 1


def _read_dotted(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    source = reader.text[lexeme.start:lexeme.end - 1].lower()
    abbreviation = _ABBREVIATIONS.get(source)
    if abbreviation:
        reader.say(abbreviation.expansion, lexeme.start, lexeme.end)
    else:
        reader.spell(lexeme.start, lexeme.end)  # "U.S.", "a.m.", "Ph.D."
    if lexeme.end >= reader.content_end:
        reader.punct(".", lexeme.end - 1, lexeme.end)
    return index + 1


def _roman_as_number(reader: _SentenceReader, index: int, word: str) -> str | None:
    """How a Roman numeral in context is read ("Henry VIII" -> "the eighth"), or None."""
    if not _ROMAN_RE.fullmatch(word):
        return None
    previous = reader.lexeme_text(index - 1) if reader.kind(index - 1) == "word" else ""
    if previous.lower() in _NUMBERED_NOUNS:
        return _cardinal(_roman_value(word))
    ends_phrase = reader.kind(index + 1) in ("punct", "")
    if reader.heading and index == 0 and (len(word) >= 2 or ends_phrase):
        return _cardinal(_roman_value(word))  # "IV. The Return", but not "I Know Why"
    # Single letters are too often something else ("Malcolm X", "When I"); "Henry V" is kept.
    if (_is_capitalised(previous) and _REGNAL_RE.fullmatch(word)
            and (len(word) >= 2 or word == "V" or previous.lower() in _REGNAL_NAMES)):
        return f"the {_ordinal(_roman_value(word))}"
    return None


def _abbreviation_applies(reader: _SentenceReader, index: int, when: str | None) -> bool:
    after = index + 2 if reader.is_period(index + 1) else index + 1
    if when == _When.ALWAYS or when == _When.NAME_SIDE:
        return True
    if when == _When.BEFORE_NAME:
        return reader.kind(after) == "word" and _is_capitalised(reader.lexeme_text(after))
    if when == _When.BEFORE_NUMBER:
        return reader.kind(after) in ("number", "fraction", "phone")
    return False


def _read_abbreviation(reader: _SentenceReader, index: int, lexeme: _Lexeme, word: str) -> int | None:
    abbreviation = _ABBREVIATIONS.get(word.lower())
    if abbreviation is None:
        return None
    capitalised_form = word[:1].isupper() and (word[1:].islower() or not word[1:] or reader.shouted)
    if abbreviation.capitalised and not capitalised_form:
        return None
    has_period = reader.is_period(index + 1) and reader.adjacent(index, index + 1)
    when = abbreviation.with_period if has_period else abbreviation.bare
    if not _abbreviation_applies(reader, index, when):
        return None
    expansion = abbreviation.expansion
    if when == _When.NAME_SIDE:
        before_name, after_name = expansion.split("|")
        following = index + 2 if has_period else index + 1
        before_a_name = reader.kind(following) == "word" and _is_capitalised(reader.lexeme_text(following))
        after_a_name = reader.kind(index - 1) == "word" and _is_capitalised(reader.lexeme_text(index - 1))
        expansion = after_name if after_a_name and not before_a_name else before_name
    reader.say(expansion, lexeme.start, lexeme.end)
    return reader.take_period(index) if has_period else index + 1


def _read_capitals(reader: _SentenceReader, lexeme: _Lexeme, word: str) -> bool:
    """Reads an all-capitals word: spelled when unpronounceable ("FBI", "CDs", "FBI's")."""
    letters, apostrophe, possessive = word.partition("'")
    plural = not apostrophe and len(letters) > 2 and letters.endswith("s")
    if plural:
        letters = letters[:-1]
    if len(letters) < 2 or not letters.isupper() or apostrophe and possessive != "s":
        return False
    if _is_pronounceable(letters) and (reader.shouted or len(letters) >= 4):
        return False
    start = lexeme.start
    reader.spell(start, start + len(letters) - 1)
    last = start + len(letters) - 1
    # The plural or possessive rides on the last letter: "CDs" -> "C", "D's".
    reader.word(letters[-1] + ("'s" if plural or apostrophe else ""), last, lexeme.end)
    return True


def _is_initial(reader: _SentenceReader, index: int, word: str) -> bool:
    return (len(word) == 1 and word.isupper() and reader.is_period(index + 1)
            and reader.adjacent(index, index + 1) and reader.kind(index + 2) == "word"
            and _is_capitalised(reader.lexeme_text(index + 2)))


def _read_word(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    word = reader.text[lexeme.start:lexeme.end].replace("’", "'")
    if word.lower() in reader.keep:  # the user's lexicon decides how it sounds
        reader.word(word, lexeme.start, lexeme.end)
        return index + 1
    ordinary_case = word.islower() or (word[:1].isupper() and word[1:].islower())
    if ordinary_case and not reader.shouted and word.lower() not in _ABBREVIATIONS:
        if word.replace("'", "").isalpha():  # the common case: nothing to interpret
            reader.word(word, lexeme.start, lexeme.end)
            return index + 1
    if not word.replace("'", "").isalpha():
        return _read_mixed_word(reader, index, lexeme)
    roman = _roman_as_number(reader, index, word)
    if roman is not None:
        reader.say(roman, lexeme.start, lexeme.end)
        return index + 1
    if _is_initial(reader, index, word):  # "J. Smith": the period is no sentence break
        reader.word(word, lexeme.start, lexeme.end)
        return index + 2
    after_abbreviation = _read_abbreviation(reader, index, lexeme, word)
    if after_abbreviation is not None:
        return after_abbreviation
    if _read_capitals(reader, lexeme, word):
        return index + 1
    if reader.shouted and word != "I":
        word = word.lower()
    reader.word(word, lexeme.start, lexeme.end)
    return index + 1


def _read_mixed_word(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    """A word holding combining marks or non-letter numerics ("x²", "café" decomposed)."""
    piece_start = lexeme.start
    for position in range(lexeme.start, lexeme.end + 1):
        char = reader.text[position] if position < lexeme.end else ""
        if char and (char.isalpha() or char in "'’" or _is_mark(char)):
            continue
        if position > piece_start:
            piece = reader.text[piece_start:position].replace("’", "'")
            reader.word(piece.lower() if reader.shouted else piece, piece_start, position)
        if char:
            _read_symbol(reader, position)
        piece_start = position + 1
    return index + 1


def _read_symbol(reader: _SentenceReader, position: int) -> None:
    char = reader.text[position]
    if char in _SYMBOL_WORDS:
        reader.say(_SYMBOL_WORDS[char], position, position + 1)
    elif fraction := _vulgar_fraction_parts(char):  # a lone "½"
        reader.say(_fraction(*fraction), position, position + 1)
    elif unicodedata.category(char) in ("Pd", "Ps", "Pe", "Pi", "Pf"):
        reader.punct(char, position, position + 1)  # dashes, brackets and quotes of any script


def _read_other(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    char = reader.text[lexeme.start]
    following = reader.lexeme_text(index + 1) if reader.adjacent(index, index + 1) else ""
    if char == "#":  # "#5" -> "number five", "#MeToo" -> "hashtag MeToo"
        if reader.kind(index + 1) == "number" and following:
            reader.say("number", lexeme.start, lexeme.end)
        elif reader.kind(index + 1) == "word" and following:
            reader.say("hashtag", lexeme.start, lexeme.end)
    elif char in _SINGULAR_SYMBOL_WORDS and _is_one(reader.lexeme_text(index - 1)):
        reader.say(_SINGULAR_SYMBOL_WORDS[char], lexeme.start, lexeme.end)
    else:
        _read_symbol(reader, lexeme.start)
    return index + 1


_NUMERIC_KINDS = frozenset({"number", "currency", "fraction", "vulgar_fraction"})


def _read_punct(reader: _SentenceReader, index: int, lexeme: _Lexeme) -> int:
    mark = reader.text[lexeme.start:lexeme.end]
    joins = reader.adjacent(index - 1, index) and reader.adjacent(index, index + 1)
    if mark in ("-", "–") and joins:
        if reader.kind(index - 1) in _NUMERIC_KINDS and reader.kind(index + 1) in _NUMERIC_KINDS:
            reader.say("to", lexeme.start, lexeme.end)  # "1990-1995", "pages 10–20"
        elif mark == "-":
            pass  # a hyphen inside a compound: "well-known" is read as two words
        else:
            reader.punct(mark, lexeme.start, lexeme.end)
    else:
        reader.punct(mark, lexeme.start, lexeme.end)
    return index + 1


_HANDLERS: dict[str, _Handler] = {
    "url": _read_url,
    "email": _read_email_or_domain,
    "domain": _read_email_or_domain,
    "phone": _read_digit_string,
    "iso_date": _read_iso_date,
    "slash_date": _read_slash_date,
    "currency": _read_currency,
    "tech_name": _read_tech_name,
    "ratio": _read_ratio,
    "version": _read_version,
    "clock": _read_time,
    "hour": _read_time,
    "short_decade": _read_short_decade,
    "vulgar_fraction": _read_vulgar_fraction,
    "fraction": _read_fraction,
    "degree_scale": _read_degree_scale,
    "number": _read_number,
    "rate_unit": _read_rate_unit,
    "dotted": _read_dotted,
    "word": _read_word,
    "punct": _read_punct,
    "other": _read_other,
}


def normalize_sentence(
    text: str, offset: int = 0, heading: bool = False, keep: Container[str] = frozenset()
) -> list[Token]:
    """Turns one sentence into speakable word and punctuation tokens.

    `offset` is where the sentence starts in the original document; every token's
    [start, end) indexes the source text it was read from. `heading` marks a heading or
    chapter line, where Roman numerals are read as numbers ("CHAPTER IV"). Words whose
    lowercase form is in `keep` (the user's lexicon) are passed on as written, never
    spelled or expanded ("SQL", "GIF").
    """
    return _SentenceReader(text, offset, heading, keep).read()
