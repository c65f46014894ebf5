"""Writing files safely: under a temporary name, renamed into place when complete, with one-line errors.

Every part of the reader that writes a file (audio sinks, the audiobook, the front end's caches) uses
AtomicFile, so an interruption or a full disk never leaves a half-written file under the final name.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import DiskFullError, OutputError

__all__ = ["AtomicFile", "remove_stale_parts", "sha256_file", "write_failure"]

# Below this much free space a failed write counts as a full disk: libsndfile reports ENOSPC as
# "System error." without the OS error.
FULL_DISK_BYTES = 1 << 20


def write_failure(target: str | os.PathLike, exc: BaseException) -> OutputError:
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
        return OutputError(f"cannot write {target}: {os.strerror(code)}")
    detail = (exc.strerror if isinstance(exc, OSError) else None) or (str(exc).splitlines() or [type(exc).__name__])[0]
    return OutputError(f"writing {target} failed: {detail}")


class AtomicFile:
    """A file written under a temporary name beside `path` (`.NAME.XXXXXXXX.part`) and renamed to
    `path` only when complete, so no half-written file ever carries the final name.

    `with AtomicFile(path) as partial:` renames on success and deletes the part on any exception (a
    failed write becomes a one-line OutputError); FileSink calls commit() / discard() itself.
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


def sha256_file(path: str | os.PathLike) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
