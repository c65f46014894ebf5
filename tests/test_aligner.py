"""Runtime forced alignment (runtime/aligner.py) with the shipped acoustic model's aligner graph, on real clips."""

from __future__ import annotations

import json
import time

import numpy as np
import parselmouth
import pytest
import soundfile as sf

from reader.model_inputs import SYMBOL_TO_ID, token_inputs, transcript_to_inputs
from reader.paths import data_dir, models_dir
from reader_runtime.acoustic import AcousticModel, TokenInputs
from reader_runtime.aligner import RuntimeAligner, alignment_of
from reader_runtime.errors import RuntimeModelError
from reader_runtime.features import f0_on_frame_grid, log_mel_spectrogram
from reader_runtime.session import SessionOptions

needs_data = pytest.mark.skipif(not (data_dir() / "splits.json").is_file(), reason="speech data (../shared/data) not present")
# Held-out test clips of both speakers: the mismatch threshold was calibrated on the valid clips.
CLIPS = {"ljspeech_longform": ("LJ002-0151", "LJ002-0152"), "kathleen_arctic": ("arctic_b0490", "arctic_b0491")}
VOICELESS = ("P", "T", "K", "F", "TH", "S", "SH", "HH", "CH")


@pytest.fixture(scope="module")
def aligner() -> RuntimeAligner:
    return RuntimeAligner(AcousticModel.load(models_dir() / "acoustic", SessionOptions(intra_op_threads=1, inter_op_threads=1)))


def transcript(corpus: str, clip_id: str) -> str:
    rows = (data_dir() / corpus / "metadata.csv").read_text(encoding="utf-8").splitlines()
    return next(line.split("|", 2)[2] for line in rows if line.startswith(clip_id + "|"))


def audio(corpus: str, clip_id: str) -> np.ndarray:
    samples, _ = sf.read(str(data_dir() / corpus / "wavs" / f"{clip_id}.flac"), dtype="float32")
    return samples


def tokens_of(text: str, analyzer) -> TokenInputs:
    return token_inputs(transcript_to_inputs(text, analyzer))


@needs_data
@pytest.mark.parametrize("corpus", CLIPS)
def test_real_clip_aligns_to_its_transcript(aligner, analyzer, corpus):
    clip_id = CLIPS[corpus][0]
    log_mel = log_mel_spectrogram(audio(corpus, clip_id))
    tokens = tokens_of(transcript(corpus, clip_id), analyzer)
    alignment = aligner.align(tokens, log_mel)
    assert alignment.durations.dtype == np.int64 and alignment.durations.shape == (len(tokens),)
    assert alignment.durations.sum() == log_mel.shape[0] and alignment.durations.min() >= 1
    assert 0 <= alignment.cost <= alignment.cost_threshold and alignment.matches_transcript
    # Plausible, not just consistent: vowels get voiced frames (Praat), voiceless consonants mostly
    # unvoiced ones. (Measured, step 5,492: vowels 0.88-1.0 voiced, voiceless 0.09-0.38; an even split
    # of the frames over the tokens gives about the same share to both.)
    pitch = parselmouth.Sound(audio(corpus, clip_id).astype(np.float64), 22050).to_pitch_ac(time_step=256 / 22050, pitch_floor=65.0, pitch_ceiling=600.0)
    voiced = f0_on_frame_grid(pitch.xs(), pitch.selected_array["frequency"], log_mel.shape[0]) > 0
    token_of_frame = np.repeat(np.arange(len(tokens)), alignment.durations)
    vowel = tokens.stress_ids[token_of_frame] > 0
    voiceless = np.isin(tokens.symbol_ids[token_of_frame], [SYMBOL_TO_ID[p] for p in VOICELESS])
    assert voiced[vowel].mean() > 0.8 and voiced[vowel].mean() > voiced[voiceless].mean() + 0.4


@needs_data
@pytest.mark.parametrize("corpus", CLIPS)
def test_wrong_transcript_is_flagged(aligner, analyzer, corpus):
    clip_id, other_id = CLIPS[corpus]
    log_mel = log_mel_spectrogram(audio(corpus, clip_id))
    alignment = aligner.align(tokens_of(transcript(corpus, other_id), analyzer), log_mel)
    assert alignment.cost > alignment.cost_threshold and not alignment.matches_transcript
    assert alignment.durations.sum() == log_mel.shape[0]


def test_cost_averages_the_frame_mean_and_the_token_mean():
    # The last frame prefers token 0 by 2 nats, but the path must end on token 1: frame costs 0, 0, 0, 2
    # (mean 0.5), token costs 0 and 2 (mean 1.0), so a token's miss counts as a token, not as a frame.
    log_probs = np.array([[0.0, -5.0], [0.0, -5.0], [0.0, -5.0], [0.0, -2.0]])
    alignment = alignment_of(log_probs, cost_threshold=1.0)
    assert alignment.durations.tolist() == [3, 1]
    assert alignment.cost == pytest.approx(0.75)
    assert alignment.mean_nll == pytest.approx(0.5)


@needs_data
def test_recording_too_short_for_its_transcript_does_not_match(aligner, analyzer):
    tokens = tokens_of(transcript("kathleen_arctic", "arctic_b0490"), analyzer)
    alignment = aligner.align(tokens, log_mel_spectrogram(audio("kathleen_arctic", "arctic_b0490"))[: len(tokens) - 1])
    assert not alignment.matches_transcript and alignment.cost == np.inf


@needs_data
def test_half_minute_of_consecutive_clips_aligns_quickly_and_matches(aligner, analyzer):
    ids = json.loads((data_dir() / "splits.json").read_text())["ljspeech_longform"]["test"][:5]  # ~27 s
    log_mel = log_mel_spectrogram(np.concatenate([audio("ljspeech_longform", i) for i in ids]))
    tokens = tokens_of(" ".join(transcript("ljspeech_longform", i) for i in ids), analyzer)
    start = time.perf_counter()
    alignment = aligner.align(tokens, log_mel)
    elapsed = time.perf_counter() - start
    assert log_mel.shape[0] > 2000 and alignment.durations.sum() == log_mel.shape[0]
    assert alignment.matches_transcript  # the mismatch statistic does not grow with the clip's length
    assert elapsed < 1.0, f"{elapsed:.2f} s to align {log_mel.shape[0]} frames"


def test_model_without_aligner_is_reported(tmp_path):
    shipped = models_dir() / "acoustic"
    manifest = json.loads((shipped / "manifest.json").read_text())
    manifest.pop("aligner", None)
    manifest["files"].pop("aligner", None)
    for entry in manifest["files"].values():
        (tmp_path / entry["file"]).symlink_to(shipped / entry["file"])
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RuntimeModelError, match="has no aligner.*re-export"):
        RuntimeAligner(AcousticModel.load(tmp_path))
