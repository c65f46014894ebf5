"""The wheel: it carries the models, and an installed copy reads aloud outside the source checkout.

.ci/run also installs the wheel with its dependencies into a fresh venv; here it is installed without
them (`pip install --no-deps --target`) and run with this environment's packages, which is quick and
needs no network, while still proving that nothing is read from the checkout.
"""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import soundfile

ROOT = Path(__file__).resolve().parent.parent
MODELS_BUDGET_BYTES = 120 * 1000 * 1000  # the models in the repository
WHEEL_BUDGET_BYTES = 100 * 1000 * 1000  # PyPI's limit for one file


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy, so the build's own folders never appear in the working tree.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("reader", "runtime", "exported_models"):  # installed as reader, reader_runtime, reader_models
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(out), str(source)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (built,) = out.glob("reader_engine-*.whl")
    return built


def test_wheel_carries_every_model_file_its_manifests_list(wheel):
    with zipfile.ZipFile(wheel) as archive:
        sizes = {info.filename: info.file_size for info in archive.infolist()}
        manifests = {name: json.loads(archive.read(name)) for name in sizes if name.endswith("manifest.json")}
    assert {"reader_models/__init__.py", "reader_runtime/stream.py", "reader_models/break/break_model.json", "reader_models/break/manifest.json"} <= set(sizes)
    # Only the project's own import names at the top level (a `runtime` would clash with PyPI's).
    assert {name.split("/")[0] for name in sizes if "/" in name and not name.split("/")[0].endswith(".dist-info")} == {"reader", "reader_runtime", "reader_models"}
    # Every data file of the library (the break model, the normaliser's tables, ...) travels with it.
    library_data = {path.relative_to(ROOT).as_posix() for path in (ROOT / "reader").rglob("data/*") if path.is_file()}
    assert library_data and library_data <= set(sizes), sorted(library_data - set(sizes))
    for kind in ("acoustic", "vocoder", "studio_vocoder", "g2p", "bert", "prosody_bank", "break"):
        manifest = manifests[f"reader_models/{kind}/manifest.json"]
        files = [entry["file"] for entry in manifest.get("files", {}).values()] or [manifest["graph"]]
        for file in files:
            assert f"reader_models/{kind}/{file}" in sizes, (kind, file)
    models = sum(size for name, size in sizes.items() if name.startswith("reader_models/"))
    assert models < MODELS_BUDGET_BYTES, f"{models / 1e6:.1f} MB of models"
    assert wheel.stat().st_size < WHEEL_BUDGET_BYTES, f"the wheel is {wheel.stat().st_size / 1e6:.1f} MB"
    assert not [name for name in sizes if name.startswith(("tests/", "benchmarks/", "configs/"))]


def test_installed_wheel_reads_aloud_outside_the_checkout(wheel, tmp_path):
    """Installed beside PyPI's `runtime` (a test dependency, in this environment's site-packages)
    and a user's own `runtime.py`: every one imports, and ours still reads aloud."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "hello.txt").write_text("Hello from an installed wheel. It found its models by itself.\n")
    (work / "runtime.py").write_text("USERS_OWN = True\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import reader, reader_runtime, runtime, reader.paths as p; print(reader.__file__); print(reader_runtime.__file__); print(p.models_dir()); print(runtime.USERS_OWN)"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    *paths, users_own = where.stdout.splitlines()
    assert all(line.startswith(str(target)) for line in paths) and users_own == "True", where.stdout
    pypi_runtime = subprocess.run([sys.executable, "-c", "import runtime, reader_runtime.stream; print(runtime.__file__)"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert pypi_runtime.returncode == 0 and "site-packages" in pypi_runtime.stdout, pypi_runtime.stderr
    proc = subprocess.run([sys.executable, "-m", "reader", "render", "hello.txt", "-o", "hello.wav"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    info = soundfile.info(str(work / "hello.wav"))
    assert info.frames / info.samplerate > 1.5


def test_runtime_imports_nothing_from_reader():
    """runtime/ (reader_runtime) is the streaming engine: it is handed model folders and never reaches back into reader."""
    modules = sorted(p.stem for p in (ROOT / "runtime").glob("*.py") if p.stem != "__init__")
    code = f"import importlib, sys; [importlib.import_module('reader_runtime.' + m) for m in {modules!r}]; print(sorted(m for m in sys.modules if m == 'reader' or m.startswith('reader.')))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_every_package_folder_is_installed():
    """pyproject.toml lists the packages (runtime/ and exported_models/ install under other names):
    a new subpackage of reader that is not listed would be missing from the wheel."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "reader").rglob("__init__.py")}
    assert folders <= listed, sorted(folders - listed)
