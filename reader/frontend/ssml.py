"""SSML input: a <speak> document becomes the Document the analyser reads, plus SsmlControls.

Parsed by defusedxml's expat reader (no DTD, no entities, no external resources), with a depth and
a size limit. The Document's text is the SSML source itself and its speakable copy blanks the tags,
so every word's offsets point at its text inside the source. <p> and <s> give the structure;
<sub>, <say-as> and <phoneme> replace what their text says (ssml_controls.SsmlControls.rewrite);
prosody, emphasis, breaks and marks are kept by offset for the analyser and the engine.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Iterator
from xml.sax import SAXParseException
from xml.sax.handler import ContentHandler
from xml.sax.xmlreader import InputSource

import numpy as np
from defusedxml import DefusedXmlException
from defusedxml.expatreader import DefusedExpatParser

from ..errors import ReaderError
from .document import Chapter, Document, Paragraph, SentenceSpan, SentenceSplitter, _has_speakable, _strip_span
from .normalize import Token, normalize_sentence
from .phonetic import to_arpabet
from .say_as import READINGS, CannotSay, Content, as_written, say_as
from .ssml_controls import BREAK_STRENGTHS, EMPHASIS, PLAIN, Break, Mark, SsmlControls, Voice
from .ssml_controls import parse_pitch, parse_rate, parse_time, parse_volume

logger = logging.getLogger(__name__)

MAX_SSML_CHARS = 20 * 1024 * 1024  # an SSML document is an article or a chapter, not a library
MAX_DEPTH = 100
# After whitespace, an XML declaration and comments: <speak, or a DTD (refused when parsed).
_SSML_START = re.compile(r"\s*(?:<\?xml[^>]{0,200}\?>\s*)?(?:<!--.{0,2000}?-->\s*)*(<speak[\s>/]|<!DOCTYPE\s)", re.S)
# Elements read as their text with no warning: the structure and controls SSML defines here.
KNOWN = frozenset("speak p s break prosody emphasis say-as sub phoneme w mark lang".split())
# <w role>: Polly's amazon:VB / amazon:VBD / amazon:NN / amazon:DT / amazon:IN / amazon:JJ, or a Penn tag.
ROLE_TAGS = frozenset("VB VBD VBN VBG VBP VBZ NN NNS NNP JJ RB DT IN".split())


def is_ssml(text: str) -> bool:
    """Whether `text` is SSML: after whitespace and an optional XML declaration it starts with <speak."""
    match = _SSML_START.match(text[:8000])
    return match is not None and (match[1].startswith("<speak") or "<speak" in text[: 1 << 20])


@dataclass
class SsmlParagraph(Paragraph):
    # (start, end, explicit): an <s> element's span, or a run of loose text the splitter segments.
    blocks: list[tuple[int, int, bool]] = field(default_factory=list)


@dataclass
class SsmlDocument(Document):
    controls: SsmlControls = field(default_factory=SsmlControls)

    def iter_sentences_of(self, paragraph: Paragraph) -> Iterator[SentenceSpan]:
        if paragraph.sentences is not None or not isinstance(paragraph, SsmlParagraph):
            yield from super().iter_sentences_of(paragraph)
            return
        found = []
        for start, end, explicit in paragraph.blocks:
            spans = [(start, end)] if explicit else self.splitter.split(self.speakable, start, end)
            for s, e in spans:
                s, e = _strip_span(self.speakable, s, e)
                if e > s and _has_speakable(self.speakable[s:e]):
                    found.append(SentenceSpan(s, e))
                    yield found[-1]
        paragraph.sentences = found


@dataclass
class _Frame:
    name: str
    position: int
    voice: Voice
    attrs: dict
    content: list[tuple[str, int]] | None = None  # (character, source offset) of a replaced element


class _Handler(ContentHandler):
    def __init__(self, text: str, xml: DefusedExpatParser) -> None:
        super().__init__()
        self.text = text
        self.xml = xml
        self.speakable = [" "] * len(text)
        self.controls = SsmlControls()
        self.stack: list[_Frame] = []
        self.paragraphs: list[SsmlParagraph] = []
        self.paragraph: SsmlParagraph | None = None
        self.block: list[int] | None = None  # [start, end] of the open block
        self.in_sentence = False
        self.warned: set[str] = set()
        self.entities: list[tuple[int, int, str]] = []  # (start, end, character) of references in text
        self._chars = None if text.isascii() else np.cumsum((np.frombuffer(text.encode("utf-8"), np.uint8) & 0xC0) != 0x80) - 1

    # -- positions and messages ------------------------------------------------------------

    def position(self) -> int:
        index = self.xml._parser.CurrentByteIndex
        return index if self._chars is None else int(self._chars[index])

    def where(self) -> str:
        return f"line {self.xml._parser.CurrentLineNumber}, column {self.xml._parser.CurrentColumnNumber + 1}"

    def fail(self, message: str) -> None:
        raise ReaderError(f"SSML {self.where()}: {message}")

    def warn_once(self, key: str, message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            logger.warning("reader: SSML: %s", message)

    # -- structure -------------------------------------------------------------------------

    def open_paragraph(self) -> SsmlParagraph:
        if self.paragraph is None:
            self.paragraph = SsmlParagraph(-1, -1)
        return self.paragraph

    def close_block(self) -> None:
        if self.block is not None:
            self.open_paragraph().blocks.append((self.block[0], self.block[1], self.in_sentence))
            self.block = None

    def close_paragraph(self) -> None:
        self.close_block()
        paragraph, self.paragraph = self.paragraph, None
        if paragraph is not None and paragraph.blocks:
            paragraph.start, paragraph.end = paragraph.blocks[0][0], paragraph.blocks[-1][1]
            self.paragraphs.append(paragraph)

    def add_text(self, start: int, end: int, speakable: str) -> None:
        self.speakable[start:end] = speakable
        if self.block is None:
            self.block = [start, end]
        self.block[1] = end
        voice = self.stack[-1].voice if self.stack else PLAIN
        if voice != PLAIN:
            self.controls.voices.append((start, end, voice))

    def join_entity_words(self) -> None:
        """A word with a reference inside ("don&apos;t", "caf&#233;") is read whole: the reference's
        blanks would cut it in two, so the word becomes a replacement read from its decoded text."""
        text, speakable = self.text, self.speakable
        taken = [(start, end) for start, end, _ in self.controls.replacements]
        decoded = {start: (end, char) for start, end, char in self.entities}
        for start, end, _ in self.entities:
            glued_left = start > 0 and not speakable[start - 1].isspace()
            glued_right = end < len(text) and not speakable[end].isspace()
            if not (glued_left or glued_right) or any(a <= start < b for a, b in taken):
                continue
            left = start
            while left > 0 and not speakable[left - 1].isspace():
                left -= 1
            chars: list[tuple[str, int]] = []
            position = left
            while position < len(text) and (position in decoded or not speakable[position].isspace()):
                if position in decoded:
                    chars.append((decoded[position][1], position))
                    position = decoded[position][0]
                else:
                    chars.append((speakable[position], position))
                    position += 1
            if any(a < position and left < b for a, b in taken):
                continue
            content = Content("".join(c for c, _ in chars), [p for _, p in chars])
            self.controls.replacements.append((left, position, tuple(as_written(content))))
            taken.append((left, position))
        self.controls.replacements.sort(key=lambda r: r[0])

    # -- SAX events ------------------------------------------------------------------------

    def startElement(self, name: str, attrs) -> None:
        if len(self.stack) >= MAX_DEPTH:
            self.fail(f"elements nested deeper than {MAX_DEPTH}")
        attrs = dict(attrs)
        position = self.position()
        voice = self.stack[-1].voice if self.stack else PLAIN
        if not self.stack and name != "speak":
            self.fail(f"the root element is <{name}>, not <speak>")
        lang = attrs.get("xml:lang")
        if lang and not lang.lower().startswith("en"):
            self.warn_once(f"lang:{lang}", f'xml:lang="{lang}": read with the English voice and pronunciation')
        if name not in KNOWN:
            self.warn_once(name, f"<{name}> is not supported; its text is read")
        elif name == "p":
            self.close_paragraph()
        elif name == "s":
            self.close_block()
            self.in_sentence = True
        elif name == "break":
            self.controls.events.append(self.parse_break(attrs, position))
        elif name == "mark":
            if not attrs.get("name", "").strip():
                self.fail("<mark> needs a name")
            self.controls.events.append(Mark(position, attrs["name"], position, self.tag_end(position)))
        elif name == "prosody":
            voice = voice * self.parse_prosody(attrs)
        elif name == "emphasis":
            level = attrs.get("level", "moderate")
            if level not in EMPHASIS:
                self.fail(f'emphasis level="{level}" is not strong, moderate, none or reduced')
            voice = voice * EMPHASIS[level]
        elif name == "say-as":
            interpret = attrs.get("interpret-as", "")
            if interpret == "expletive":
                voice = voice * Voice(bleep=True)
        elif name == "phoneme":
            if not attrs.get("ph", "").strip():
                self.fail("<phoneme> needs a ph attribute")
        elif name == "w":
            role = attrs.get("role", "").split(":")[-1]
            if role and role not in ROLE_TAGS:
                self.warn_once(f"role:{role}", f'<w role="{attrs["role"]}"> is not a known role ({", ".join(sorted(ROLE_TAGS))}); ignored')
        frame = _Frame(name, position, voice, attrs)
        if name in ("sub", "say-as", "phoneme"):
            frame.content = []
        self.stack.append(frame)

    def endElement(self, name: str) -> None:
        frame = self.stack.pop()
        if name == "p":
            self.close_paragraph()
        elif name == "s":
            self.close_block()
            self.in_sentence = False
        elif name == "w" and frame.attrs.get("role", "").split(":")[-1] in ROLE_TAGS:
            self.controls.roles.append((frame.position, self.position(), frame.attrs["role"].split(":")[-1]))
        elif frame.content is not None:
            self.replace(frame)
        if frame.content is not None and self.stack and self.stack[-1].content is not None:
            self.stack[-1].content += frame.content

    def characters(self, data: str) -> None:
        start = self.position()
        if self.text.startswith("&", start) and self.text[start : start + len(data)] != data:
            # An entity or character reference: its character stands at the "&", blanks after it.
            positions = [start] * len(data)
            speakable = (" " if data.isspace() else data[:1]) + " " * (self.text.find(";", start) - start)
            self.entities.append((start, start + len(speakable), data))
        else:
            found = self.feed_text(start, len(data) + 16).find(data)  # CDATA starts after "<![CDATA["
            start += max(found, 0)
            positions = range(start, start + len(data))
            speakable = "".join(" " if ch.isspace() else ch for ch in data)
        if self.stack and self.stack[-1].content is not None:
            self.stack[-1].content += [(" " if ch.isspace() else ch, p) for ch, p in zip(data, positions)]
        if _has_speakable(data) or self.block is not None:
            self.add_text(start, start + len(speakable), speakable)

    def feed_text(self, start: int, length: int) -> str:
        return self.text[start : start + length].replace("\r", " ")

    # -- elements ----------------------------------------------------------------------------

    def tag_end(self, position: int) -> int:
        end = self.text.find(">", position)
        return len(self.text) if end < 0 else end + 1

    def parse_break(self, attrs: dict, position: int) -> Break:
        strength = attrs.get("strength")
        if strength is not None and strength not in BREAK_STRENGTHS:
            self.fail(f'break strength="{strength}" is not one of {", ".join(BREAK_STRENGTHS)}')
        time = None
        if "time" in attrs:
            try:
                time = parse_time(attrs["time"])
            except ValueError as exc:
                self.fail(f"break {exc}")
        level, end_pause = BREAK_STRENGTHS[strength or ("medium" if time is None else "none")]
        return Break(position, level if strength is not None or time is None else None, time, end_pause)

    def parse_prosody(self, attrs: dict) -> Voice:
        try:
            return Voice(
                parse_rate(attrs["rate"]) if "rate" in attrs else 1.0,
                parse_pitch(attrs["pitch"]) if "pitch" in attrs else 1.0,
                parse_volume(attrs["volume"]) if "volume" in attrs else 1.0,
            )
        except ValueError as exc:
            self.fail(f"prosody {exc}")

    def replace(self, frame: _Frame) -> None:
        """Register what a <sub>, <say-as> or <phoneme> says instead of its text."""
        chars = frame.content
        while chars and chars[-1][0] == " ":
            chars.pop()
        while chars and chars[0][0] == " ":
            chars.pop(0)
        if not chars:
            if frame.name == "say-as":
                return
            # Nothing inside: the alias or phonemes stand at the tag, which gets a letter to be a word.
            chars = [("x", frame.position)]
            self.add_text(frame.position, frame.position + 1, "x")
        content = Content("".join(ch for ch, _ in chars), [p for _, p in chars])
        start, end = content.span
        if frame.name == "sub":
            tokens = [Token(t.text, start, end, t.is_punct) for t in normalize_sentence(frame.attrs.get("alias", ""))]
        elif frame.name == "phoneme":
            try:
                phonemes = to_arpabet(frame.attrs["ph"], frame.attrs.get("alphabet", "ipa"))
            except ValueError as exc:
                self.fail(f'<phoneme ph="{frame.attrs["ph"]}">: {exc}')
            tokens = [Token(" ".join(content.text.split()), start, end, False)]
            self.controls.phonemes[(start, end)] = phonemes
        else:
            tokens = self.say_as(frame, content)
        # An element inside a replaced one is said by the outer one only.
        while self.controls.replacements and self.controls.replacements[-1][0] >= start:
            self.controls.replacements.pop()
        self.controls.replacements.append((start, end, tuple(tokens)))

    def say_as(self, frame: _Frame, content: Content) -> list[Token]:
        interpret = frame.attrs.get("interpret-as", "")
        if interpret not in READINGS:
            self.warn_once(f"say-as:{interpret}", f'say-as interpret-as="{interpret}" is not supported; read as written')
            return as_written(content)
        try:
            return say_as(content, interpret, frame.attrs.get("format"))
        except CannotSay as exc:
            logger.warning("reader: SSML %s: say-as %s %r: %s; read as written", self.where(), interpret, content.text[:40], exc)
            return as_written(content)


def parse_ssml(text: str, splitter: SentenceSplitter | None = None) -> SsmlDocument:
    """The Document of an SSML text (see is_ssml). Raises ReaderError with the line and column of
    malformed or unsafe SSML (DTDs, entities, external references, nesting deeper than MAX_DEPTH)."""
    if len(text) > MAX_SSML_CHARS:
        raise ReaderError(f"SSML input is larger than {MAX_SSML_CHARS // (1024 * 1024)} MB; split it into parts")
    xml = DefusedExpatParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    handler = _Handler(text, xml)
    xml.setContentHandler(handler)
    xml.setFeature("http://xml.org/sax/features/external-general-entities", False)
    source = InputSource()
    source.setEncoding("utf-8")
    xml.prepareParser(source)
    try:
        xml.feed(text.replace("\r", " ").encode("utf-8"))
        xml.close()
    except SAXParseException as exc:
        raise ReaderError(f"SSML line {exc.getLineNumber()}, column {exc.getColumnNumber() + 1}: {exc.getMessage()}") from None
    except DefusedXmlException:
        raise ReaderError(f"SSML {handler.where()}: DTDs, entity declarations and external references are not allowed") from None
    except RecursionError:
        raise ReaderError(f"SSML {handler.where()}: elements nested too deeply") from None
    handler.close_paragraph()
    handler.join_entity_words()
    controls = handler.controls
    controls.freeze()
    speakable = "".join(handler.speakable)
    chapters = [Chapter(None, handler.paragraphs[0].start, handler.paragraphs[-1].end, list(handler.paragraphs))] if handler.paragraphs else []
    return SsmlDocument(text=text, speakable=speakable, chapters=chapters, splitter=splitter or SentenceSplitter(), controls=controls)
