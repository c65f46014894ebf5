"""Every command the README shows is run here, as written (ports and the set-up steps that .ci/run
performs aside), in a folder holding the files the commands name."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent


def shell_lines(section: str) -> list[str]:
    """The command lines of a README section's ```sh blocks (continuations joined, comments dropped)."""
    body = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", body, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line:
                lines.append(line)
    return lines


def python_block(section: str) -> str:
    body = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", body, re.S).group(1)


@pytest.fixture()
def workdir(tmp_path):
    """A folder like a user's: the example article, an EPUB book, and the SSML and PLS files of docs/ssml.md."""
    from test_audiobook import make_epub

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    make_epub(tmp_path / "book.epub")
    page = (ROOT / "docs" / "ssml.md").read_text(encoding="utf-8")
    lexicon, news = re.findall(r"```xml\n(.*?)```", page, re.S)[:2]
    (tmp_path / "house.pls").write_text(lexicon, encoding="utf-8")
    (tmp_path / "news.ssml").write_text(news, encoding="utf-8")
    return tmp_path


def run(command: str, cwd: Path, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **kwargs)


def test_the_set_up_commands_are_what_ci_runs():
    main, tests = shell_lines("Install and run")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").replace(" -q ", " ")  # CI installs quietly
    assert main.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install -e . && reader render ")
    for step in tests.split(" && ")[2:]:  # after making and activating the venv
        assert step in ci, step


def test_the_main_command_renders_the_article(workdir):
    main = shell_lines("Install and run")[0].split(" && ")[-1]
    assert run(main, workdir).returncode == 0
    info = soundfile.info(str(workdir / "article.wav"))
    assert info.frames / info.samplerate > 30


def test_read_aloud_commands(workdir):
    play, render, pipe, voices = shell_lines("Read aloud")
    # play: through PortAudio into an ALSA device that writes what it plays to a file
    (workdir / ".asoundrc").write_text(f'pcm.!default {{ type file slave.pcm "null" file "{workdir}/played.raw" format "raw" }}\n')
    env = {**os.environ, "HOME": str(workdir), "PATH": f"{BIN}:{os.environ['PATH']}"}
    proc = subprocess.Popen(["bash", "-c", f"exec {play}"], cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    played = workdir / "played.raw"
    deadline = time.monotonic() + 120
    while (not played.exists() or played.stat().st_size < 22050 * 2) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert played.stat().st_size >= 22050 * 2, err  # a second of audio reached the device
    assert (proc.returncode, err) == (130, "reader: interrupted\n")

    assert run(render, workdir).returncode == 0
    assert soundfile.info(str(workdir / "article.flac")).duration > 30
    done = run(pipe, workdir)
    assert done.returncode == 0, done.stderr
    assert (workdir / "article.mp3").stat().st_size > 100_000
    listed = run(voices, workdir)
    assert "LJ" in listed.stdout and "kathleen" in listed.stdout and "fast" in listed.stdout


def test_audiobook_command(workdir):
    (command,) = shell_lines("Audiobooks")
    done = run(command, workdir)
    assert done.returncode == 0, done.stderr
    assert (workdir / "book" / "manifest.json").is_file()


def test_ssml_command(workdir):
    (command,) = shell_lines("SSML, speech marks, lexicons, pauses")
    done = run(command, workdir)
    assert done.returncode == 0, done.stderr
    marks = (workdir / "news.jsonl").read_text(encoding="utf-8").splitlines()
    assert any('"type": "ssml"' in mark for mark in marks) and soundfile.info(str(workdir / "news.wav")).duration > 5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_service_commands(workdir):
    serve, curl = shell_lines("Serve apps")
    port = free_port()
    serve = serve.split(" && ")[-1].replace("8880", str(port))  # the install step is .ci/run's
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    server = subprocess.Popen(["bash", "-c", f"exec {serve}"], cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while run(f"curl -sf localhost:{port}/health", workdir).returncode != 0:
            assert server.poll() is None and time.monotonic() < deadline, server.stderr.read() if server.poll() is not None else "no answer"
            time.sleep(0.5)
        done = run(curl.replace("8880", str(port)), workdir)
        assert done.returncode == 0 and (workdir / "news.mp3").read_bytes()[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3"), done.stderr
        client = python_block("Serve apps").replace("8880", str(port))
        done = subprocess.run([sys.executable, "-c", client], cwd=workdir, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert (workdir / "hello.mp3").stat().st_size > 1000
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert server.returncode == 0
