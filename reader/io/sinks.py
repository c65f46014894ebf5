"""Where audio goes: the sound card, a WAV/FLAC file, or raw 16-bit PCM on a byte stream.

Every sink is used as `with sink: sink.write(samples)...`; leaving the block with an exception
(Ctrl-C, a full disk) cancels it: playback stops at once and a file sink deletes its partial file,
so no half-written file ever carries the final name.

Files are written through reader.io.files.AtomicFile.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import OutputError
from .files import AtomicFile, write_failure

__all__ = ["AudioSink", "FileSink", "RawPCMSink", "SoundDeviceSink", "check_file_target", "check_output", "check_sound_device", "open_sink", "to_pcm16"]


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
        try:
            self.stream.write(to_pcm16(samples).tobytes())
        except BrokenPipeError:
            raise  # the reader went away: the command line ends quietly
        except OSError as exc:
            raise write_failure("standard output", exc) from None

    def close(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise write_failure("standard output", exc) from None


FILE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16")}


def check_file_target(path: str | os.PathLike) -> Path:
    """`path` if a FileSink can write it (a .wav or .flac name in an existing folder), else OutputError.
    Cheap, so callers check before loading models."""
    path = Path(path)
    if path.suffix.lower() not in FILE_FORMATS:
        raise OutputError(f"cannot write {path.name}: use a .wav or .flac file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"cannot write {path}: folder {folder} does not exist")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    return path


class FileSink(AudioSink):
    """A WAV or FLAC file, written through an AtomicFile."""

    def __init__(self, sample_rate: int, path: str | os.PathLike) -> None:
        super().__init__(sample_rate)
        import soundfile

        self.path = check_file_target(path)
        fmt = FILE_FORMATS[self.path.suffix.lower()]
        self._atomic = AtomicFile(self.path)
        try:
            self._file = soundfile.SoundFile(self._atomic.partial, "w", samplerate=sample_rate, channels=1, format=fmt[0], subtype=fmt[1])
        except BaseException as exc:  # a Ctrl-C here must not leave the temporary file behind either
            self._atomic.discard()
            if isinstance(exc, Exception):  # soundfile raises its own error type
                raise write_failure(self.path, exc) from None
            raise

    def write(self, samples: np.ndarray) -> None:
        try:
            self._file.write(np.asarray(samples, np.float32))
        except Exception as exc:  # a full disk surfaces as a soundfile or OS error
            raise write_failure(self.path, exc) from None

    def close(self) -> None:
        try:
            self._file.close()
        except Exception as exc:
            self._atomic.discard()
            raise write_failure(self.path, exc) from None
        self._atomic.commit()

    def cancel(self) -> None:
        try:
            self._file.close()
        except Exception:
            pass  # the partial file is deleted either way
        self._atomic.discard()


NO_DEVICE = "no audio output device found; write to a file instead with --output FILE.wav"


def check_sound_device(device: int | str | None = None):
    """The sounddevice module if PortAudio and an output device are there, else OutputError.
    Cheap, so callers check before loading models."""
    try:
        import sounddevice
    except OSError:
        raise OutputError("PortAudio is not installed (Debian: apt-get install libportaudio2); use --output FILE") from None
    try:
        sounddevice.query_devices(device, kind="output")
    except Exception:  # PortAudioError or ValueError for a missing device
        raise OutputError(NO_DEVICE) from None
    return sounddevice


class SoundDeviceSink(AudioSink):
    """The default output device through PortAudio (sounddevice); blocking writes pace the stream."""

    def __init__(self, sample_rate: int, device: int | str | None = None) -> None:
        super().__init__(sample_rate)
        sounddevice = check_sound_device(device)
        try:
            self._stream = sounddevice.OutputStream(samplerate=sample_rate, channels=1, dtype="float32", device=device)
            self._stream.start()
        except Exception:  # PortAudioError: the device cannot be opened
            raise OutputError(NO_DEVICE) from None

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


def open_sink(output: str | os.PathLike | None, sample_rate: int) -> AudioSink:
    """The sink for an output name: None plays on the sound card, "-" writes raw PCM to standard
    output, anything else is a .wav or .flac file."""
    if output is None:
        return SoundDeviceSink(sample_rate)
    if output == "-":
        return RawPCMSink(sample_rate)
    return FileSink(sample_rate, output)


def check_output(output: str | os.PathLike | None) -> None:
    """Output errors that need no model (a missing folder, no sound card), cheap enough to check
    before the models load."""
    if output is None:
        check_sound_device()
    elif output != "-":
        check_file_target(output)
