"""Audio files: the formats a chapter can be written in, and writers that leave no partial file behind."""

from __future__ import annotations

import contextlib
import errno
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.files import AtomicFile

from ..errors import ReaderError


@dataclass(frozen=True)
class AudioFormat:
    name: str
    extension: str
    soundfile: tuple[str, str] | None  # (format, subtype) for libsndfile
    ffmpeg: tuple[str, ...]  # encoder arguments and muxer, when libsndfile cannot write it
    lossless: bool


FORMATS = {
    "flac": AudioFormat("flac", ".flac", ("FLAC", "PCM_16"), ("-c:a", "flac", "-f", "flac"), True),
    "wav": AudioFormat("wav", ".wav", ("WAV", "PCM_16"), ("-c:a", "pcm_s16le", "-f", "wav"), True),
    "ogg": AudioFormat("ogg", ".ogg", ("OGG", "VORBIS"), ("-c:a", "libvorbis", "-f", "ogg"), False),
    "mp3": AudioFormat("mp3", ".mp3", ("MP3", "MPEG_LAYER_III"), ("-c:a", "libmp3lame", "-q:a", "4", "-f", "mp3"), False),
    # libsndfile's Opus encoder takes 8-48 kHz rates only, not the voices' 22,050 Hz: ffmpeg resamples.
    "opus": AudioFormat("opus", ".opus", None, ("-c:a", "libopus", "-b:a", "32k", "-ar", "48000", "-f", "ogg"), False),
}


def ffmpeg_path() -> str | None:
    return shutil.which("ffmpeg")


def uses_soundfile(fmt: AudioFormat) -> bool:
    import soundfile

    return fmt.soundfile is not None and soundfile.check_format(*fmt.soundfile)


def check_format(name: str) -> AudioFormat:
    """The format, if libsndfile or ffmpeg on PATH can write it; else a ReaderError that says what to install."""
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ReaderError(f"unknown audio format {name!r}: use one of {', '.join(FORMATS)}")
    if not uses_soundfile(fmt) and ffmpeg_path() is None:
        raise ReaderError(f"writing {name} needs ffmpeg (not found on PATH); install it or use --format flac")
    return fmt


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with AtomicFile(path) as partial:
        partial.write_bytes(data)


class AudioWriter:
    """Writes 16-bit mono audio into `path` with libsndfile or, for what it cannot write, an ffmpeg pipe."""

    def __init__(self, path: Path, fmt: AudioFormat, sample_rate: int) -> None:
        self.path = path
        if uses_soundfile(fmt):
            import soundfile

            self._file = soundfile.SoundFile(path, "w", sample_rate, 1, fmt.soundfile[1], format=fmt.soundfile[0])
            self._ffmpeg = None
        else:
            command = [ffmpeg_path() or "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "s16le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0"]
            self._ffmpeg = subprocess.Popen([*command, *fmt.ffmpeg, str(path)], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
            self._file = None

    def write(self, samples: np.ndarray) -> None:
        if self._file is not None:
            self._file.write(samples)
        else:
            self._ffmpeg.stdin.write(samples.astype("<i2").tobytes())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            return
        self._ffmpeg.stdin.close()
        error = self._ffmpeg.stderr.read().decode(errors="replace").strip()
        if self._ffmpeg.wait() != 0:
            raise OSError(errno.ENOSPC if "No space left" in error else errno.EIO, (error.splitlines() or ["ffmpeg failed"])[-1])

    def abort(self) -> None:
        if self._ffmpeg is not None:
            self._ffmpeg.kill()
            self._ffmpeg.wait()
        else:
            with contextlib.suppress(Exception):  # the partial file is deleted either way
                self._file.close()


def write_audio(path: Path, fmt: AudioFormat, sample_rate: int, pieces: Iterator[np.ndarray]) -> None:
    """Write int16 pieces as one file, under a temporary name until complete."""
    with AtomicFile(path) as partial:
        writer = AudioWriter(partial, fmt, sample_rate)
        try:
            for samples in pieces:
                writer.write(samples)
        except BaseException:
            writer.abort()
            raise
        writer.close()
