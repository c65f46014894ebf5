"""Reading and writing the manifest.json of an exported model folder as training and export change it
(reader_runtime.manifest reads and checks a finished one)."""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST_NAME = "manifest.json"


def load_manifest(folder: Path) -> dict:
    """`folder`'s manifest.json as a dict."""
    return json.loads((Path(folder) / MANIFEST_NAME).read_text(encoding="utf-8"))


def save_manifest(folder: Path, manifest: dict) -> Path:
    """Write `manifest` as `folder`'s manifest.json (indented, as every shipped manifest is); returns its path."""
    path = Path(folder) / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path
