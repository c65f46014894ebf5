"""Errors raised by the runtime; the reader turns them into one-line messages (reader.errors)."""


class RuntimeModelError(Exception):
    """A model file is missing, truncated, corrupt or does not match what the engine expects."""


class AudioSinkError(Exception):
    """Audio cannot be written: no audio device, an unwritable path, a failed write."""


class DiskFullError(AudioSinkError):
    """A write failed because the disk (or device) is full."""


class UnknownVoiceError(Exception):
    """A voice name the acoustic model does not have (the caller's mistake, not the model's)."""
