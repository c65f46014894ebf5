"""Phonetic alphabets to the project's ARPAbet: IPA and X-SAMPA (SSML <phoneme>, PLS lexicons) and ARPAbet.

English IPA/X-SAMPA symbols map onto the 39 ARPAbet phonemes; stress marks (IPA ˈ ˌ, X-SAMPA " %)
stress the next vowel, unmarked vowels are unstressed (a word without any mark stresses its first
full vowel). A symbol outside the alphabet raises ValueError naming it.
"""

from __future__ import annotations

from .pronounce import PHONEMES, VOWELS

ALPHABETS = ("ipa", "x-sampa", "arpabet")
# Alternative names in use for the same alphabets.
ALPHABET_NAMES = {"ipa": "ipa", "x-sampa": "x-sampa", "xsampa": "x-sampa", "arpabet": "arpabet", "x-arpabet": "arpabet", "cmu": "arpabet"}

_IPA = {
    # Diphthongs and affricates first (longest match wins).
    "aɪ": "AY", "aʊ": "AW", "ɔɪ": "OY", "eɪ": "EY", "oʊ": "OW", "əʊ": "OW", "ɪə": "IH R", "ɛə": "EH R", "ʊə": "UH R",
    "tʃ": "CH", "t͡ʃ": "CH", "dʒ": "JH", "d͡ʒ": "JH", "ɝ": "ER", "ɚ": "ER", "ɜ": "ER",
    "i": "IY", "ɪ": "IH", "e": "EY", "ɛ": "EH", "æ": "AE", "a": "AA", "ɑ": "AA", "ɒ": "AA", "ɔ": "AO", "o": "OW",
    "ʊ": "UH", "u": "UW", "ʌ": "AH", "ə": "AH", "ɐ": "AH", "ᵻ": "IH", "ɨ": "IH", "y": "UW",
    "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "g": "G", "ɡ": "G", "f": "F", "v": "V", "θ": "TH", "ð": "DH",
    "s": "S", "z": "Z", "ʃ": "SH", "ʒ": "ZH", "h": "HH", "m": "M", "n": "N", "ŋ": "NG", "l": "L", "ɫ": "L", "r": "R",
    "ɹ": "R", "ɾ": "T", "w": "W", "ʍ": "W", "j": "Y", "x": "HH", "ʔ": "",
}  # fmt: skip
_IPA_IGNORED = frozenset("ː.ˑ̩ ̯‿/[]")
_IPA_STRESS = {"ˈ": "1", "ˌ": "2", "'": "1", ",": "2"}

_XSAMPA = {
    "aI": "AY", "aU": "AW", "OI": "OY", "eI": "EY", "oU": "OW", "@U": "OW", "tS": "CH", "dZ": "JH", "3`": "ER", "@`": "ER",
    "r\\": "R", "i": "IY", "I": "IH", "e": "EY", "E": "EH", "{": "AE", "a": "AA", "A": "AA", "Q": "AA", "O": "AO",
    "o": "OW", "U": "UH", "u": "UW", "V": "AH", "@": "AH", "3": "ER", "p": "P", "b": "B", "t": "T", "d": "D", "k": "K",
    "g": "G", "f": "F", "v": "V", "T": "TH", "D": "DH", "s": "S", "z": "Z", "S": "SH", "Z": "ZH", "h": "HH", "m": "M",
    "n": "N", "N": "NG", "l": "L", "5": "L", "r": "R", "4": "T", "w": "W", "W": "W", "j": "Y", "x": "HH", "?": "",
}  # fmt: skip
_XSAMPA_IGNORED = frozenset(":.= -/[]")
_XSAMPA_STRESS = {'"': "1", "%": "2"}
_SCHWAS = frozenset("əɐ@ɚ")


def _convert(text: str, table: dict[str, str], stress_marks: dict[str, str], ignored: frozenset[str], name: str) -> tuple[str, ...]:
    longest = max(map(len, table))
    phones: list[str] = []
    stresses: list[str | None] = []  # per phone: the stress digit for a vowel (None: not marked)
    schwa: list[bool] = []
    pending: str | None = None
    i = 0
    while i < len(text):
        char = text[i]
        if char in stress_marks:
            pending = stress_marks[char]
            i += 1
            continue
        if char in ignored or char.isspace():
            i += 1
            continue
        for size in range(min(longest, len(text) - i), 0, -1):
            symbol = text[i : i + size]
            if symbol in table:
                break
        else:
            raise ValueError(f"{char!r} is not an English {name} symbol")
        for phone in table[symbol].split():
            phones.append(phone)
            vowel = phone in VOWELS
            stresses.append(pending if vowel else None)
            schwa.append(vowel and symbol in _SCHWAS)
            if vowel:
                pending = None
        i += len(symbol)
    if not phones:
        raise ValueError(f"no {name} phonemes")
    vowels = [k for k, p in enumerate(phones) if p in VOWELS]
    if vowels and all(stresses[k] is None for k in vowels):
        # No stress marked at all: the first full vowel carries the word's stress.
        first = next((k for k in vowels if not schwa[k]), vowels[0])
        stresses[first] = "1"
    return tuple(p + (stresses[k] or "0") if p in VOWELS else p for k, p in enumerate(phones))


def _arpabet(text: str) -> tuple[str, ...]:
    phones = []
    for symbol in text.upper().split():
        if symbol in VOWELS:  # a vowel without its stress digit: unstressed
            symbol += "0"
        if symbol not in PHONEMES:
            raise ValueError(f"{symbol!r} is not an ARPAbet phoneme (39 CMUdict symbols, vowels with stress 0-2)")
        phones.append(symbol)
    if not phones:
        raise ValueError("no ARPAbet phonemes")
    return tuple(phones)


def to_arpabet(text: str, alphabet: str) -> tuple[str, ...]:
    """ARPAbet phonemes (with stress digits) of a transcription in `alphabet` (see ALPHABET_NAMES)."""
    name = ALPHABET_NAMES.get(alphabet.strip().lower())
    if name == "ipa":
        return _convert(text, _IPA, _IPA_STRESS, _IPA_IGNORED, "IPA")
    if name == "x-sampa":
        return _convert(text, _XSAMPA, _XSAMPA_STRESS, _XSAMPA_IGNORED, "X-SAMPA")
    if name == "arpabet":
        return _arpabet(text)
    raise ValueError(f"unknown phonetic alphabet {alphabet!r}: use ipa, x-sampa or arpabet")
