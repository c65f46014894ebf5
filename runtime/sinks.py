"""Where audio goes: the sound card, a WAV/FLAC file, or raw 16-bit PCM on a byte stream.

Every sink is used as `with sink: sink.write(samples)...`; leaving the block with an exception
(Ctrl-C, a full disk) cancels it: playback stops at once and a file sink deletes its partial file,
so no half-written file ever carries the final name.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np


class AudioSinkError(Exception):
    """The sink cannot be opened or written (no audio device, unwritable path, full disk)."""


class AudioSink:
    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    def write(self, samples: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish normally (flush, drain playback, publish the file)."""

    def cancel(self) -> None:
        """Stop at once and discard what is unfinished."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.cancel()
        return False


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")


class RawPCMSink(AudioSink):
    """Signed 16-bit little-endian mono PCM on a byte stream (stdout for piping into other programs)."""

    def __init__(self, sample_rate: int, stream: BinaryIO | None = None) -> None:
        super().__init__(sample_rate)
        self.stream = stream if stream is not None else sys.stdout.buffer

    def write(self, samples: np.ndarray) -> None:
        self.stream.write(to_pcm16(samples).tobytes())

    def close(self) -> None:
        self.stream.flush()


FILE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16")}


class FileSink(AudioSink):
    """A WAV or FLAC file, written under a temporary name beside the target and renamed when complete."""

    def __init__(self, sample_rate: int, path: str | os.PathLike) -> None:
        super().__init__(sample_rate)
        import soundfile

        self.path = Path(path)
        fmt = FILE_FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise AudioSinkError(f"cannot write {self.path.name}: use a .wav or .flac file name")
        folder = self.path.parent if str(self.path.parent) else Path(".")
        if not folder.is_dir():
            raise AudioSinkError(f"cannot write {self.path}: folder {folder} does not exist")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=folder)
            os.close(fd)
        except OSError as exc:
            raise AudioSinkError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._tmp = Path(tmp)
        try:
            self._file = soundfile.SoundFile(tmp, "w", samplerate=sample_rate, channels=1, format=fmt[0], subtype=fmt[1])
        except BaseException as exc:  # a Ctrl-C here must not leave the temporary file behind either
            self._tmp.unlink(missing_ok=True)
            if isinstance(exc, Exception):  # soundfile raises its own error type
                raise AudioSinkError(f"cannot write {self.path}: {exc}") from None
            raise

    def write(self, samples: np.ndarray) -> None:
        try:
            self._file.write(np.asarray(samples, np.float32))
        except Exception as exc:  # a full disk surfaces as a soundfile or OS error
            raise AudioSinkError(f"writing {self.path} failed: {exc}") from None

    def close(self) -> None:
        try:
            self._file.close()
            # mkstemp makes the file private (0600); the finished file gets the user's usual permissions.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self._tmp, 0o666 & ~umask)
            os.replace(self._tmp, self.path)
        except Exception as exc:
            self._tmp.unlink(missing_ok=True)
            raise AudioSinkError(f"writing {self.path} failed: {exc}") from None

    def cancel(self) -> None:
        try:
            self._file.close()
        except Exception:
            pass  # the partial file is deleted either way
        self._tmp.unlink(missing_ok=True)


class SoundDeviceSink(AudioSink):
    """The default output device through PortAudio (sounddevice); blocking writes pace the stream."""

    def __init__(self, sample_rate: int, device: int | str | None = None) -> None:
        super().__init__(sample_rate)
        try:
            import sounddevice
        except OSError:
            raise AudioSinkError("PortAudio is not installed (Debian: apt-get install libportaudio2); use --output FILE") from None
        try:
            sounddevice.query_devices(device, kind="output")
            self._stream = sounddevice.OutputStream(samplerate=sample_rate, channels=1, dtype="float32", device=device)
            self._stream.start()
        except Exception:  # PortAudioError or ValueError for a missing device
            raise AudioSinkError("no audio output device found; write to a file instead with --output FILE.wav") from None

    # Writes block until the device takes the audio; short blocks keep Ctrl-C responsive (< 50 ms).
    BLOCK = 1024

    def write(self, samples: np.ndarray) -> None:
        samples = np.ascontiguousarray(samples, np.float32).reshape(-1, 1)
        for start in range(0, len(samples), self.BLOCK):
            self._stream.write(samples[start : start + self.BLOCK])

    def close(self) -> None:
        self._stream.stop()  # waits until the buffered audio has played
        self._stream.close()

    def cancel(self) -> None:
        self._stream.abort()  # drops buffered audio: stops within one device buffer
        self._stream.close()
