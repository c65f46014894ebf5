"""The models a reading uses, checked against their manifests when a Reader starts.

Each kind is a folder (or file) with a manifest.json (reader_runtime.manifest): format version and every
file's bytes and sha256. Checking them all up front means a corrupt G2P model fails at once, not an
hour into a book when the first unknown word comes. The prosody bank and BERT encoder are checked
by reader.prosody_selection when a selector that uses them loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError


@dataclass(frozen=True)
class ModelKind:
    name: str  # as errors name it
    location: Path  # its folder, or its manifest file
    format_version: int


def analysis_models(folder: Path) -> list[ModelKind]:
    """The models the front end uses: G2P and the break model."""
    from .frontend.g2p import FORMAT_VERSION as G2P_FORMAT_VERSION
    from .frontend.prosody import BREAK_MODEL_FORMAT

    return [
        ModelKind("G2P", folder / "g2p", G2P_FORMAT_VERSION),
        ModelKind("break", folder / "break", BREAK_MODEL_FORMAT),
    ]


def reading_models(folder: Path) -> list[ModelKind]:
    """The models every reading uses: the acoustic model and vocoder, and the front end's."""
    from reader_runtime.acoustic import ACOUSTIC_FORMAT_VERSION
    from reader_runtime.vocoder import FORMAT_VERSION as VOCODER_FORMAT_VERSION

    return [
        ModelKind("acoustic", folder / "acoustic", ACOUSTIC_FORMAT_VERSION),
        ModelKind("vocoder", folder / "vocoder", VOCODER_FORMAT_VERSION),
        *analysis_models(folder),
    ]


STUDIO_VOCODER_FOLDER = "studio_vocoder"


def studio_vocoder_model(folder: Path) -> ModelKind:
    """The studio vocoder (exported_models/studio_vocoder), checked when a Reader reads with it
    (reader.vocoders); the fast vocoder is in reading_models, which every reading checks."""
    from reader_runtime.studio_vocoder import FORMAT_VERSION as STUDIO_FORMAT_VERSION

    return ModelKind("studio vocoder", folder / STUDIO_VOCODER_FOLDER, STUDIO_FORMAT_VERSION)


def check_models(kinds: list[ModelKind]) -> None:
    """Check each kind's manifest and files; the first problem raises ModelError (one line)."""
    from reader_runtime.errors import RuntimeModelError
    from reader_runtime.manifest import read_manifest

    for kind in kinds:
        try:
            read_manifest(kind.location, kind.name, kind.format_version)
        except RuntimeModelError as exc:
            raise ModelError(str(exc)) from None


def load_acoustic(folder: Path):
    """The acoustic model in the models `folder` alone (its voices, its prosody bank's key), checked."""
    from reader_runtime.acoustic import ACOUSTIC_FORMAT_VERSION, AcousticModel

    check_models([ModelKind("acoustic", folder / "acoustic", ACOUSTIC_FORMAT_VERSION)])
    return AcousticModel.load(folder / "acoustic")


def load_graph(path: Path, threads: int = 0):
    """An onnxruntime session for one model file of the front end or the prosody selector, made by
    reader_runtime.session (the one place sessions are made); errors are ModelErrors."""
    from reader_runtime.errors import RuntimeModelError
    from reader_runtime.session import SessionOptions, load_session

    try:
        return load_session(path, SessionOptions(intra_op_threads=threads, inter_op_threads=threads))
    except RuntimeModelError as exc:
        raise ModelError(str(exc)) from None
