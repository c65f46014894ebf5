"""The Readers a service reads with: one per (voice, vocoder), made on first use and then shared by
every request for it (a Reader is safe for many concurrent streams)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Callable

from ..engine import Reader

ReaderFactory = Callable[[str, str], Reader]  # (voice, vocoder kind) -> a Reader


def reader_supports_vocoder_choice() -> bool:
    """Whether Reader takes `vocoder="fast"|"studio"`; without it tts-1 and tts-1-hd share one Reader."""
    return "vocoder" in inspect.signature(Reader).parameters


def default_factory(threads: int = 1, models=None) -> ReaderFactory:
    """Readers over the shipped models with `threads` onnxruntime threads per model (1: many streams
    share few cores; more threads per call would only oversubscribe them)."""

    def make(voice: str, vocoder: str) -> Reader:
        extra = {"vocoder": vocoder} if reader_supports_vocoder_choice() else {}
        return Reader(voice=voice, threads=threads, models=models, **extra)

    return make


class ReaderPool:
    """Readers by voice and vocoder. `source`: a factory, or one Reader that serves its own voice only."""

    def __init__(self, source: ReaderFactory | Reader, default_voice: str | None = None) -> None:
        self._readers: dict[tuple[str, str], Reader] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.vocoder_choice = reader_supports_vocoder_choice()
        if isinstance(source, Reader):
            self._factory = None
            self._voices = [source.speaker.name]
            self._readers[(source.speaker.name, "fast")] = source
        else:
            from ..engine import list_voices

            self._factory = source
            self._voices = [v.name for v in list_voices()]
        self.default_voice = self.voice(default_voice) if default_voice else next((v for v in self._voices if v.lower() == "lj"), self._voices[0])

    def voices(self) -> list[str]:
        return list(self._voices)

    def voice(self, name: str) -> str | None:
        """The voice's own spelling for `name` (matched without regard to case), or None."""
        return next((v for v in self._voices if v.lower() == name.lower()), None)

    async def get(self, voice: str, vocoder: str = "fast") -> Reader:
        key = (voice, vocoder if self.vocoder_choice else "fast")
        if self._factory is None:
            key = next(iter(self._readers))
        if key in self._readers:
            return self._readers[key]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._readers:
                self._readers[key] = await asyncio.to_thread(self._factory, *key)
        return self._readers[key]

    def loaded(self) -> list[tuple[str, str]]:
        return list(self._readers)
