import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from reader.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "reader" / "data" / "analysis.schema.json").read_text())


def run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_analyze_example_article_human_readable(capsys):
    code, out, err = run_cli(["analyze", str(ROOT / "examples" / "article.md")], capsys)
    assert code == 0, err
    assert "plan:" in out and "distances:" in out and "phonemes:" in out
    assert "fourteen fifty" in out  # "1450" normalised


def test_analyze_json_lines_follow_the_schema(capsys):
    code, out, err = run_cli(["analyze", "--json", str(ROOT / "examples" / "article.md")], capsys)
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) > 10
    text = (ROOT / "examples" / "article.md").read_text(encoding="utf-8")
    for item in lines:
        jsonschema.validate(item, SCHEMA)
        assert text[item["start"] : item["end"]] == item["text"]
        assert len(item["distances"]) == len(item["words"]) - 1
    assert lines[0]["is_heading"] and lines[0]["chapter_title"] == "The Printing Press and the Modern Newsroom"


def test_analyze_stdin(capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Hello from a pipe.")))
    code, out, _ = run_cli(["analyze", "--json", "-"], capsys)
    assert code == 0 and json.loads(out)["words"][0]["text"] == "Hello"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "nothing speakable"),
        (b"   \n\n \t ", "nothing speakable"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"caf\xe9 au lait", "not valid UTF-8"),
        ("★ ☆ ♦ ♠ → ←".encode(), "nothing speakable"),
    ],
)
def test_bad_input_gives_one_line_error_and_nonzero_exit(tmp_path, capsys, content, message):
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    code, out, err = run_cli(["analyze", str(path)], capsys)
    assert code != 0
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_file_and_bad_lexicon(tmp_path, capsys):
    code, _, err = run_cli(["analyze", str(tmp_path / "nope.txt")], capsys)
    assert code != 0 and "no such file" in err
    doc = tmp_path / "doc.txt"
    doc.write_text("Hello.")
    lexicon = tmp_path / "lex.txt"
    lexicon.write_text("hello XYZ\n")
    code, _, err = run_cli(["analyze", "--lexicon", str(lexicon), str(doc)], capsys)
    assert code != 0 and "lex.txt:1" in err


def test_stanza_without_models_fails_clearly(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STANZA_RESOURCES_DIR", str(tmp_path / "empty"))
    doc = tmp_path / "doc.txt"
    doc.write_text("Hello.")
    code, _, err = run_cli(["analyze", "--parser", "stanza", str(doc)], capsys)
    assert code != 0 and "reader models download" in err


def test_models_download_without_a_reachable_hub_fails_clearly(tmp_path):
    # stanza reads its hub address from STANZA_RESOURCES_URL; point it at a closed local port so the
    # test behaves the same with or without internet.
    env = {**os.environ, "STANZA_RESOURCES_URL": "http://127.0.0.1:9/"}
    proc = subprocess.run(
        [sys.executable, "-m", "reader", "models", "download", "--dir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode != 0
    assert "could not download" in proc.stderr and proc.stderr.count("\n") == 1


def test_console_script_streams_a_huge_unpunctuated_line(tmp_path):
    """A 5 MB line without punctuation: output starts within seconds and never hangs."""
    path = tmp_path / "huge.txt"
    path.write_text("the quick brown fox jumps over the lazy dog " * 120_000)  # ~5.3 MB
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reader", "analyze", "--json", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        first = proc.stdout.readline()
        elapsed = time.monotonic() - start
    finally:
        proc.kill()
        proc.wait()
    sentence = json.loads(first)
    assert 0 < len(sentence["words"]) <= 40
    assert elapsed < 60
