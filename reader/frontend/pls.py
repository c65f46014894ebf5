"""W3C Pronunciation Lexicon Specification (PLS 1.0) files as user lexicons.

Each <lexeme> maps its <grapheme>s to a <phoneme> (in the lexicon's or the phoneme's `alphabet`:
ipa, x-sampa, or arpabet) or to an <alias> (read in its place). Parsed with defusedxml: no DTD,
entities or external resources. Case: a grapheme with capitals matches only that spelling ("US"
is not "us"); an all-lowercase grapheme matches the word however it is capitalised.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from ..errors import ReaderError
from .phonetic import to_arpabet
from .pronounce import LexiconEntry

MAX_PLS_CHARS = 20 * 1024 * 1024


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in element if _local(child.tag) == name]


def looks_like_pls(text: str) -> bool:
    return text.lstrip("\ufeff \t\r\n").startswith("<")


def parse_pls(text: str, source: str) -> dict[str, LexiconEntry]:
    """The entries of a PLS document (keys: graphemes as written, see the module's case rule).
    Raises ReaderError (one line naming `source`) for anything that is not a valid PLS lexicon."""
    if len(text) > MAX_PLS_CHARS:
        raise ReaderError(f"{source}: lexicon larger than {MAX_PLS_CHARS // (1024 * 1024)} MB")
    try:
        root = fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except ParseError as exc:
        line, column = exc.position
        raise ReaderError(f"{source}: not a PLS lexicon: XML error at line {line}, column {column + 1}") from None
    except DefusedXmlException:
        raise ReaderError(f"{source}: DTDs, entities and external references are not allowed in a PLS lexicon") from None
    if _local(root.tag) != "lexicon":
        raise ReaderError(f"{source}: not a PLS lexicon (its root element is <{_local(root.tag)}>, not <lexicon>)")
    alphabet = root.get("alphabet", "ipa")
    entries: dict[str, LexiconEntry] = {}
    for number, lexeme in enumerate(_children(root, "lexeme"), 1):
        graphemes = [" ".join((g.text or "").split()) for g in _children(lexeme, "grapheme")]
        graphemes = [g for g in graphemes if g]
        if not graphemes:
            raise ReaderError(f"{source}: lexeme {number} has no <grapheme>")
        phonemes = _children(lexeme, "phoneme")
        aliases = _children(lexeme, "alias")
        # PLS: the first pronunciation is the one to use, unless another says prefer="true".
        preferred = sorted(phonemes + aliases, key=lambda e: e.get("prefer") != "true")
        if not preferred:
            raise ReaderError(f"{source}: lexeme {number} ({graphemes[0]!r}) has no <phoneme> or <alias>")
        chosen = preferred[0]
        content = " ".join((chosen.text or "").split())
        if _local(chosen.tag) == "alias":
            if not content:
                raise ReaderError(f"{source}: lexeme {number} ({graphemes[0]!r}) has an empty <alias>")
            entry = LexiconEntry(respelling=content)
        else:
            try:
                entry = LexiconEntry(phonemes=to_arpabet(content, chosen.get("alphabet", alphabet)))
            except ValueError as exc:
                raise ReaderError(f"{source}: lexeme {number} ({graphemes[0]!r}): {exc}") from None
        for grapheme in graphemes:
            entries[grapheme] = entry
    return entries
