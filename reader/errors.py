"""User-facing errors: one hierarchy, each a single line that names the offending file or input.

    ReaderError        exit 2  a bad option or input (missing file, binary file, nothing speakable)
    ├── OutputError    exit 2  the output cannot be written (missing folder, no permission, full disk)
    └── ModelError     exit 3  a model file is missing, truncated, corrupt or of another version

The runtime (which knows nothing of reader) raises its own errors; `as_reader_error` is the one
place that turns them into these, for the Python API and the command line alike.
"""

from __future__ import annotations


class ReaderError(Exception):
    """An error the user can act on (bad input, missing model, unwritable path).

    The message must be a single line that names the offending file or input.
    """

    exit_code = 2


class OutputError(ReaderError):
    """The output cannot be written: a missing folder, no permission, no audio device, a full disk."""


class DiskFullError(OutputError):
    """The disk (or device) filled up while writing."""


class ModelError(ReaderError):
    """A model file is missing, truncated, corrupt or from an incompatible version."""

    exit_code = 3


def as_reader_error(exc: BaseException) -> ReaderError | None:
    """The ReaderError for `exc` (itself if it is one), or None for an error that is not the user's to fix."""
    from reader_runtime.errors import RuntimeModelError, UnknownVoiceError

    if isinstance(exc, ReaderError):
        return exc
    message = " ".join(str(exc).split())
    if isinstance(exc, RuntimeModelError):
        return ModelError(message)
    if isinstance(exc, UnknownVoiceError):
        return ReaderError(message)
    return None
