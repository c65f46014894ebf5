"""Where audio goes: the sound card, a WAV/FLAC file, or raw 16-bit PCM on a byte stream.

Every sink is used as `with sink: sink.write(samples)...`; leaving the block with an exception
(Ctrl-C, a full disk) cancels it: playback stops at once and a file sink deletes its partial file,
so no half-written file ever carries the final name.

Files are written through AtomicFile, which the audiobook writer shares.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import AudioSinkError, DiskFullError

__all__ = ["AtomicFile", "AudioSinkError", "DiskFullError", "FileSink", "RawPCMSink", "SoundDeviceSink", "check_file_target", "check_sound_device"]

# Below this much free space a failed write counts as a full disk: libsndfile reports ENOSPC as
# "System error." without the OS error.
FULL_DISK_BYTES = 1 << 20


def write_failure(target: str | os.PathLike, exc: BaseException) -> AudioSinkError:
    """The one-line error for a failed write to `target` (a path, or a name such as "standard output")."""
    code = exc.errno if isinstance(exc, OSError) else None
    full = code == errno.ENOSPC
    if not full and code is None and isinstance(target, Path):
        try:
            full = shutil.disk_usage(target.parent if str(target.parent) else ".").free < FULL_DISK_BYTES
        except OSError:
            pass
    if full:
        return DiskFullError(f"the disk is full while writing {target}")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return AudioSinkError(f"cannot write {target}: {os.strerror(code)}")
    detail = (exc.strerror if isinstance(exc, OSError) else None) or (str(exc).splitlines() or [type(exc).__name__])[0]
    return AudioSinkError(f"writing {target} failed: {detail}")


class AtomicFile:
    """A file written under a temporary name beside `path` (`.NAME.XXXXXXXX.part`) and renamed to
    `path` only when complete, so no half-written file ever carries the final name.

    `with AtomicFile(path) as partial:` renames on success and deletes the part on any exception (a
    failed write becomes a one-line AudioSinkError); FileSink calls commit() / discard() itself.
    The writer holds an advisory lock on its part while it lives; parts of the same target that nobody
    holds (left by a killed process) are deleted when the next writer of that target starts.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        folder = self.path.parent if str(self.path.parent) else Path(".")
        # Before this writer's own part exists: whoever sees it can count on the stale ones being gone.
        remove_stale_parts(self.path)
        try:
            fd, partial = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=folder)
        except OSError as exc:
            raise write_failure(self.path, exc) from None
        self.partial = Path(partial)
        self._fd: int | None = fd
        fcntl.flock(fd, fcntl.LOCK_EX)

    def commit(self) -> None:
        """Give the part the user's usual permissions (mkstemp makes it private) and rename it to `path`."""
        umask = os.umask(0)
        os.umask(umask)
        try:
            os.chmod(self.partial, 0o666 & ~umask)
            os.replace(self.partial, self.path)
        except OSError as exc:
            self.discard()
            raise write_failure(self.path, exc) from None
        self._release()

    def discard(self) -> None:
        self.partial.unlink(missing_ok=True)
        self._release()

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Path:
        return self.partial

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.commit()
            return False
        self.discard()
        if isinstance(exc, (OSError, RuntimeError)):  # soundfile raises RuntimeError subclasses
            raise write_failure(self.path, exc) from None
        return False


def remove_stale_parts(path: Path) -> None:
    """Delete `path`'s parts that no live writer holds a lock on (left by a killed render)."""
    folder = path.parent if str(path.parent) else Path(".")
    for name in glob.glob(f".{glob.escape(path.name)}.*.part", root_dir=folder):
        part = folder / name
        try:
            fd = os.open(part, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            part.unlink(missing_ok=True)
        except OSError:
            pass  # another writer is still at work on it
        finally:
            os.close(fd)


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
    """`path` if a FileSink can write it (a .wav or .flac name in an existing folder), else AudioSinkError.
    Cheap, so callers check before loading models."""
    path = Path(path)
    if path.suffix.lower() not in FILE_FORMATS:
        raise AudioSinkError(f"cannot write {path.name}: use a .wav or .flac file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise AudioSinkError(f"cannot write {path}: folder {folder} does not exist")
    if path.is_dir():
        raise AudioSinkError(f"cannot write {path}: it is a folder")
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
    """The sounddevice module if PortAudio and an output device are there, else AudioSinkError.
    Cheap, so callers check before loading models."""
    try:
        import sounddevice
    except OSError:
        raise AudioSinkError("PortAudio is not installed (Debian: apt-get install libportaudio2); use --output FILE") from None
    try:
        sounddevice.query_devices(device, kind="output")
    except Exception:  # PortAudioError or ValueError for a missing device
        raise AudioSinkError(NO_DEVICE) from None
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
            raise AudioSinkError(NO_DEVICE) from None

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
