import subprocess

import pytest

from reader.frontend.analysis import Analyzer


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
