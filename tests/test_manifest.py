"""reader_runtime.manifest: the one check of every model kind's manifest, and the tool that records files in it."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from reader_runtime.errors import RuntimeModelError
from reader_runtime.manifest import read_manifest, record_files

ROOT = Path(__file__).resolve().parent.parent


def test_record_files_then_read_back_and_catch_every_kind_of_damage(tmp_path):
    (tmp_path / "graph.onnx").write_bytes(b"graph bytes")
    (tmp_path / "table.npy").write_bytes(b"table bytes")
    (tmp_path / "manifest.json").write_text(json.dumps({"format_version": 3, "files": {"table": {"file": "table.npy", "shape": [2, 2]}}}, indent=1))
    record_files(tmp_path, {"graph": "graph.onnx"})
    text = (tmp_path / "manifest.json").read_text()
    assert text.startswith('{\n "format_version"')  # its indentation kept
    files = json.loads(text)["files"]
    assert files["table"] == {"file": "table.npy", "shape": [2, 2], "bytes": 11, "sha256": hashlib.sha256(b"table bytes").hexdigest()}
    assert read_manifest(tmp_path, "test", 3).file("graph") == tmp_path / "graph.onnx"

    with pytest.raises(RuntimeModelError, match="has format version 3; this engine reads version 4"):
        read_manifest(tmp_path, "test", 4)
    (tmp_path / "graph.onnx").write_bytes(b"graph byteZ")  # same size
    with pytest.raises(RuntimeModelError, match=r"test model file does not match its manifest .*graph\.onnx"):
        read_manifest(tmp_path, "test", 3)
    (tmp_path / "graph.onnx").write_bytes(b"graph")
    with pytest.raises(RuntimeModelError, match=r"truncated or corrupt: .*graph\.onnx \(5 bytes, the manifest says 11\)"):
        read_manifest(tmp_path, "test", 3)
    (tmp_path / "graph.onnx").unlink()
    with pytest.raises(RuntimeModelError, match=r"test model file not found: .*graph\.onnx"):
        read_manifest(tmp_path, "test", 3)
    (tmp_path / "manifest.json").write_text(json.dumps({"format_version": 3, "files": {"graph": {"file": "graph.onnx"}}}))
    with pytest.raises(RuntimeModelError, match="lists a file without its name, bytes or sha256"):
        read_manifest(tmp_path, "test", 3)
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(RuntimeModelError, match="test manifest is corrupt"):
        read_manifest(tmp_path, "test", 3)


def test_a_vocoder_manifest_names_its_graph_with_graph_sha256(tmp_path):
    graph = tmp_path / "vocoder.onnx"
    graph.write_bytes(b"vocoder")
    manifest = {"format_version": 1, "graph": graph.name, "graph_sha256": hashlib.sha256(b"vocoder").hexdigest()}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    checked = read_manifest(tmp_path, "vocoder", 1)
    assert checked.file("graph") == graph and checked.files["graph"].bytes is None
    graph.write_bytes(b"Vocoder")
    with pytest.raises(RuntimeModelError, match="does not match its manifest"):
        read_manifest(tmp_path, "vocoder", 1)


def test_command_line_records_a_new_models_files(tmp_path):
    (tmp_path / "g2p.onnx").write_bytes(b"model")
    done = subprocess.run([sys.executable, "-m", "reader_runtime.manifest", str(tmp_path), "graph=g2p.onnx"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "no manifest at" in done.stderr  # without a format version it cannot make one
    (tmp_path / "manifest.json").write_text('{"format_version": 1}')
    done = subprocess.run([sys.executable, "-m", "reader_runtime.manifest", str(tmp_path), "graph=g2p.onnx"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert read_manifest(tmp_path, "G2P", 1).files["graph"].bytes == 5
