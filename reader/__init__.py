"""reader: a streaming long-form reading engine (text-to-speech for articles and books).

The Python API: `from reader import Reader` (see reader.engine.Reader).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = [
    "Analyzer", "Audio", "AudioChunk", "Document", "MarkTiming", "ModelError", "Reader", "ReaderError", "SentenceTiming", "VoiceInfo", "WordTiming",
    "check_output", "list_voices", "read_document", "require_speakable",
    "DEFAULT_PROSODY", "DEFAULT_TRANSFER_MODE", "DEFAULT_VOCODER", "PROSODY_MODES", "PROSODY_SELECTORS", "TRANSFER_MODES", "VOCODERS",
]  # fmt: skip

if TYPE_CHECKING:
    from .engine import Audio, AudioChunk, MarkTiming, Reader, SentenceTiming, VoiceInfo, WordTiming, list_voices
    from .errors import ModelError, ReaderError
    from .frontend.analysis import Analyzer
    from .frontend.document import Document, read_document, require_speakable
    from .io.sinks import check_output

# Where each public name lives. Imported on first use, so `import reader` (the command line's
# start-up) does not load numpy, onnxruntime and spaCy.
_EXPORTS = {
    "Audio": "engine", "AudioChunk": "engine", "MarkTiming": "engine", "Reader": "engine", "SentenceTiming": "engine", "WordTiming": "engine",
    "VoiceInfo": "engine", "list_voices": "engine", "Analyzer": "frontend.analysis",
    "Document": "frontend.document", "read_document": "frontend.document", "require_speakable": "frontend.document",
    "ModelError": "errors", "ReaderError": "errors", "check_output": "io.sinks",
    # the settings' choices, for front doors that list them
    "PROSODY_MODES": "prosody_prediction", "DEFAULT_PROSODY": "prosody_prediction", "PROSODY_SELECTORS": "prosody_selection",
    "TRANSFER_MODES": "transfer", "DEFAULT_TRANSFER_MODE": "transfer", "VOCODERS": "vocoders", "DEFAULT_VOCODER": "vocoders",
}  # fmt: skip
# Public names that are another name in their module.
_RENAMED = {"PROSODY_SELECTORS": "SELECTORS", "TRANSFER_MODES": "MODES", "DEFAULT_TRANSFER_MODE": "DEFAULT_MODE"}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'reader' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_EXPORTS[name]}", __name__), _RENAMED.get(name, name))
