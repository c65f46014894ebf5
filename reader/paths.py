"""Where shipped models and user configuration live."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The models ship as package data of the `reader_models` package (the repository's exported_models/
# folder, pyproject.toml), so a wheel carries them and a source checkout uses the folder itself.
MODELS_PACKAGE = "reader_models"


def models_dir() -> Path:
    """The shipped models folder; READER_MODELS_DIR overrides it (tests, custom installs)."""
    override = os.environ.get("READER_MODELS_DIR")
    if override:
        return Path(override)
    try:
        # An installed package lies on disk (wheels install unzipped), so its files are plain paths.
        return Path(str(importlib.resources.files(MODELS_PACKAGE)))
    except ModuleNotFoundError:
        from .errors import ModelError

        raise ModelError(f"the shipped models (package {MODELS_PACKAGE}) are not installed: reinstall reader-engine or set READER_MODELS_DIR") from None


def _user_dir(override: str, xdg: str, fallback: str) -> Path:
    """$override, else $xdg/reader, else ~/fallback/reader (the XDG base directories)."""
    if os.environ.get(override):
        return Path(os.environ[override])
    return Path(os.environ.get(xdg) or str(Path.home() / fallback)) / "reader"


def config_dir() -> Path:
    """The user's configuration folder (XDG), e.g. ~/.config/reader; READER_CONFIG_DIR overrides it."""
    return _user_dir("READER_CONFIG_DIR", "XDG_CONFIG_HOME", ".config")


def data_dir() -> Path:
    """The speech corpora for training and benchmarks (never part of the package): READER_DATA_DIR,
    else the folder a source checkout names in its pyproject.toml ([tool.reader] data_dir)."""
    override = os.environ.get("READER_DATA_DIR")
    if override:
        return Path(override)
    import tomllib

    from .errors import ReaderError

    try:
        named = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["reader"]["data_dir"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        raise ReaderError("no speech corpora configured: set READER_DATA_DIR to their folder") from None
    return (PROJECT_ROOT / named).resolve()


def cache_dir() -> Path:
    """Caches of derived features (outside git), e.g. ~/.cache/reader; READER_CACHE_DIR overrides it."""
    return _user_dir("READER_CACHE_DIR", "XDG_CACHE_HOME", ".cache")
