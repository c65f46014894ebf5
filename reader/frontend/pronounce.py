"""Words to phonemes: user lexicon, then the CMU Pronouncing Dictionary (heteronyms by part of speech),
then a grapheme-to-phoneme model for everything else.

Phoneme set (the whole project uses it): ARPAbet as in CMUdict, 39 base phonemes, vowels carrying a
stress digit (0 unstressed, 1 primary, 2 secondary), e.g. "hello" -> HH AH0 L OW1.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from . import compiled_cmudict
from ..errors import ReaderError
from ..paths import config_dir

VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
CONSONANTS = frozenset("B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH".split())
PHONEMES = frozenset(CONSONANTS | {v + s for v in VOWELS for s in "012"})

DEFAULT_LEXICON_NAME = "lexicon.txt"

# Heteronyms whose variants CMUdict lists, chosen by Penn POS tag prefix (first match wins).
# Words not here but with noun/verb stress-shift variants (record, present, object...) use the
# generic rule in _stress_shift_variant.
HETERONYMS: dict[str, list[tuple[tuple[str, ...], str]]] = {
    "read": [(("VBD", "VBN"), "R EH1 D"), ((), "R IY1 D")],
    "lead": [(("JJ",), "L EH1 D"), ((), "L IY1 D")],
    "live": [(("JJ", "RB"), "L AY1 V"), ((), "L IH1 V")],
    "lives": [(("NNS",), "L AY1 V Z"), ((), "L IH1 V Z")],
    "close": [(("VB",), "K L OW1 Z"), ((), "K L OW1 S")],
    "use": [(("VB",), "Y UW1 Z"), ((), "Y UW1 S")],
    "excuse": [(("VB",), "IH0 K S K Y UW1 Z"), ((), "IH0 K S K Y UW1 S")],
    "abuse": [(("VB",), "AH0 B Y UW1 Z"), ((), "AH0 B Y UW1 S")],
    "wind": [(("VB",), "W AY1 N D"), ((), "W IH1 N D")],
    "tear": [(("VB",), "T EH1 R"), ((), "T IH1 R")],
    "wound": [(("VBD", "VBN"), "W AW1 N D"), ((), "W UW1 N D")],
    "minute": [(("JJ",), "M AY0 N UW1 T"), ((), "M IH1 N AH0 T")],
    "does": [((), "D AH1 Z")],
    "dove": [(("VBD",), "D OW1 V"), ((), "D AH1 V")],
    "a": [(("DT",), "AH0"), ((), "EY1")],
    "the": [((), "DH AH0")],
    "to": [((), "T UW1")],
}


@dataclass(frozen=True)
class LexiconEntry:
    phonemes: tuple[str, ...] | None = None
    respelling: str | None = None  # "sounds like" words, pronounced in turn


def parse_lexicon(text: str, source: str) -> dict[str, LexiconEntry]:
    """Parse a user lexicon: one `word  PHONEMES` or `word  "respelling"` per line, '#' comments.

    Example:
        nginx    EH1 N JH AH0 N EH1 K S
        SQL      "sequel"
    Words match case-insensitively. A malformed line raises ReaderError naming file and line.
    """
    entries: dict[str, LexiconEntry] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise ReaderError(f"{source}:{number}: expected 'word  PHONEMES' or 'word  \"respelling\"'")
        word, rest = parts[0].lower(), parts[1].strip()
        if len(rest) >= 2 and rest[0] == rest[-1] == '"':
            respelling = rest[1:-1].strip()
            if not respelling:
                raise ReaderError(f"{source}:{number}: empty respelling for {parts[0]!r}")
            entries[word] = LexiconEntry(respelling=respelling)
            continue
        phonemes = tuple(rest.upper().split())
        unknown = [p for p in phonemes if p not in PHONEMES]
        if unknown:
            raise ReaderError(
                f"{source}:{number}: unknown phoneme {unknown[0]!r} for {parts[0]!r} "
                "(use ARPAbet with stress digits on vowels, e.g. AH0)"
            )
        entries[word] = LexiconEntry(phonemes=phonemes)
    return entries


def load_lexicon(path: str | Path | None) -> dict[str, LexiconEntry]:
    """The lexicon at `path`, or the user's default (~/.config/reader/lexicon.txt) if it exists: the
    text format above, or a W3C PLS file (.pls, or any file starting with "<"; see frontend.pls)."""
    if path is None:
        default = config_dir() / DEFAULT_LEXICON_NAME
        if not default.is_file():
            return {}
        path = default
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReaderError(f"lexicon not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReaderError(f"cannot read lexicon {path}: {exc}") from None
    from .pls import looks_like_pls, parse_pls

    if path.suffix.lower() == ".pls" or looks_like_pls(text):
        return parse_pls(text, str(path))
    return parse_lexicon(text, str(path))


@lru_cache(maxsize=1)
def _cmudict() -> compiled_cmudict.CompiledDictionary:
    """CMUdict as cmudict.dict() gives it, read from its compiled file (milliseconds, not seconds)."""
    return compiled_cmudict.load()


def _primary_vowel_index(pron: Sequence[str]) -> int:
    vowels = [p for p in pron if p[-1].isdigit()]
    return next((i for i, p in enumerate(vowels) if p.endswith("1")), -1)


def _stress_shift_variant(variants: list[list[str]], pos: str) -> list[str] | None:
    """Noun/adjective vs verb stress shift (REcord vs reCORD; ESTimate vs estiMATE).

    Nouns and adjectives take the variant stressed on the first syllable, verbs a later one;
    for -ate words verbs take the variant ending in a full EY vowel.
    """
    if all(sum(p[-1].isdigit() for p in v) < 2 for v in variants):
        return None
    first = [v for v in variants if _primary_vowel_index(v) == 0]
    later = [v for v in variants if _primary_vowel_index(v) > 0]
    full_ate = [v for v in variants if v[-2:] == ["EY2", "T"]]
    reduced_ate = [v for v in variants if v[-2:] in (["AH0", "T"], ["IH0", "T"])]
    if full_ate and reduced_ate:
        return full_ate[0] if pos.startswith("VB") else reduced_ate[0]
    if first and later:
        return later[0] if pos.startswith("VB") else first[0]
    return None


class Pronouncer:
    """Pronunciations for words in context (their POS tag), with a cache for repeated words."""

    def __init__(self, lexicon: dict[str, LexiconEntry] | None = None, g2p=None) -> None:
        self.lexicon = lexicon or {}
        self.keep = frozenset(word.lower() for word in self.lexicon)  # words the normaliser passes on as written
        self._dictionary = _cmudict()
        self._g2p = g2p  # loaded on first out-of-vocabulary word
        self._cache: dict[tuple[str, str], tuple[str, ...]] = {}

    def _oov(self, word: str) -> tuple[str, ...]:
        if self._g2p is None:
            from .g2p import G2P

            self._g2p = G2P.load()
        return tuple(self._g2p.predict(word))

    def phonemes(self, word: str, pos: str = "", depth: int = 0) -> tuple[str, ...]:
        """ARPAbet phonemes of `word` with Penn POS tag `pos`; () for a word that cannot be spoken."""
        key = (word, pos)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        result = self._lookup(word, pos, depth)
        if len(self._cache) < 200_000:
            self._cache[key] = result
        return result

    def _lookup(self, word: str, pos: str, depth: int) -> tuple[str, ...]:
        lower = word.lower().replace("\u2019", "'")
        # Exact spelling first: a PLS grapheme with capitals ("US") matches only itself (frontend.pls).
        entry = self.lexicon.get(word) or self.lexicon.get(lower) or self.lexicon.get(fold_accents(lower))
        lower = fold_accents(lower)  # after the lexicon, which may list the accented spelling
        if entry is not None:
            if entry.phonemes is not None:
                return entry.phonemes
            if depth < 3:  # a respelling may itself use lexicon words; stop runaway cycles
                return tuple(p for w in re.findall(r"[\w']+", entry.respelling) for p in self.phonemes(w, "", depth + 1))
        # A lone capital letter is a spelled letter (F B I), except the article "A".
        if len(word) == 1 and word.isupper() and not (word == "A" and pos == "DT"):
            letter = self._dictionary.get(lower)
            if letter:
                return tuple(letter[-1] if lower == "a" else letter[0])
        rule = HETERONYMS.get(lower)
        if rule is not None:
            for prefixes, pron in rule:
                if not prefixes or pos.startswith(prefixes):
                    return tuple(pron.split())
        variants = self._dictionary.get(lower)
        if variants:
            chosen = _stress_shift_variant(variants, pos) if len(variants) > 1 else None
            return tuple(chosen or variants[0])
        if lower.endswith("'s") and len(lower) > 2:
            base = self.phonemes(lower[:-2], "NN", depth)
            if base:
                return base + _plural_suffix(base[-1])
        if lower.endswith("s'") and len(lower) > 2:
            base = self.phonemes(lower[:-1], "NNS", depth)
            if base:
                return base
        if not any(ch.isalpha() for ch in lower):
            return ()
        return self._oov(lower)


# Latin letters that Unicode does not decompose into a base letter and an accent.
_LATIN_LETTERS = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"})


def fold_accents(word: str) -> str:
    """Latin letters without accents ("café" -> "cafe", "naïve" -> "naive"); other scripts unchanged."""
    if word.isascii():
        return word
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", word) if not unicodedata.combining(ch)).translate(_LATIN_LETTERS)
    return folded if folded.isascii() else word


def _plural_suffix(last: str) -> tuple[str, ...]:
    if last in ("S", "Z", "SH", "ZH", "CH", "JH"):
        return ("IH0", "Z")
    if last in ("P", "T", "K", "F", "TH"):
        return ("S",)
    return ("Z",)
