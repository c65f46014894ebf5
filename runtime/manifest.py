"""Model manifests: every shipped model describes itself in a manifest.json beside its files.

A manifest holds `format_version` (what layout of the model this engine reads) and `files`, a table
of name -> {"file", "bytes", "sha256"}; the kind's own settings (features, symbols, ...) sit beside
them. `read_manifest` checks the version and every listed file (present, size, sha256), so a
truncated or corrupt model fails at load with a one-line RuntimeModelError naming the file, not
when it is first run. Vocoder manifests (reader/training/vocoder/export.py) name their one graph as
`graph` + `graph_sha256` instead of a table; that is read as the table's "graph" entry.

Hashing a file is done once per process for each (path, size, modification time).

`python -m reader_runtime.manifest MANIFEST [NAME=FILE ...]` (re)writes the bytes and sha256 of the listed
files (and adds NAME=FILE entries) after a model file was replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import RuntimeModelError

MANIFEST_NAME = "manifest.json"

_hashes: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class ModelFile:
    name: str
    path: Path
    sha256: str
    bytes: int | None  # None: the manifest gives no size (vocoder manifests)


@dataclass(frozen=True)
class Manifest:
    kind: str  # "acoustic", "vocoder", "g2p", ... (named in errors)
    path: Path
    data: dict  # the whole manifest
    files: dict[str, ModelFile]

    @property
    def folder(self) -> Path:
        return self.path.parent

    def file(self, name: str) -> Path:
        entry = self.files.get(name)
        if entry is None:
            raise RuntimeModelError(f"{self.kind} manifest {self.path} lists no {name!r} file")
        return entry.path


def sha256_file(path: Path) -> str:
    """The file's sha256 (hex), computed once per process for each size and modification time."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _hashes:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _hashes[key] = digest.hexdigest()
    return _hashes[key]


def manifest_path(location: str | os.PathLike) -> Path:
    """A model folder's manifest.json, or `location` itself when it names a .json file."""
    location = Path(location)
    return location if location.suffix == ".json" else location / MANIFEST_NAME


def _file_table(data: dict) -> dict:
    if "files" in data:
        return data["files"]
    if isinstance(data.get("graph"), str) and "graph_sha256" in data:
        return {"graph": {"file": data["graph"], "sha256": data["graph_sha256"]}}
    return {}


def read_manifest(location: str | os.PathLike, kind: str, format_version: int) -> Manifest:
    """Read the manifest of a model (its folder, or the manifest file) and check its version and files."""
    path = manifest_path(location)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuntimeModelError(f"{kind} manifest not found (missing file {path})") from None
    except (OSError, ValueError) as exc:
        raise RuntimeModelError(f"{kind} manifest is corrupt: {path} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    version = data.get("format_version") if isinstance(data, dict) else None
    if version != format_version:
        raise RuntimeModelError(f"{kind} model {path.parent} has format version {version}; this engine reads version {format_version}")
    files = {}
    try:
        for name, entry in _file_table(data).items():
            files[name] = ModelFile(name, path.parent / entry["file"], str(entry["sha256"]), int(entry["bytes"]) if "bytes" in entry else None)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise RuntimeModelError(f"{kind} manifest {path} lists a file without its name, bytes or sha256") from None
    if not files:
        raise RuntimeModelError(f"{kind} manifest {path} lists no files")
    for entry in files.values():
        _check_file(kind, entry)
    return Manifest(kind, path, data, files)


def _check_file(kind: str, entry: ModelFile) -> None:
    try:
        size = entry.path.stat().st_size
    except FileNotFoundError:
        raise RuntimeModelError(f"{kind} model file not found: {entry.path}") from None
    except OSError as exc:
        raise RuntimeModelError(f"{kind} model file is unreadable: {entry.path} ({exc.strerror})") from None
    if entry.bytes is not None and size != entry.bytes:
        raise RuntimeModelError(f"{kind} model file is truncated or corrupt: {entry.path} ({size} bytes, the manifest says {entry.bytes})")
    try:
        digest = sha256_file(entry.path)
    except OSError as exc:
        raise RuntimeModelError(f"{kind} model file is unreadable: {entry.path} ({exc.strerror})") from None
    if digest != entry.sha256:
        raise RuntimeModelError(f"{kind} model file does not match its manifest (corrupt or from another version): {entry.path}")


def file_entry(path: Path) -> dict:
    """A manifest's `files` entry for `path` (a file in the manifest's folder)."""
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def record_files(location: str | os.PathLike, add: dict[str, str] | None = None, format_version: int | None = None) -> Path:
    """Rewrite the bytes and sha256 of every file in a manifest's `files` table (and add `add`'s
    name -> file entries), keeping its other fields and its indentation; a missing manifest is
    created with `format_version`."""
    path = manifest_path(location)
    if not path.is_file() and format_version is not None:
        path.write_text(json.dumps({"format_version": format_version}, indent=2) + "\n", encoding="utf-8")
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    lines = text.splitlines()
    indent = len(lines[1]) - len(lines[1].lstrip()) if len(lines) > 1 else None
    entries = data.get("files", {}) | {name: {"file": file} for name, file in (add or {}).items()}
    data["files"] = {name: entry | file_entry(path.parent / entry["file"]) for name, entry in entries.items()}
    path.write_text(json.dumps(data, indent=indent or None, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def main(argv: list[str]) -> int:
    if not argv or any("=" not in arg for arg in argv[1:]):
        print("usage: python -m reader_runtime.manifest MANIFEST_OR_FOLDER [NAME=FILE ...]", file=sys.stderr)
        return 2
    if not manifest_path(argv[0]).is_file():
        print(f"no manifest at {manifest_path(argv[0])}: write one with its format_version first", file=sys.stderr)
        return 2
    path = record_files(argv[0], dict(arg.split("=", 1) for arg in argv[1:]))
    print(f"recorded the files of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
