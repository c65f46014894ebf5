"""Tokens, and the state of one sentence being read: what has been said, and what lies around a lexeme."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Container

from .lexer import Lexeme, lex
from .spelling import DIGIT_NAMES, MAX_SPELLED_DIGITS, cardinal
from .tables import MONTH_ABBREVIATIONS, MONTH_NAMES, PROPER_WORDS


@dataclass(frozen=True)
class Token:
    text: str  # one speakable word, or a punctuation mark
    start: int  # offset of the source span in the original document (inclusive)
    end: int  # exclusive; several spoken words from one source token share its span
    is_punct: bool


# Longer letter runs than any English word (45 letters) are read in pieces of WORD_PIECE_CHARS.
MAX_WORD_CHARS = 45
WORD_PIECE_CHARS = 20
_WORD_SPLIT_RE = re.compile(r"[\s,-]+")
_DIGIT_GROUP_RE = re.compile(r"\d+")


def is_capitalised(word: str) -> bool:
    return word[:1].isupper()


class SentenceReader:
    """Reads the lexemes of one sentence aloud, appending Tokens."""

    def __init__(self, text: str, offset: int, heading: bool, keep: Container[str] = frozenset()) -> None:
        self.text = text
        self.keep = keep
        self.offset = offset
        self.heading = heading
        self.lexemes = lex(text)
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
                spoken = word if word in PROPER_WORDS else word.lower()
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
                self.word(DIGIT_NAMES[int(char)], position, position + 1)
                said_digit = True
            elif char == "+":
                self.say("plus", position, position + 1)
            elif said_digit:
                pending_pause = True

    def number(self, digits: str, start: int, end: int) -> None:
        """A whole number as a cardinal, or digit by digit when too long to say."""
        plain = digits.replace(",", "")
        if len(plain) > MAX_SPELLED_DIGITS:
            self.digits(start, end)
        else:
            self.say(cardinal(int(plain)), start, end)

    def numbers_in(self, start: int, end: int, separator: str) -> None:
        """Each digit group as a number, with `separator` said between groups ("16:9" sixteen to nine);
        also the fallback for digit groups that make no valid date or fraction."""
        for group in _DIGIT_GROUP_RE.finditer(self.text, start, end):
            if group.start() > start and separator:
                self.say(separator, group.start() - 1, group.start())
            self.number(group.group(), group.start(), group.end())

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
        return self.kind(index) == "word" and is_capitalised(word) and (
            word.lower() in MONTH_NAMES or word.lower() in MONTH_ABBREVIATIONS)

    def is_period(self, index: int) -> bool:
        return self.kind(index) == "punct" and self.lexeme_text(index) == "."

    def take_period(self, word_index: int) -> int:
        """Consumes a period glued to an abbreviation; re-emits it if it also ends the sentence."""
        period = word_index + 1
        if self.lexemes[period].end >= self.content_end:
            self.punct(".", self.lexemes[period].start, self.lexemes[period].end)
        return period + 1


# Handlers take the reader, the lexeme's index and the lexeme; they return the next index.
Handler = Callable[[SentenceReader, int, Lexeme], int]
