import subprocess
from pathlib import Path

import pytest

from reader.frontend.analysis import Analyzer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def analyzer():
    """One real analyzer (spaCy, CMUdict, G2P ONNX, break model) shared by the whole test run."""
    return Analyzer()


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs, to fill up (needs root with mount rights, as on the project's machines)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def models_copy(tmp_path) -> Path:
    """The shipped models, linked file by file into a folder whose files a test may replace."""
    folder = tmp_path / "models"
    shipped = ROOT / "exported_models"
    for path in shipped.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            (folder / path.relative_to(shipped)).parent.mkdir(parents=True, exist_ok=True)
            (folder / path.relative_to(shipped)).symlink_to(path)
    return folder


@pytest.fixture
def corrupt():
    """Changes a file's bytes but not its size: only the manifest's sha256 can tell."""

    def change(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.unlink()  # a link into exported_models: replace it, never write through it
        path.write_bytes(bytes(data))

    return change
