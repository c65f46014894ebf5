"""Word times for a transcript: Whisper's words (numbers spelled out) aligned onto the transcript's.

Used by the pause labels (reader.training.pause_labels) and the prosody benchmarks.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np


@dataclass
class TimedWord:
    """A word with times in seconds; `matched` is False when the times are not Whisper's own for this
    exact word (interpolated, taken from a misrecognised word, or a share of a spelled-out number)."""

    text: str
    start: float
    end: float
    matched: bool = True



# --- Transcript ------------------------------------------------------------------------------------

_WORD_CHAR = re.compile(r"[^\W_]")  # a letter or digit, any script
_EDGE_PUNCT = re.compile(r"^[\W_]*(.*?)([\W_]*)$", re.S)


def transcript_words(text: str) -> tuple[list[str], list[str]]:
    """Split normalised text into words and the punctuation attached after each.

    A token without letters or digits (a standalone "--") is punctuation: it is appended to the
    previous word's trailing punctuation, because it marks the same gap.
    """
    words: list[str] = []
    trailing: list[str] = []
    for token in text.split():
        if not _WORD_CHAR.search(token):
            if trailing:
                trailing[-1] += token
            continue
        word, after = _EDGE_PUNCT.match(token).groups()
        words.append(word)
        trailing.append(after)
    return words, trailing


def letters(word: str) -> str:
    return "".join(c for c in word.lower() if c.isalpha())


_NUMBER = re.compile(r"(£?)(\d+)(st|nd|rd|th)?")


def _spoken_forms(word: str) -> list[str]:
    """Whisper writes numbers as digits ("1469,", "15th", "£10"); the transcript spells them out the
    LJ way ("fourteen sixty-nine", "fifteenth", "ten pounds", "two hundred eighty-nine")."""
    match = _NUMBER.fullmatch(word.strip(".,;:!?\"'()").replace(",", ""))
    if not match:
        return [word]
    from num2words import num2words

    pound, digits, ordinal = match.groups()
    number = int(digits)
    if ordinal:
        spoken = num2words(number, to="ordinal")
    elif 1000 < number < 2000 and len(digits) == 4 and not pound:
        spoken = num2words(number, to="year")
    else:
        spoken = num2words(number).replace(" and ", " ")
    return spoken.replace(",", "").split() + (["pounds"] if pound else [])


def spoken_whisper_words(whisper: list[TimedWord]) -> list[TimedWord]:
    """Whisper's words as spoken words: numbers spelled out, each spelled-out word getting a share of
    the number's time by letter count (so only approximate: marked unmatched)."""
    merged: list[TimedWord] = []
    for w in whisper:
        # Whisper sometimes splits "6,439" into "6" and ",439".
        if merged and re.fullmatch(r",\d+\W*", w.text) and re.search(r"\d$", merged[-1].text):
            merged[-1] = TimedWord(merged[-1].text + w.text, merged[-1].start, w.end)
        else:
            merged.append(w)
    spoken: list[TimedWord] = []
    for w in merged:
        forms = [f for f in _spoken_forms(w.text) if letters(f)]
        if len(forms) == 1:
            spoken.append(TimedWord(forms[0], w.start, w.end, w.matched))
            continue
        weights = np.cumsum([0] + [len(letters(f)) for f in forms]) / sum(len(letters(f)) for f in forms)
        edges = w.start + (w.end - w.start) * weights
        spoken.extend(TimedWord(f, float(a), float(b), matched=False) for f, a, b in zip(forms, edges, edges[1:]))
    return spoken


# --- Alignment ---------------------------------------------------------------------------------------


def align_words(transcript: list[str], whisper: list[TimedWord]) -> list[TimedWord]:
    """Give every transcript word a time from the Whisper word it matches.

    Matching is difflib on lowercased letters-only forms (numbers spelled out first). Other
    transcript words get times interpolated between their matched neighbours, split in proportion
    to their letter counts, and are marked unmatched.
    """
    whisper = spoken_whisper_words(whisper)
    if not whisper:
        raise ValueError("Whisper found no words")
    matcher = difflib.SequenceMatcher(
        a=[letters(w) for w in transcript], b=[letters(w.text) for w in whisper], autojunk=False
    )
    aligned: list[TimedWord | None] = [None] * len(transcript)
    for tag, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        # A one-for-one substitution ("concerned" heard as "concern") keeps Whisper's times: closer
        # than interpolation, but unmatched.
        if tag == "equal" or (tag == "replace" and a_end - a_start == b_end - b_start):
            for a, b in zip(range(a_start, a_end), range(b_start, b_end)):
                w = whisper[b]
                aligned[a] = TimedWord(transcript[a], w.start, w.end, w.matched and tag == "equal")

    i = 0
    while i < len(transcript):
        if aligned[i] is not None:
            i += 1
            continue
        j = i
        while j < len(transcript) and aligned[j] is None:
            j += 1
        # The unmatched run i..j-1 fills the time between its matched neighbours (or the Whisper
        # transcript's edges at the clip's ends).
        span_start = aligned[i - 1].end if i > 0 else whisper[0].start
        span_end = aligned[j].start if j < len(transcript) else whisper[-1].end
        span_end = max(span_end, span_start)
        weights = np.array([max(len(letters(w)), 1) for w in transcript[i:j]], dtype=float)
        edges = span_start + (span_end - span_start) * np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
        for k in range(i, j):
            aligned[k] = TimedWord(transcript[k], float(edges[k - i]), float(edges[k - i + 1]), matched=False)
        i = j
    return aligned  # type: ignore[return-value]
