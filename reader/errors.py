"""User-facing errors: the command line prints these as one line and exits non-zero."""


class ReaderError(Exception):
    """An error the user can act on (bad input, missing model, unwritable path).

    The message must be a single line that names the offending file or input.
    """

    exit_code = 2


class ModelError(ReaderError):
    """A model file is missing, truncated, corrupt or from an incompatible version."""

    exit_code = 3
