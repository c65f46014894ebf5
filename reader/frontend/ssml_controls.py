"""What SSML asks of the reading, per source span: attribute values, voice settings, breaks and marks,
and how they land on analysed sentences (SentenceControls, which Reader.request turns into pauses,
durations, F0 and gain)."""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from typing import Sequence

from .normalize import Token
from .prosody import BreakLevel

# Polly caps a break at 10 s; a longer silence is better written as several breaks.
MAX_BREAK_SECONDS = 10.0
# <break strength>: the plan's level inside a sentence, and the pause at a sentence end for the weak ones
# (strong and x-strong there take the sentence and paragraph pauses).
BREAK_STRENGTHS: dict[str, tuple[BreakLevel, float | None]] = {
    "none": (BreakLevel.NONE, 0.0),
    "x-weak": (BreakLevel.MINOR, 0.1),
    "weak": (BreakLevel.MINOR, 0.25),
    "medium": (BreakLevel.MAJOR, 0.4),
    "strong": (BreakLevel.SENTENCE, None),
    "x-strong": (BreakLevel.PARAGRAPH, None),
}
RATES = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.35, "x-fast": 1.75}
MIN_RATE, MAX_RATE = 0.2, 4.0  # Polly's 20 % .. 200 %, widened to the --speed range
PITCH_SEMITONES = {"x-low": -6.0, "low": -3.0, "medium": 0.0, "default": 0.0, "high": 3.0, "x-high": 6.0}
MAX_PITCH_SEMITONES = 12.0
VOLUME_DB = {"silent": -math.inf, "x-soft": -10.0, "soft": -5.0, "medium": 0.0, "default": 0.0, "loud": 5.0, "x-loud": 10.0}
MAX_VOLUME_DB = 20.0


@dataclass(frozen=True)
class Voice:
    """How a span is spoken: rate (duration divisor), pitch (F0 factor), gain (amplitude factor), and
    whether it is bleeped (say-as expletive: a tone in place of the words, their timing kept)."""

    rate: float = 1.0
    pitch: float = 1.0
    gain: float = 1.0
    bleep: bool = False

    def __mul__(self, other: Voice) -> Voice:
        return Voice(self.rate * other.rate, self.pitch * other.pitch, self.gain * other.gain, self.bleep or other.bleep)


PLAIN = Voice()
# <emphasis>: slower, higher and louder for stress, the other way for reduced (what the model can change:
# durations, F0, and the output gain; benchmarks/results/ssml_audio.md measures what each one does).
EMPHASIS = {
    "strong": Voice(rate=0.8, pitch=2 ** (3 / 12), gain=10 ** (3 / 20)),
    "moderate": Voice(rate=0.9, pitch=2 ** (1.5 / 12), gain=10 ** (1.5 / 20)),
    "none": PLAIN,
    "reduced": Voice(rate=1.15, pitch=2 ** (-1.5 / 12), gain=10 ** (-3 / 20)),
}


def parse_time(value: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)\s*", value)
    if not match:
        raise ValueError(f'time="{value}" is not a duration such as "500ms" or "1.5s"')
    seconds = float(match[1]) / (1000 if match[2] == "ms" else 1)
    if seconds > MAX_BREAK_SECONDS:
        raise ValueError(f'time="{value}" is longer than {MAX_BREAK_SECONDS:g} s')
    return seconds


def parse_rate(value: str) -> float:
    value = value.strip()
    if value in RATES:
        return RATES[value]
    match = re.fullmatch(r"(\d+(?:\.\d*)?)(%?)", value)
    rate = (float(match[1]) / 100 if match[2] else float(match[1])) if match else -1.0
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f'rate="{value}" is not x-slow..x-fast or a rate from {MIN_RATE:.0%} to {MAX_RATE:.0%}')
    return rate


def parse_pitch(value: str) -> float:
    """The F0 factor of a pitch value: x-low..x-high, +/-N st (semitones) or +/-N %."""
    value = value.strip()
    if value in PITCH_SEMITONES:
        return 2 ** (PITCH_SEMITONES[value] / 12)
    match = re.fullmatch(r"([+-]?\d+(?:\.\d*)?)(st|%)", value)
    if match:
        amount = float(match[1])
        factor = 2 ** (amount / 12) if match[2] == "st" else 1 + amount / 100
        if 2 ** (-MAX_PITCH_SEMITONES / 12) - 1e-9 <= factor <= 2 ** (MAX_PITCH_SEMITONES / 12) + 1e-9:
            return factor
    raise ValueError(f'pitch="{value}" is not x-low..x-high, +/-N st (at most 12) or +/-N %')


def parse_volume(value: str) -> float:
    """The amplitude factor of a volume value: silent..x-loud or +/-N dB."""
    value = value.strip()
    if value in VOLUME_DB:
        return 10 ** (VOLUME_DB[value] / 20)
    match = re.fullmatch(r"([+-]?\d+(?:\.\d*)?)dB", value)
    if match and abs(float(match[1])) <= MAX_VOLUME_DB:
        return 10 ** (float(match[1]) / 20)
    raise ValueError(f'volume="{value}" is not silent..x-loud or +/-N dB (at most {MAX_VOLUME_DB:g})')


@dataclass(frozen=True)
class Break:
    position: int  # offset of the <break> tag in the source
    level: BreakLevel | None  # from its strength
    time: float | None  # its explicit time
    end_pause: float | None = None  # the pause its strength gives at a sentence end (weak ones)


@dataclass(frozen=True)
class Mark:
    position: int
    name: str
    start: int  # the <mark> tag's span in the source
    end: int


@dataclass
class SentenceControls:
    """What SSML set for one analysed sentence. A gap index i is the gap after word i; -1 is before
    the first word (leading silence, marks at the very start)."""

    voices: list[Voice]  # per word
    pauses: dict[int, float] = field(default_factory=dict)  # gap -> seconds of silence
    # (gap, name, start, end, after_pause): a mark written after a <break> in its gap is timed after the pause.
    marks: list[tuple[int, str, int, int, bool]] = field(default_factory=list)

    def as_json(self) -> dict:
        """For `reader analyze --json`: pauses and marks by gap, voices of the words SSML changed."""
        voices = [{"word": i, "rate": round(v.rate, 4), "pitch": round(v.pitch, 4), "gain": round(v.gain, 4)} for i, v in enumerate(self.voices) if v != PLAIN]
        return {
            "pauses": [{"after_word": gap, "seconds": seconds} for gap, seconds in sorted(self.pauses.items())],
            "marks": [{"name": name, "after_word": gap, "start": start, "end": end} for gap, name, start, end, _ in self.marks],
            "voices": voices,
        }

    def describe(self, words: Sequence) -> str:
        """One line for `reader analyze`: what SSML set beyond the words, phonemes and break levels."""

        def after(gap: int) -> str:
            return "at the start" if gap < 0 else f"after {words[gap].text!r}"

        parts = [f"pause {seconds:g} s {after(gap)}" for gap, seconds in sorted(self.pauses.items())]
        parts += [f"mark {name!r} {after(gap)}" for gap, name, *_ in self.marks]
        for i, v in enumerate(self.voices):
            if v != PLAIN:
                pitch = 12 * math.log2(v.pitch)
                gain = "bleeped" if v.bleep else "silent" if v.gain == 0 else f"{20 * math.log10(v.gain):+.1f} dB"
                parts.append(f"{words[i].text!r} rate {v.rate:g} pitch {pitch:+.1f} st volume {gain}")
        return "; ".join(parts) or "-"


@dataclass
class SsmlControls:
    """Everything SSML changes, by source offset (lists in document order)."""

    voices: list[tuple[int, int, Voice]] = field(default_factory=list)  # (start, end, voice) of text runs
    replacements: list[tuple[int, int, tuple[Token, ...]]] = field(default_factory=list)
    phonemes: dict[tuple[int, int], tuple[str, ...]] = field(default_factory=dict)  # token span -> ARPAbet
    roles: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, Penn tag) of <w role>
    events: list[Break | Mark] = field(default_factory=list)

    def voice_at(self, position: int) -> Voice:
        i = bisect.bisect_right(self._voice_starts, position) - 1
        if i >= 0 and position < self.voices[i][1]:
            return self.voices[i][2]
        return PLAIN

    def role_at(self, position: int) -> str | None:
        return next((tag for start, end, tag in self.roles if start <= position < end), None)

    def freeze(self) -> None:
        self._voice_starts = [start for start, _, _ in self.voices]
        self._replacement_starts = [start for start, _, _ in self.replacements]

    def rewrite(self, tokens: Sequence[Token], start: int, end: int) -> list[Token]:
        """The sentence's tokens with each replaced span (<sub>, <say-as>, <phoneme>) read as SSML says."""
        first = bisect.bisect_left(self._replacement_starts, start)
        pending = []
        # A span that began in an earlier sentence was said there: its tokens here are only dropped.
        if first > 0 and self.replacements[first - 1][1] > start:
            pending.append((*self.replacements[first - 1][:2], ()))
        for replacement in self.replacements[first:]:
            if replacement[0] >= end:
                break
            pending.append(replacement)
        if not pending:
            return list(tokens)
        result: list[Token] = []
        for token in tokens:
            while pending and pending[0][1] <= token.start:
                result += pending.pop(0)[2]
            if not (pending and token.end > pending[0][0] and token.start < pending[0][1]):
                result.append(token)
        for _, _, replacement in pending:
            result += replacement
        return result


class EventCursor:
    """Hands out breaks and marks to sentences in reading order: each goes to the gap after the last
    word before it (an event between two sentences ends the first; before any word, the first's -1)."""

    def __init__(self, controls: SsmlControls) -> None:
        self.events = controls.events
        self.next = 0

    def attach(self, words: Sequence, breaks: list[BreakLevel], resets: list[bool], controls: SentenceControls, until: float) -> None:
        """Give the sentence the events before `until` (the next sentence's first word; inf for the last)."""
        ends = [w.end for w in words]
        while self.next < len(self.events) and self.events[self.next].position < until:
            event = self.events[self.next]
            self.next += 1
            gap = bisect.bisect_right(ends, event.position) - 1
            if isinstance(event, Mark):
                controls.marks.append((gap, event.name, event.start, event.end, gap in controls.pauses))
                continue
            last = gap == len(words) - 1
            level, pause = event.level, event.time
            if 0 <= gap and not last:
                if level is not None:
                    breaks[gap], resets[gap] = level, level >= BreakLevel.MAJOR
                elif pause is not None:
                    breaks[gap] = max(breaks[gap], BreakLevel.MINOR) if pause > 0 else BreakLevel.NONE
                    resets[gap] = resets[gap] and pause > 0
            else:
                if last and level is not None and level >= BreakLevel.SENTENCE:
                    breaks[gap] = max(breaks[gap], level)
                if pause is None:
                    pause = event.end_pause
            if pause is not None:
                controls.pauses[gap] = max(controls.pauses.get(gap, 0.0), pause) if gap in controls.pauses else pause
