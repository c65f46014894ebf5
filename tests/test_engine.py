"""End to end with the shipped models: text -> analysis -> ONNX acoustic model -> ONNX vocoder -> sinks."""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from reader.engine import Reader

ROOT = Path(__file__).resolve().parent.parent
TEXT = "The brown fox is quick, and it is jumping over the lazy dog. Who ate the rest of my pizza?"


@pytest.fixture(scope="module")
def reader():
    return Reader()


def cli(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "reader", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout)


def test_synthesize_gives_plausible_audio(reader):
    audio = reader.synthesize(TEXT)
    assert audio.sample_rate == 22050 and audio.samples.dtype == np.float32
    assert np.all(np.isfinite(audio.samples)) and np.max(np.abs(audio.samples)) <= 1.0
    words = len(TEXT.split())
    # natural reading is 2-4 words per second; the sentence pause adds half a second
    assert words / 5 < audio.seconds < words / 1.2
    assert np.sqrt(np.mean(audio.samples**2)) > 0.01  # not silence


def test_stream_chunks_carry_word_timings_in_order(reader):
    async def collect():
        return [chunk async for chunk in reader.stream(TEXT)]

    chunks = asyncio.run(collect())
    assert len(chunks) >= 3  # phrase by phrase, not one block per sentence
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)
    timings = [t for c in chunks for t in c.words]
    assert len(timings) == len(TEXT.split())
    assert all(a.start <= b.start for a, b in zip(timings, timings[1:]))
    total = sum(len(c.samples) for c in chunks) / reader.sample_rate
    assert timings[-1].end <= total + 0.05
    # the same audio as one call (up to float rounding of multi-threaded onnxruntime kernels)
    assert np.allclose(np.concatenate([c.samples for c in chunks]), reader.synthesize(TEXT).samples, atol=1e-4)


def test_concurrent_streams_share_models_without_mixing(reader):
    texts = ["First, a short sentence.", "Second, something else entirely, and a little longer."]
    alone = [reader.synthesize(t).samples for t in texts]

    async def both():
        async def one(text):
            return np.concatenate([c.samples async for c in reader.stream(text)])

        return await asyncio.gather(one(texts[0]), one(texts[1]))

    together = asyncio.run(both())
    for a, b in zip(alone, together):
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-4)


def test_speed_changes_duration(reader):
    fast = Reader(speed=1.5)
    assert fast.synthesize(TEXT).seconds < 0.8 * reader.synthesize(TEXT).seconds


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_render_writes_audio_file(tmp_path, suffix):
    out = tmp_path / f"article{suffix}"
    proc = cli("render", str(ROOT / "examples" / "article.md"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    data, sr = soundfile.read(out)
    assert sr == 22050 and len(data) / sr > 30
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_render_raw_pcm_to_stdout(tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text("Hello there.")
    proc = subprocess.run([sys.executable, "-m", "reader", "render", str(doc), "-o", "-"], capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout) > 22050 and len(proc.stdout) % 2 == 0


def test_play_through_alsa_null_device(tmp_path):
    (tmp_path / ".asoundrc").write_text("pcm.!default { type null }\n")
    doc = tmp_path / "doc.txt"
    doc.write_text("Hello there. This is a test.")
    proc = cli("play", str(doc), env={"HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr


def test_play_without_audio_device_suggests_output(tmp_path):
    (tmp_path / ".asoundrc").write_text("pcm.!default { type hw card 99 }\nctl.!default { type hw card 99 }\n")
    doc = tmp_path / "doc.txt"
    doc.write_text("Hello there.")
    proc = cli("play", str(doc), env={"HOME": str(tmp_path)})
    assert proc.returncode != 0
    assert "--output" in proc.stderr and proc.stderr.count("\n") == 1


def test_missing_and_corrupt_models_name_the_file(tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text("Hello there.")
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copytree(ROOT / "exported_models" / "g2p", empty / "g2p")
    proc = cli("render", str(doc), "-o", str(tmp_path / "x.wav"), env={"READER_MODELS_DIR": str(empty)})
    assert proc.returncode != 0 and "manifest.json" in proc.stderr and proc.stderr.count("\n") == 1
    broken = tmp_path / "broken"
    shutil.copytree(ROOT / "exported_models", broken)
    onnx = broken / "acoustic" / "text_to_mel.onnx"
    onnx.write_bytes(onnx.read_bytes()[:1000])
    proc = cli("render", str(doc), "-o", str(tmp_path / "x.wav"), env={"READER_MODELS_DIR": str(broken)})
    assert proc.returncode != 0 and "text_to_mel.onnx" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.wav").exists()


def test_nothing_speakable_and_bad_output_path(tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text("★ ☆ ♦")
    proc = cli("render", str(doc), "-o", str(tmp_path / "x.wav"))
    assert proc.returncode != 0 and "nothing speakable" in proc.stderr
    assert not list(tmp_path.glob("*.wav")) and not list(tmp_path.glob(".*.part"))
    doc.write_text("Hello.")
    proc = cli("render", str(doc), "-o", str(tmp_path / "no" / "such" / "x.wav"))
    assert proc.returncode != 0 and "does not exist" in proc.stderr


def test_ctrl_c_stops_quickly_and_leaves_no_partial_file(tmp_path):
    doc = tmp_path / "long.txt"
    doc.write_text(" ".join(["This sentence is read again and again, so the render takes a while."] * 400))
    out = tmp_path / "long.wav"
    # As from a terminal: a shell starts background jobs (e.g. `bash .ci/run &`) with SIGINT ignored,
    # which children inherit and Python honours, so the child sets the usual handler first.
    as_from_a_terminal = "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); sys.argv[0] = 'reader'; runpy.run_module('reader', run_name='__main__')"
    proc = subprocess.Popen([sys.executable, "-c", as_from_a_terminal, "render", str(doc), "-o", str(out)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".long.wav.*.part")) and time.monotonic() < deadline:
        time.sleep(0.1)  # wait until rendering has started writing
    assert list(tmp_path.glob(".long.wav.*.part")), "render never started"
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    stopped = time.monotonic() - sent
    stderr = proc.stderr.read()
    assert (proc.returncode, "interrupted" in stderr) == (130, True), f"{stopped:.1f} s after SIGINT: {stderr!r}, {sorted(p.name for p in tmp_path.iterdir())}"
    assert stopped < 5  # includes interpreter shutdown; the audio itself stops within one block
    assert list(tmp_path.iterdir()) == [doc]


def test_voices_lists_shipped_voices():
    proc = cli("voices")
    assert proc.returncode == 0
    names = [line.split()[0].lower() for line in proc.stdout.splitlines()]
    assert "lj" in names and "kathleen" in names
