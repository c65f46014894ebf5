"""Errors raised by the runtime; the reader's command line turns them into one-line messages."""


class RuntimeModelError(Exception):
    """A model file is missing, truncated, corrupt or does not match what the engine expects."""
