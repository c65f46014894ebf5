"""EPUB books: chapters in spine order, XHTML turned into the Markdown-like text the front end reads.

Each spine document (in reading order, non-linear ones such as pop-up notes left out) is one
chapter. Its title comes from the table of contents (NCX or EPUB 3 nav), else from its first
heading. Headings become `#` lines, so the front end gives them heading prosody; other block
elements become paragraphs. Scripts, styles, ruby annotations and the nav document are not read.
Encrypted content (DRM), files that are not EPUBs and damaged ones give a one-line ReaderError in
plain words.
"""

from __future__ import annotations

import posixpath
import warnings
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree

from ..errors import ReaderError

# Font obfuscation (IDPF and Adobe) scrambles embedded fonts only; any other encryption is DRM.
FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
XMLENC = "{http://www.w3.org/2001/04/xmlenc#}"

_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = {
    "p", "div", "section", "article", "aside", "blockquote", "li", "dd", "dt", "pre", "tr", "td", "th",
    "table", "ul", "ol", "dl", "figure", "figcaption", "header", "footer", "hr", "br", "body", *_HEADINGS,
}  # fmt: skip
_NOT_READ = {"script", "style", "head", "title", "svg", "math", "rt", "rp", "template", "noscript"}


@dataclass(frozen=True)
class EpubChapter:
    title: str | None
    text: str  # Markdown-like: `#` headings, blank lines between paragraphs


@dataclass(frozen=True)
class EpubBook:
    title: str | None
    chapters: list[EpubChapter]


class _TextExtractor(HTMLParser):
    """Block-level text of one XHTML document: paragraphs, and headings as `#` lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.first_heading: str | None = None
        self._words: list[str] = []
        self._heading_level = 0
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _NOT_READ:
            self._skip_depth += 1
        elif tag in _BLOCKS:
            self._flush()
            self._heading_level = _HEADINGS.get(tag, 0)

    def handle_startendtag(self, tag: str, attrs) -> None:
        if tag in _BLOCKS:  # <br/>, <hr/>
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _NOT_READ:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self._words.extend(data.split())

    def close(self) -> None:
        super().close()
        self._flush()

    def _flush(self) -> None:
        text = " ".join(self._words)
        self._words = []
        if not any(ch.isalnum() for ch in text):
            return
        if self._heading_level:
            self.first_heading = self.first_heading or text
            text = "#" * self._heading_level + " " + text
            self._heading_level = 0
        self.blocks.append(text)


def html_to_text(markup: str) -> tuple[str, str | None]:
    """(Markdown-like text, first heading) of one XHTML document."""
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return "\n\n".join(extractor.blocks), extractor.first_heading


CONTAINER = "META-INF/container.xml"
OCF = "{urn:oasis:names:tc:opendocument:xmlns:container}"


def _check_container(path: Path) -> None:
    """Refuse, in plain words, what ebooklib would fail on with its internals: not a ZIP, no container,
    no package document (OPF) or a malformed one; and refuse DRM (rights.xml is Adobe ADEPT's licence)."""

    def broken(reason: str) -> ReaderError:
        return ReaderError(f"{path} is not a readable EPUB: {reason}")

    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise broken("it is not a ZIP archive, or the archive is damaged (an incomplete download?)") from None
    with archive:
        names = set(archive.namelist())
        if "META-INF/rights.xml" in names:
            raise ReaderError(f"{path} is DRM-protected (Adobe ADEPT); only DRM-free EPUBs can be read")
        if CONTAINER not in names:
            raise broken(f"it has no {CONTAINER}")
        try:
            rootfile = ElementTree.fromstring(archive.read(CONTAINER)).find(f".//{OCF}rootfile")
        except ElementTree.ParseError:
            raise broken(f"its {CONTAINER} is not well-formed XML") from None
        package = rootfile.get("full-path") if rootfile is not None else None
        if not package:
            raise broken(f"its {CONTAINER} names no package document")
        if package not in names:
            raise broken(f"its package document {package} is missing")
        try:
            ElementTree.fromstring(archive.read(package))
        except ElementTree.ParseError:
            raise broken(f"its package document {package} is not well-formed XML") from None
        encryption = ElementTree.fromstring(archive.read("META-INF/encryption.xml")) if "META-INF/encryption.xml" in names else None
    for data in encryption.iter(f"{XMLENC}EncryptedData") if encryption is not None else ():
        method = data.find(f"{XMLENC}EncryptionMethod")
        if method is None or method.get("Algorithm") not in FONT_OBFUSCATION:
            raise ReaderError(f"{path} is DRM-protected (encrypted content); only DRM-free EPUBs can be read")


def _toc_titles(toc, titles: dict[str, str]) -> dict[str, str]:
    """File name -> the first table-of-contents title that points into it (nested sections included)."""
    from ebooklib import epub

    for entry in toc:
        if isinstance(entry, tuple):  # (Section or Link, children)
            head, children = entry
            _toc_titles([head, *children], titles)
        elif isinstance(entry, (epub.Link, epub.Section)) and getattr(entry, "href", None) and entry.title:
            titles.setdefault(unquote(entry.href.split("#", 1)[0]), " ".join(entry.title.split()))
    return titles


def read_epub(path: str | Path) -> EpubBook:
    """The readable chapters of an EPUB, in spine order; unreadable, corrupt or DRM files raise ReaderError."""
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"no such file: {path}")
    from ebooklib import epub

    try:
        _check_container(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ebooklib warns about its own option defaults
            book = epub.read_epub(str(path), options={"ignore_ncx": False})
    except ReaderError:
        raise
    except PermissionError:
        raise ReaderError(f"cannot read {path}: permission denied") from None
    except KeyError as exc:  # zipfile: a file the package lists is not in the archive
        raise ReaderError(f"{path} is not a readable EPUB: {exc.args[0] if exc.args else 'a file it lists is missing'}") from None
    except (AttributeError, TypeError, IndexError):  # ebooklib's own code tripping over a malformed package
        raise ReaderError(f"{path} is not a readable EPUB: its package document is malformed (no metadata, manifest or spine)") from None
    except Exception as exc:  # zipfile, lxml and ebooklib each raise their own types for a damaged file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ReaderError(f"{path} is not a readable EPUB ({reason})") from None

    # TOC hrefs are relative to the OPF's folder, item names too (ebooklib strips that folder).
    titles = _toc_titles(book.toc, {})
    chapters = []
    for idref, linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or isinstance(item, epub.EpubNav) or str(linear).lower() == "no":
            continue
        if item.media_type not in ("application/xhtml+xml", "text/html"):
            continue
        try:
            markup = item.get_content().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ReaderError(f"{path}: {item.get_name()} is not valid UTF-8") from None
        text, heading = html_to_text(markup)
        if text:
            name = posixpath.normpath(item.get_name())
            chapters.append(EpubChapter(titles.get(name) or heading, text))
    if not chapters:
        raise ReaderError(f"{path} has no readable text")
    metadata = book.get_metadata("DC", "title")
    return EpubBook(" ".join(metadata[0][0].split()) if metadata and metadata[0][0] else None, chapters)


def is_epub(path: str) -> bool:
    if path == "-":
        return False
    if path.lower().endswith(".epub"):
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(58)[30:58] == b"mimetypeapplication/epub+zip"  # the OCF container's first entry
    except OSError:
        return False  # read_input gives the proper message
