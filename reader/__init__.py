"""reader: a streaming long-form reading engine (text-to-speech for articles and books).

The Python API: `from reader import Reader` (see reader.engine.Reader).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Audio", "AudioChunk", "Document", "ModelError", "Reader", "ReaderError", "SentenceTiming", "WordTiming"]

if TYPE_CHECKING:
    from .frontend.document import Document
    from .engine import Audio, AudioChunk, Reader, SentenceTiming, WordTiming
    from .errors import ModelError, ReaderError

# Where each public name lives. Imported on first use, so `import reader` (the command line's
# start-up) does not load numpy, onnxruntime and spaCy.
_EXPORTS = {
    "Audio": "engine", "AudioChunk": "engine", "Reader": "engine", "SentenceTiming": "engine", "WordTiming": "engine",
    "Document": "frontend.document", "ModelError": "errors", "ReaderError": "errors",
}  # fmt: skip


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'reader' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
