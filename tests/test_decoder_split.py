"""The acoustic graph cut before its frame decoder: a sentence decoded in parts is the sentence decoded
whole, the shipped cut graphs are what the command makes from the shipped text_to_mel, cut graphs from
another text_to_mel are refused, and a model without them reads the same audio."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil

import numpy as np
import pytest

from reader import Reader
from reader.model_inputs import token_inputs
from reader.paths import models_dir
from reader.transfer import transcript_tokens
from reader_runtime.acoustic import AcousticModel
from reader_runtime.errors import RuntimeModelError
from reader_runtime.session import SessionOptions

ONE_THREAD = SessionOptions(intra_op_threads=1, inter_op_threads=1)
LONG_SENTENCE = (
    "A first sentence that goes on for a while, through several clauses and commas, so that its frames "
    "far outnumber those of the stream's first chunk and the piece after it."
)


def test_a_sentence_decoded_in_parts_is_the_sentence_decoded_whole(analyzer):
    model = AcousticModel.load(models_dir() / "acoustic", ONE_THREAD)
    tokens = token_inputs(transcript_tokens(LONG_SENTENCE, analyzer))
    for voice in ("LJ", "kathleen"):
        speaker = model.speaker(voice)
        whole = model.synthesize(tokens, speaker, postnet=False)
        assert whole.features is None and whole.frames == len(whole.mel) == whole.durations.sum() > 300
        for first in (0, 1, model.decoder_context, 159, whole.frames - 1, whole.frames + 5):  # 0: durations and F0 only
            part = model.synthesize(tokens, speaker, postnet=False, first_frames=first)
            assert part.frames == whole.frames and np.array_equal(part.durations, whole.durations) and np.array_equal(part.f0, whole.f0)
            assert len(part.mel) == min(first, whole.frames) and (part.features is None) == (first >= whole.frames)
            steps = [part]
            for end in (first + 3, first + 80, None):
                steps.append(model.decode_more(steps[-1], end))
            assert steps[-1].features is None
            np.testing.assert_allclose(steps[-1].mel, whole.mel, atol=1e-5)
    # One frame less context than the decoder's reach is not the same sentence.
    model.decoder_context -= 1
    part = model.decode_more(model.synthesize(tokens, speaker, postnet=False, first_frames=100))
    assert np.abs(part.mel - whole.mel).max() > 1e-5


def test_the_shipped_cut_graphs_are_what_the_command_makes(tmp_path):
    from reader.training.acoustic.decoder_split import main

    acoustic = tmp_path / "acoustic"
    shutil.copytree(models_dir() / "acoustic", acoustic)
    for name in ("text_to_frames.onnx", "mel_decoder.onnx"):
        (acoustic / name).unlink()
    main([str(acoustic)])
    made, shipped = (json.loads((folder / "manifest.json").read_text()) for folder in (acoustic, models_dir() / "acoustic"))
    assert made["decoder"] == shipped["decoder"] and made["decoder"]["context_frames"] == 28  # 2 x (1 + 2 + 4) x 2: kernel 5, dilations 1, 2, 4 twice
    for name in ("text_to_frames", "mel_decoder"):
        assert made["files"][name] == shipped["files"][name]


def test_cut_graphs_of_another_text_to_mel_are_refused(tmp_path):
    acoustic = tmp_path / "acoustic"
    shutil.copytree(models_dir() / "acoustic", acoustic)
    manifest = json.loads((acoustic / "manifest.json").read_text())
    for decoder, message in (({**manifest["decoder"], "text_to_mel_sha256": "0" * 64}, "not cut from this text_to_mel"), ({**manifest["decoder"], "context_frames": 0}, "context_frames")):
        (acoustic / "manifest.json").write_text(json.dumps({**manifest, "decoder": decoder}))
        with pytest.raises(RuntimeModelError, match=message) as error:
            AcousticModel.load(acoustic, ONE_THREAD)
        assert "decoder_split" in str(error.value) and "\n" not in str(error.value)


def test_a_model_without_the_cut_graphs_reads_the_same_audio(models_copy):
    acoustic = models_copy / "acoustic"
    manifest = json.loads((acoustic / "manifest.json").read_text())
    for name in ("text_to_frames", "mel_decoder"):
        (acoustic / manifest["files"].pop(name)["file"]).unlink()
    del manifest["decoder"]
    (acoustic / "manifest.json").unlink()  # a link into exported_models: replace it, never write through it
    (acoustic / "manifest.json").write_text(json.dumps(manifest))

    async def read(reader: Reader, speed: float | None) -> np.ndarray:
        async with contextlib.aclosing(reader.stream(LONG_SENTENCE + " And a short one.", speed=speed)) as chunks:
            return np.concatenate([chunk.samples async for chunk in chunks])

    readers = Reader(models=models_dir(), threads=1), Reader(models=models_copy, threads=1)
    for speed in (None, 1.3):  # 1.3: a first pass for the durations, then the sentence at its new pace
        with_cut, without = (asyncio.run(read(reader, speed)) for reader in readers)
        assert len(with_cut) == len(without) > 22_050 * 4
        np.testing.assert_allclose(with_cut, without, atol=1e-5)
