"""The Python API (`from reader import Reader`): timings, streams, rendering, cancellation, concurrency."""

import asyncio
import gc
import json
import re
import shutil
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from pathlib import Path

import numpy as np
import pytest
import soundfile

from reader import ModelError, Reader, ReaderError
from reader.frontend.document import split_document

ROOT = Path(__file__).resolve().parent.parent
NEWS = "Markets rallied on Tuesday. Dr. Smith paid $5.50 for 3 coffees, and the bank held rates at 4.5%."
LONG = " ".join(["This sentence is read again and again, so the reading takes a while."] * 60)


@pytest.fixture(scope="module")
def reader():
    return Reader(threads=1)


def stream_threads() -> list[threading.Thread]:
    """The worker threads a stream starts (its analysis and synthesis executors)."""
    return [t for t in threading.enumerate() if t.name.startswith(("analysis", "synthesis"))]


def assert_timings_match_text(audio, text: str) -> None:
    assert audio.sentences and audio.words
    for sentence in audio.sentences:
        assert sentence.text == text[sentence.start_char : sentence.end_char]
    for word in audio.words:
        assert 0 <= word.start_char < word.end_char <= len(text)
        assert 0 <= word.start < word.end <= audio.seconds + 1e-6
        # the word lies inside one of the sentences, in time and in the text
        assert any(s.start_char <= word.start_char and word.end_char <= s.end_char and s.start <= word.start < s.end for s in audio.sentences)
    assert [w.start for w in audio.words] == sorted(w.start for w in audio.words)
    assert [s.start for s in audio.sentences] == sorted(s.start for s in audio.sentences)
    assert abs(audio.sentences[-1].end - audio.seconds) < 1e-6  # sentences tile the audio


def test_readme_news_reader_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Hz" in proc.stdout and "Markets" in proc.stdout and "rallied" in proc.stdout
    data, sr = soundfile.read(tmp_path / "article.flac")
    assert sr == 22050 and len(data) / sr > 3


def test_synthesize_gives_sentence_and_word_timings_into_the_text(reader):
    audio = reader.synthesize(NEWS)
    assert audio.samples.dtype == np.float32 and audio.sample_rate == reader.sample_rate
    assert_timings_match_text(audio, NEWS)
    assert [s.text for s in audio.sentences] == ["Markets rallied on Tuesday.", "Dr. Smith paid $5.50 for 3 coffees, and the bank held rates at 4.5%."]
    spoken = [NEWS[w.start_char : w.end_char] for w in audio.words]
    assert spoken[:4] == ["Markets", "rallied", "on", "Tuesday"]
    assert spoken.count("$5.50") >= 3  # "five dollars and fifty cents" all point at their source


def test_stream_of_a_markdown_document_points_into_the_original_text(reader):
    text = "# Morning *briefing*\n\nThe **bridge** opens [today](https://example.com/bridge).\n"
    document = split_document(text)

    async def collect():
        return [chunk async for chunk in reader.stream(document)]

    chunks = asyncio.run(collect())
    words = [text[w.start_char : w.end_char] for c in chunks for w in c.words]
    assert words == ["Morning", "briefing", "The", "bridge", "opens", "today"]
    sentences = [s for c in chunks for s in c.sentences]
    assert [s.sentence_index for s in sentences] == [0, 1]
    assert all(c.sentences == () or c.sentences[0].sentence_index == c.request_index for c in chunks)
    # timings come with or before their audio: in the chunk or within the vocoder's look-ahead after it
    look_ahead = (reader.vocoder.spec.receptive_field_frames * reader.acoustic.hop_length + reader.vocoder.spec.features.n_fft // 2) / reader.sample_rate
    for chunk in chunks:
        for timing in chunk.sentences + chunk.words:
            assert chunk.start <= timing.start < chunk.start + len(chunk.samples) / chunk.sample_rate + look_ahead


def test_planned_sentences_render_in_runs_with_their_timings(reader):
    planned = list(reader.sentences(NEWS))
    assert [p.analysis.text for p in planned] == ["Markets rallied on Tuesday.", "Dr. Smith paid $5.50 for 3 coffees, and the bank held rates at 4.5%."]
    # one run of every sentence is the whole reading, timings included
    whole, run = reader.synthesize(NEWS), reader.render_sentences(planned)
    assert np.array_equal(run.samples, whole.samples) and run.sentences == whole.sentences and run.words == whole.words
    assert [w.sentence_index for w in run.words] == [i for i, p in enumerate(planned) for _ in p.analysis.words]
    # a run of the second sentence alone times it from the run's start, and its words name it as sentence 0
    second = reader.render_sentences(planned[1:])
    assert_timings_match_text(second, NEWS)
    assert [s.text for s in second.sentences] == [planned[1].analysis.text] and {w.sentence_index for w in second.words} == {0}


def test_render_writes_the_same_audio_as_synthesize(reader, tmp_path):
    out = tmp_path / "news.flac"
    seconds = reader.render(NEWS, out)
    data, sr = soundfile.read(out, dtype="float32")
    expected = reader.synthesize(NEWS).samples
    assert sr == reader.sample_rate and abs(seconds - len(data) / sr) < 1e-9
    assert data.shape == expected.shape and np.max(np.abs(data - expected)) < 2e-4  # 16-bit rounding
    assert [p.name for p in tmp_path.iterdir()] == ["news.flac"]


def test_render_errors_are_reader_errors_and_leave_no_file(reader, tmp_path):
    with pytest.raises(ReaderError, match="nothing speakable"):
        reader.render("★ ☆ ♦", tmp_path / "x.wav")
    with pytest.raises(ReaderError, match="does not exist"):
        reader.render("Hello.", tmp_path / "no" / "x.wav")
    with pytest.raises(ReaderError, match=r"\.wav or \.flac"):
        reader.render("Hello.", tmp_path / "x.mp9")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_before_the_event_loop_starts_leaves_no_file_and_no_warning(reader, tmp_path, monkeypatch):
    # SIGTERM with SIGINT ignored raises KeyboardInterrupt wherever the main thread is; in the instant
    # between opening the file and the event loop starting, the reading coroutine never runs.
    def interrupted_while_starting(coroutine):
        raise KeyboardInterrupt

    monkeypatch.setattr("reader.engine.asyncio.run", interrupted_while_starting)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(KeyboardInterrupt):
            reader.render(NEWS, tmp_path / "news.wav")
        gc.collect()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
    assert list(tmp_path.iterdir()) == []


def test_bad_settings_and_corrupt_models_raise_one_line_errors(tmp_path):
    with pytest.raises(ReaderError, match="out of range"):
        Reader(speed=9)
    with pytest.raises(ReaderError, match="unknown voice 'nobody'") as error:
        Reader(voice="nobody")
    assert not isinstance(error.value, ModelError)  # the caller's mistake: exit status 2, not 3
    broken = tmp_path / "models"
    for part in ("acoustic", "vocoder"):
        shutil.copytree(ROOT / "exported_models" / part, broken / part)
    onnx = broken / "vocoder" / "vocoder.onnx"
    onnx.write_bytes(onnx.read_bytes()[:1000])
    with pytest.raises(ModelError, match="vocoder.onnx") as error:
        Reader(models=broken)
    assert "\n" not in str(error.value)


def test_nothing_speakable_synthesizes_to_silence_and_wrong_types_are_refused(reader):
    audio = reader.synthesize("  ¶ — ★  ")
    assert len(audio.samples) == 0 and audio.sentences == () and audio.words == ()
    with pytest.raises(TypeError):
        reader.synthesize(b"bytes are not text")


def test_closing_a_stream_stops_its_worker_threads(reader):
    async def first_chunk_then_close() -> float:
        async with aclosing(reader.stream(LONG)) as chunks:
            async for _ in chunks:
                assert stream_threads()  # work is under way
                await asyncio.sleep(1.5)  # a slow listener: synthesis runs ahead until its queue is full
                break
            started = time.monotonic()
        return time.monotonic() - started

    closing = asyncio.run(asyncio.wait_for(first_chunk_then_close(), timeout=60))  # fail, not hang
    assert closing < 5 and stream_threads() == []


def test_breaking_out_of_the_loop_stops_the_stream(reader):
    async def break_out() -> float:
        async for _ in reader.stream(LONG):
            break
        started = time.monotonic()
        while stream_threads() and time.monotonic() - started < 10:
            await asyncio.sleep(0.01)  # the dropped generator is closed by the event loop
        return time.monotonic() - started

    assert asyncio.run(break_out()) < 5 and stream_threads() == []


def test_cancelling_the_reading_task_stops_the_stream(reader):
    async def cancel_reader() -> None:
        started = asyncio.Event()

        async def listen():
            async for _ in reader.stream(LONG):
                started.set()

        task = asyncio.create_task(listen())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)

    asyncio.run(cancel_reader())
    assert stream_threads() == []


def test_concurrent_tasks_and_threads_share_one_reader_without_mixing(reader):
    texts = [
        "First, a short sentence.",
        "Second, something else entirely, and a little longer. It has two sentences.",
        "## Third\n\nA heading, then a paragraph read by another task at the same time.",
        "Fourth: 12 apples cost $3.20 on 4 July 2021.",
    ]
    alone = [reader.synthesize(t) for t in texts]

    async def all_at_once():
        async def one(text):
            chunks = [c async for c in reader.stream(text)]
            return np.concatenate([c.samples for c in chunks]), [w for c in chunks for w in c.words]

        return await asyncio.gather(*(one(t) for t in texts))

    for expected, (samples, words) in zip(alone, asyncio.run(all_at_once())):
        assert samples.shape == expected.samples.shape and np.allclose(samples, expected.samples, atol=1e-4)
        assert words == list(expected.words)

    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        in_threads = list(pool.map(reader.synthesize, texts * 2))
    for expected, got in zip(alone * 2, in_threads):
        assert got.samples.shape == expected.samples.shape and np.allclose(got.samples, expected.samples, atol=1e-4)
        assert got.words == expected.words and got.sentences == expected.sentences


def test_threads_splitting_documents_at_once_get_their_own_sentences(reader):
    """Sentence segmentation under heavy thread switching: a segmenter shared between readings mixed
    their texts (pysbd keeps the text being segmented on itself)."""
    texts = [
        " ".join(f"In {year} the {name} council met {n} times. Mr. Lee said it was {adjective}, e.g. on Jan. {n}." for n in range(1, 25))
        for year, name, adjective in [(1901, "city", "fine"), (1952, "county", "slow"), (1999, "harbour", "late"), (2020, "river", "odd")]
    ]
    alone = [[(s.start, s.end) for s in reader.analyzer.split(t).sentences] for t in texts]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            together = list(pool.map(lambda t: [(s.start, s.end) for s in reader.analyzer.split(t).sentences], texts * 3))
    finally:
        sys.setswitchinterval(interval)
    assert together == alone * 3


def test_synthesize_inside_a_running_event_loop(reader):
    async def from_async_code():
        return reader.synthesize("Called from async code.")

    assert asyncio.run(from_async_code()).seconds > 0.5


def test_a_corrupt_g2p_model_fails_when_the_reader_starts(models_copy, corrupt):
    corrupt(models_copy / "g2p" / "g2p.onnx")
    start = time.monotonic()
    with pytest.raises(ModelError, match=r"G2P model file does not match its manifest .*g2p\.onnx") as error:
        Reader(models=models_copy)
    assert "\n" not in str(error.value) and time.monotonic() - start < 10


def test_a_named_prosody_mode_with_a_broken_model_is_an_error_and_the_default_still_reads(models_copy, corrupt):
    from reader.prosody_prediction import DEFAULT_PROSODY

    corrupt(models_copy / "bert" / "sentence_encoder.onnx")
    with pytest.raises(ModelError, match=r"prosody bert: BERT sentence encoder unusable .*sentence_encoder\.onnx"):
        Reader(models=models_copy, prosody="bert")
    corrupt(models_copy / "prosody_bank" / "acoustic_embeddings.npy")
    with pytest.raises(ModelError, match=r"prosody syntactic: prosody bank unusable .*acoustic_embeddings\.npy"):
        Reader(models=models_copy, prosody="syntactic")
    assert Reader(models=models_copy, threads=1).prosody_mode == DEFAULT_PROSODY


def test_one_prosody_default_for_the_api_the_command_line_and_audiobooks(reader):
    from reader.audiobook import RenderOptions
    from reader.cli import build_parser
    from reader.prosody_prediction import DEFAULT_PROSODY

    # None everywhere means "the Reader's default", which is DEFAULT_PROSODY
    assert RenderOptions().prosody is None
    for command in ("play", "render"):
        assert build_parser().parse_args([command, "in.txt", "-o", "out.wav"]).prosody is None
    assert reader.prosody_mode == DEFAULT_PROSODY


def test_manifests_of_every_model_kind_list_their_files_with_bytes_and_sha256():
    from reader.models import reading_models
    from reader.paths import models_dir
    from reader.prosody_selection import BANK_FORMAT_VERSION, BERT_FORMAT_VERSION
    from reader_runtime.acoustic import ACOUSTIC_FORMAT_VERSION
    from reader_runtime.manifest import read_manifest

    kinds = [(kind.name, kind.location, kind.format_version) for kind in reading_models(models_dir())]
    kinds += [("BERT", models_dir() / "bert", BERT_FORMAT_VERSION), ("prosody bank", models_dir() / "prosody_bank", BANK_FORMAT_VERSION)]
    for name, location, version in kinds:
        manifest = read_manifest(location, name, version)
        if name != "vocoder":  # the vocoder's exporter records its one graph as graph + graph_sha256
            assert all(entry.bytes for entry in manifest.files.values()), name
    acoustic = read_manifest(models_dir() / "acoustic", "acoustic", ACOUSTIC_FORMAT_VERSION)
    assert {"text_to_mel", "aligner"} <= set(acoustic.files)  # the aligner ships in the acoustic model


def test_a_vocoder_for_other_features_than_the_acoustic_model_is_refused(models_copy):
    manifest_path = models_copy / "acoustic" / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["features"]["f_max"] = 11025.0  # an acoustic model made for another mel band
    manifest_path.unlink()
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ModelError, match=r"vocoder .* was made for other features than the acoustic model") as error:
        Reader(models=models_copy)
    assert "\n" not in str(error.value)
