"""Errors raised by the runtime; the reader turns them into one-line messages (reader.errors)."""


class RuntimeModelError(Exception):
    """A model file is missing, truncated, corrupt or does not match what the engine expects."""


class UnknownVoiceError(Exception):
    """A voice name the acoustic model does not have (the caller's mistake, not the model's)."""
