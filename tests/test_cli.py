import json
import os
import shutil
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


def cli(*args, env=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reader", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300, **kwargs)


def test_analyze_reads_epub_like_render_and_play(tmp_path, capsys):
    from test_audiobook import make_epub

    code, out, err = run_cli(["analyze", "--json", str(make_epub(tmp_path / "tiny.epub"))], capsys)
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["text"] == "Chapter One" and lines[0]["is_heading"]
    assert "Call me Ishmael." in [line["text"] for line in lines]


def rewrite_epub(source: Path, target: Path, change) -> Path:
    """A copy of an EPUB with change(name, data) applied to each file (None drops it)."""
    import zipfile

    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for name in original.namelist():
            data = change(name, original.read(name))
            if data is not None:
                copy.writestr(name, data)
    return target


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda name, data: None if name == "META-INF/container.xml" else data, "it has no META-INF/container.xml"),
        (lambda name, data: None if name.endswith(".opf") else data, "its package document EPUB/content.opf is missing"),
        (lambda name, data: b"<package" if name.endswith(".opf") else data, "is not well-formed XML"),
        (lambda name, data: b'<package xmlns="http://www.idpf.org/2007/opf"/>' if name.endswith(".opf") else data, "its package document is malformed"),
        (lambda name, data: None if name.endswith("chap1.xhtml") else data, "no item named 'EPUB/chap1.xhtml'"),
    ],
    ids=["no-container", "no-opf", "bad-xml", "empty-opf", "missing-chapter"],
)
def test_broken_epubs_are_described_in_plain_words(tmp_path, capsys, change, message):
    from test_audiobook import make_epub

    broken = rewrite_epub(make_epub(tmp_path / "good.epub"), tmp_path / "broken.epub", change)
    code, _, err = run_cli(["analyze", str(broken)], capsys)
    assert code == 2 and err.count("\n") == 1 and "is not a readable EPUB" in err and message in err, err
    assert "NoneType" not in err and "nsmap" not in err


def test_input_and_output_errors_come_before_the_models_load(tmp_path, capsys, monkeypatch):
    # With no models at all, an error found without them is reported, not the missing models.
    monkeypatch.setenv("READER_MODELS_DIR", str(tmp_path / "no-models"))
    doc = tmp_path / "doc.txt"
    doc.write_text("Hello there.")
    code, _, err = run_cli(["render", str(doc), "-o", str(tmp_path / "missing" / "x.wav")], capsys)
    assert (code, err) == (2, f"reader: error: cannot write {tmp_path / 'missing' / 'x.wav'}: folder {tmp_path / 'missing'} does not exist\n")
    code, _, err = run_cli(["render", str(doc), "-o", str(tmp_path / "x.mp4")], capsys)
    assert code == 2 and "use a .wav or .flac file name" in err
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n★\n")
    for command in (["render", str(empty), "-o", str(tmp_path / "x.wav")], ["play", str(empty)], ["render", str(empty), "-o", f"{tmp_path}/book/"]):
        code, _, err = run_cli(command, capsys)
        assert (code, err) == (2, f"reader: error: nothing speakable in {empty}\n"), command
    assert not (tmp_path / "book").exists()
    # and a model problem is exit status 3
    code, _, err = run_cli(["render", str(doc), "-o", str(tmp_path / "x.wav")], capsys)
    assert code == 3 and "manifest not found" in err and err.count("\n") == 1


def test_bad_options_exit_2(tmp_path, capsys):
    doc = tmp_path / "doc.txt"
    doc.write_text("Hello there.")
    with pytest.raises(SystemExit) as exit_status:
        main(["render", str(doc), "-o", "x.wav", "--prosody", "loud"])
    assert exit_status.value.code == 2
    code, _, err = run_cli(["render", str(doc), "-o", str(tmp_path / "x.wav"), "--speed", "9"], capsys)
    assert code == 2 and "out of range" in err


@pytest.mark.parametrize(
    "option, message",
    [
        (["--max-streams", "0"], "--max-streams: 0 is out of range: use at least 1"),
        (["--max-streams", "many"], "--max-streams: 'many' is not an integer"),
        (["--port", "99999"], "--port: 99999 is out of range: use 0 to 65535"),
        (["--workers", "-1"], "--workers: -1 is out of range"),
        (["--grace", "nan"], "--grace: nan is out of range"),
        (["--request-timeout", "0"], "--request-timeout: 0 is out of range"),
    ],
)
def test_serve_refuses_impossible_settings_before_it_starts(option, message, capsys):
    with pytest.raises(SystemExit) as exit_status:
        main(["serve", *option])
    assert exit_status.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--ray", "local"], ["--no-http", "--wyoming", "tcp://127.0.0.1:10200"]])
def test_serve_processes_only_for_http_served_here(option, capsys):
    assert main(["serve", "--processes", "2", *option]) == 2
    assert "--processes is for HTTP served here" in capsys.readouterr().err


def test_raw_pcm_into_a_full_device_says_the_disk_is_full(tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text("Hello there. This goes nowhere, because the device is full.")
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "reader", "render", str(doc), "-o", "-"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
    assert (proc.returncode, proc.stderr) == (2, "reader: error: the disk is full while writing standard output\n")


@pytest.mark.parametrize("sigint", ["default", "ignored"])  # ignored: as in a background job of a script
def test_sigterm_stops_a_render_like_ctrl_c_and_leaves_no_partial_file(tmp_path, sigint):
    doc = tmp_path / "long.txt"
    doc.write_text(" ".join(["This sentence is read again and again, so the render takes a while."] * 400))
    out = tmp_path / "long.wav"
    stale = tmp_path / ".long.wav.k1ll3d00.part"  # from an earlier render killed with kill -9
    stale.write_bytes(b"\0" * 4096)
    handler = "signal.SIG_IGN" if sigint == "ignored" else "signal.default_int_handler"
    start = f"import runpy, signal, sys; signal.signal(signal.SIGINT, {handler}); sys.argv[0] = 'reader'; runpy.run_module('reader', run_name='__main__')"
    proc = subprocess.Popen([sys.executable, "-c", start, "render", str(doc), "-o", str(out)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not [p for p in tmp_path.glob(".long.wav.*.part") if p != stale] and time.monotonic() < deadline:
        time.sleep(0.1)  # until rendering has started writing
    assert not stale.exists(), "the stale part of the same output was not removed"
    proc.terminate()
    proc.wait(timeout=60)
    assert (proc.returncode, proc.stderr.read()) == (143, "reader: terminated\n")
    assert list(tmp_path.iterdir()) == [doc]


def test_analyze_checks_the_front_end_models_first(tmp_path, capsys, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(ROOT / "exported_models" / "g2p", models / "g2p")
    graph = models / "g2p" / "g2p.onnx"
    graph.write_bytes(graph.read_bytes()[:-10])  # truncated
    monkeypatch.setenv("READER_MODELS_DIR", str(models))
    doc = tmp_path / "doc.txt"
    doc.write_text("Every word here is in the dictionary.")
    code, _, err = run_cli(["analyze", str(doc)], capsys)
    assert code == 3 and err.count("\n") == 1 and f"G2P model file is truncated or corrupt: {graph}" in err


def test_play_without_a_sound_card_says_so_before_the_models_load(tmp_path):
    (tmp_path / ".asoundrc").write_text("pcm.!default { type hw card 99 }\nctl.!default { type hw card 99 }\n")
    doc = tmp_path / "doc.txt"
    doc.write_text("Hello there.")
    proc = cli("play", str(doc), env={"HOME": str(tmp_path), "READER_MODELS_DIR": str(tmp_path / "no-models")})
    assert (proc.returncode, proc.stderr) == (2, "reader: error: no audio output device found; write to a file instead with --output FILE.wav\n")


def test_transfer_checks_its_text_and_output_before_the_models_load(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("READER_MODELS_DIR", str(tmp_path / "no-models"))
    source = tmp_path / "source.wav"
    code, _, err = run_cli(["transfer", str(source), "--text", " … ", "-o", str(tmp_path / "x.wav")], capsys)
    assert (code, err) == (2, "reader: error: nothing speakable in --text\n")
    code, _, err = run_cli(["transfer", str(source), "--text", "Hello.", "-o", str(tmp_path / "no" / "x.wav")], capsys)
    assert code == 2 and "does not exist" in err
