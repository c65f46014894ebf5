"""The studio vocoder (issue 27): exact streaming, the float16-stored graph, the choice and its fallbacks."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from reader.cli import build_parser
from reader.engine import Reader
from reader.errors import ModelError
from reader.paths import models_dir
from reader import vocoders
from reader.vocoders import STUDIO_FOLDER, VOCODERS, available_vocoders
from reader_runtime.stream import FIRST_CHUNK_AUDIO_FRAMES, decode
from reader_runtime.studio_vocoder import StudioVocoder

TEXT = "The committee met on Tuesday, after a long delay. Its report follows."
STREAM_LIMIT_DB = -60.0

pytestmark = pytest.mark.skipif(not (models_dir() / STUDIO_FOLDER / "manifest.json").is_file(), reason="no studio vocoder in the models")


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader(vocoder="studio", threads=1)


@pytest.fixture(scope="module")
def engine_mel(reader) -> np.ndarray:
    return np.concatenate([decode(reader.acoustic, request).mel for request in reader.requests(TEXT)])


@pytest.fixture(scope="module")
def whole(reader, engine_mel) -> np.ndarray:
    return reader.vocoder.synthesize(engine_mel)


def error_db(audio: np.ndarray, reference: np.ndarray) -> float:
    """The largest sample difference in dB re the reference's peak."""
    return float(20 * np.log10(max(np.abs(audio - reference).max(), 1e-12) / np.abs(reference).max()))


@pytest.mark.parametrize("chunks", [[FIRST_CHUNK_AUDIO_FRAMES + 44, 90, 17, 200], [7] * 12, [1, 300]])
def test_streamed_audio_equals_whole_synthesis_within_60_db(reader, engine_mel, whole, chunks):
    studio = reader.vocoder
    stream, pieces, start = studio.stream(), [], 0
    for size in chunks:
        pieces.append(stream.push(engine_mel[start : start + size]))
        start += size
    pieces += [stream.push(engine_mel[start:]), stream.finish()]
    streamed = np.concatenate(pieces)
    assert streamed.shape == whole.shape == (len(engine_mel) * studio.spec.features.hop_length,)
    assert error_db(streamed, whole) < STREAM_LIMIT_DB


def test_reader_streams_studio_audio_in_phrase_chunks_with_a_small_first_chunk(reader, whole):
    import asyncio

    async def chunks():
        return [chunk.samples async for chunk in reader.stream(TEXT)]

    pieces = asyncio.run(chunks())
    first_audio_frames = len(pieces[0]) / reader.vocoder.spec.features.hop_length
    assert 0 < first_audio_frames <= FIRST_CHUNK_AUDIO_FRAMES + 1 and len(pieces) > 3
    assert error_db(np.concatenate(pieces), whole) < STREAM_LIMIT_DB


def test_studio_output_is_the_fast_vocoders_length_and_not_its_copy(reader, engine_mel, whole):
    studio, fast = whole, reader.fast_vocoder.synthesize(engine_mel)
    assert studio.shape == fast.shape and np.all(np.isfinite(studio)) and np.abs(studio).max() <= 1.0
    assert np.abs(studio - fast).max() > 0.01  # HiFi-GAN's own waveform, not a pass-through


def test_the_shipped_graph_stores_float16_weights_and_computes_in_float32(reader):
    model = onnx.load(str(models_dir() / STUDIO_FOLDER / "generator.onnx"))
    big = [t for t in model.graph.initializer if np.prod(t.dims) >= 16]
    assert big and all(t.data_type == onnx.TensorProto.FLOAT16 for t in big)
    casts = [n for n in model.graph.node if n.op_type == "Cast"]
    assert len(casts) == len(big) and all(a.i == onnx.TensorProto.FLOAT for n in casts for a in n.attribute if a.name == "to")
    audio = reader.vocoder.generate(np.full((30, 80), -6.0, np.float32))
    assert audio.dtype == np.float32 and audio.shape == (30 * 256,)


def models_with_studio(tmp_path: Path, damage: str) -> Path:
    """A models folder that links the shipped models, with the studio vocoder missing or corrupt."""
    folder = tmp_path / "models"
    folder.mkdir()
    for entry in models_dir().iterdir():
        if entry.name != STUDIO_FOLDER:
            (folder / entry.name).symlink_to(entry)
    if damage == "corrupt":
        studio = folder / STUDIO_FOLDER
        studio.mkdir()
        (studio / "manifest.json").write_bytes((models_dir() / STUDIO_FOLDER / "manifest.json").read_bytes())
        graph = bytearray((models_dir() / STUDIO_FOLDER / "generator.onnx").read_bytes())
        graph[len(graph) // 2] ^= 0xFF
        (studio / "generator.onnx").write_bytes(bytes(graph))
    return folder


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_broken_studio_vocoder_falls_back_to_fast_by_default_and_fails_when_named(tmp_path, caplog, monkeypatch, damage):
    folder = models_with_studio(tmp_path, damage)
    assert available_vocoders(folder) == ["fast"] and available_vocoders(models_dir()) == list(VOCODERS)
    monkeypatch.setattr(vocoders, "DEFAULT_VOCODER", "studio")  # the fallback is the default's, whichever it is
    with caplog.at_level(logging.WARNING, logger="reader.vocoders"):
        fallback = Reader(models=folder)
    assert fallback.vocoder_name == "fast" and fallback.vocoder is fallback.fast_vocoder
    warnings = [r.getMessage() for r in caplog.records if r.name == "reader.vocoders"]
    assert len(warnings) == 1 and "studio vocoder cannot be used" in warnings[0] and "\n" not in warnings[0]
    with pytest.raises(ModelError) as error:
        Reader(models=folder, vocoder="studio")
    assert "studio vocoder" in str(error.value) and "\n" not in str(error.value)


def test_cli_takes_a_vocoder_name_and_lists_the_choices_for_an_unknown_one(capsys):
    parser = build_parser()
    for command in (["play", "doc.txt"], ["render", "doc.txt", "-o", "out.wav"], ["transfer", "rec.wav", "--text", "Hi.", "-o", "out.wav"]):
        assert parser.parse_args([*command, "--vocoder", "studio"]).vocoder == "studio"
        assert parser.parse_args([*command, "--vocoder", "fast"]).vocoder == "fast"
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([*command, "--vocoder", "hifi"])
        assert exit_.value.code == 2 and "choose from 'studio', 'fast'" in capsys.readouterr().err


def test_cli_named_studio_with_a_corrupt_model_fails_with_one_line(tmp_path):
    folder = models_with_studio(tmp_path, "corrupt")
    (tmp_path / "doc.txt").write_text("Hello there.\n")
    env = {**os.environ, "READER_MODELS_DIR": str(folder)}
    done = subprocess.run([sys.executable, "-m", "reader", "render", str(tmp_path / "doc.txt"), "-o", str(tmp_path / "out.wav"), "--vocoder", "studio"],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("reader: error: studio vocoder") and not (tmp_path / "out.wav").exists()


def test_studio_sits_on_the_fast_vocoder_and_looks_further_ahead(reader):
    assert isinstance(reader.vocoder, StudioVocoder) and reader.vocoder.fast is reader.fast_vocoder
    assert reader.vocoder.lookahead_frames > reader.fast_vocoder.lookahead_frames


def test_the_first_phrase_ramps_up_from_a_small_chunk_for_studio_only(reader):
    from reader_runtime.stream import first_cuts

    fast, studio = reader.fast_vocoder, reader.vocoder
    assert first_cuts(fast.lookahead_frames, fast.ramp_chunks, 500) == [fast.lookahead_frames + FIRST_CHUNK_AUDIO_FRAMES]
    cuts = first_cuts(studio.lookahead_frames, studio.ramp_chunks, 500)
    assert np.diff(cuts).tolist() == [20, 30, 45, 68, 102] and cuts[0] == studio.lookahead_frames + FIRST_CHUNK_AUDIO_FRAMES
    assert first_cuts(studio.lookahead_frames, studio.ramp_chunks, cuts[2]) == cuts[:2]


def test_playback_switches_a_machine_too_slow_for_studio_to_fast_once(monkeypatch):
    from reader import vocoders

    player = Reader(vocoder="studio", threads=1)
    monkeypatch.setattr(vocoders, "REAL_TIME_SHARE", 1e9)  # any machine keeps up
    assert not player.keep_real_time() and isinstance(player.vocoder, StudioVocoder)
    monkeypatch.setattr(vocoders, "REAL_TIME_SHARE", 0.0)  # no machine keeps up
    assert player.keep_real_time() and player.vocoder is player.fast_vocoder and player.vocoder_name == "fast"
    assert not player.keep_real_time()  # already fast: the CLI says it once


def test_the_generator_sounds_the_same_on_openvino_and_onnxruntime_and_falls_back_without_openvino(reader, engine_mel, monkeypatch):
    from reader_runtime.session import load_openvino_session, load_session

    graph = models_dir() / STUDIO_FOLDER / "generator.onnx"
    studio = reader.vocoder
    mel = studio.log_mel(np.pad(reader.fast_vocoder.synthesize(engine_mel[:120]), 384, mode="reflect"))[None]
    reference = load_session(graph).run(None, {"log_mel": mel})[0][0]
    openvino_session = load_openvino_session(graph)
    if openvino_session is not None:
        assert error_db(openvino_session.run(None, {"log_mel": mel})[0][0], reference) < STREAM_LIMIT_DB
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if the `studio` extra were not installed
    assert load_openvino_session(graph) is None
