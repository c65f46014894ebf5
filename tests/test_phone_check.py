"""The transcript check by phone recognition (runtime/phone_check.py) with the shipped graph, on real held-out clips."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import soxr

from reader.errors import ModelError
from reader.model_inputs import token_inputs, transcript_to_inputs
from reader.paths import data_dir, models_dir
from reader.transfer import ProsodyTransfer
from reader_runtime.acoustic import AcousticModel, TokenInputs
from reader_runtime.aligner import RuntimeAligner
from reader_runtime.errors import RuntimeModelError
from reader_runtime.features import log_mel_spectrogram
from reader_runtime.manifest import record_files
from reader_runtime.phone_check import RuntimePhoneCheck, ctc_negative_log_likelihood, edit_distance, greedy_phones, heard_frames, score_kinds
from reader_runtime.session import SessionOptions

needs_data = pytest.mark.skipif(not (data_dir() / "splits.json").is_file(), reason="speech data (../shared/data) not present")
ONE_THREAD = SessionOptions(intra_op_threads=1, inter_op_threads=1)
# Test-split clips (never trained on) and another test clip of the same speaker, whose transcript is
# wrong for the first: the two training voices and an unseen accented speaker (16 kHz).
CLIPS = {
    "ljspeech_longform": ("LJ002-0151", "LJ002-0152"),
    "kathleen_arctic": ("arctic_b0490", "arctic_b0491"),
    "speechocean762_adults": ("010290003", "010290066"),
}


@pytest.fixture(scope="module")
def acoustic() -> AcousticModel:
    return AcousticModel.load(models_dir() / "acoustic", ONE_THREAD)


@pytest.fixture(scope="module")
def phone_check(acoustic) -> RuntimePhoneCheck:
    return RuntimePhoneCheck(acoustic)


@pytest.fixture(scope="module")
def aligner(acoustic) -> RuntimeAligner:
    return RuntimeAligner(acoustic)


def check(phone_check, aligner, tokens: TokenInputs, log_mel: np.ndarray):
    """The shipped check as reader.transfer runs it (with the aligner's cost of the transcript, which a score may add)."""
    return phone_check.check(tokens, log_mel, aligner.align(tokens, log_mel).cost)


def transcript(corpus: str, clip_id: str) -> str:
    rows = (data_dir() / corpus / "metadata.csv").read_text(encoding="utf-8").splitlines()
    return next(line.split("|", 2)[2] for line in rows if line.startswith(clip_id + "|"))


def log_mel_of(corpus: str, clip_id: str) -> np.ndarray:
    samples, rate = sf.read(str(data_dir() / corpus / "wavs" / f"{clip_id}.flac"), dtype="float32")
    return log_mel_spectrogram(soxr.resample(samples, rate, 22050) if rate != 22050 else samples)


def tokens_of(text: str, analyzer) -> TokenInputs:
    return token_inputs(transcript_to_inputs(text, analyzer))


def test_ctc_likelihood_sums_every_path_that_collapses_to_the_phones():
    rng = np.random.default_rng(0)
    log_probs = np.log(rng.dirichlet(np.ones(3), size=5))  # 5 frames, blank + 2 phones
    phones = np.array([1, 1])

    def collapse(path):
        merged = [p for i, p in enumerate(path) if i == 0 or p != path[i - 1]]
        return [p for p in merged if p != 0]

    total = sum(np.exp(sum(log_probs[t, p] for t, p in enumerate(path))) for path in itertools.product(range(3), repeat=5) if collapse(path) == [1, 1])
    assert ctc_negative_log_likelihood(log_probs, phones) == pytest.approx(-np.log(total))
    assert ctc_negative_log_likelihood(log_probs[:2], np.array([1, 1, 2])) == np.inf  # 3 phones need 4 frames (a blank between the 1s)


def test_greedy_phones_and_edit_distance():
    best = np.array([0, 1, 1, 0, 1, 2, 2, 0])
    assert greedy_phones(np.eye(3)[best]).tolist() == [1, 1, 2]
    assert edit_distance(np.array([1, 2, 3, 4]), np.array([1, 3, 4, 5])) == 2  # drop 2, add 5
    assert edit_distance(np.array([], np.int64), np.array([7, 8])) == 2


def test_a_transcript_that_is_the_recognisers_best_path_scores_about_zero():
    log_probs = np.log(np.full((6, 4), 0.01))
    for t, phone in enumerate([0, 2, 2, 0, 3, 0]):
        log_probs[t, phone] = np.log(0.97)
    scores = score_kinds(log_probs, np.array([2, 3]))
    assert scores["phone_error_rate"] == 0 and abs(scores["ctc_gap"]) < 0.05  # below 0 by the other paths' share
    assert score_kinds(log_probs, np.array([1, 3]))["ctc_gap"] > 1  # a phone the frames do not hold


def test_heard_frames_span_the_first_to_the_last_phone_on_the_log_mel_grid():
    best = np.array([0, 0, 0, 2, 0, 1, 1, 0, 0])  # recogniser frames, each over 2 log-mel frames
    assert heard_frames(np.eye(3)[best], 17) == (6, 14)
    assert heard_frames(np.eye(3)[[0, 0, 0, 0, 0, 0, 0, 0, 2]], 17) == (16, 17)  # the last frame covers one log-mel frame
    assert heard_frames(np.eye(3)[np.zeros(9, np.int64)], 17) is None  # only blanks: nothing heard


@needs_data
@pytest.mark.parametrize("corpus", CLIPS)
def test_right_transcript_is_accepted_and_another_sentence_refused(phone_check, aligner, analyzer, corpus):
    clip_id, other_id = CLIPS[corpus]
    log_mel = log_mel_of(corpus, clip_id)
    right = check(phone_check, aligner, tokens_of(transcript(corpus, clip_id), analyzer), log_mel)
    wrong = check(phone_check, aligner, tokens_of(transcript(corpus, other_id), analyzer), log_mel)
    assert right.matches_transcript and right.score <= right.score_threshold
    assert not wrong.matches_transcript and wrong.score > right.score
    assert right.phone_error_rate < wrong.phone_error_rate - 0.2  # the recogniser hears the sentence


def test_noise_is_refused_whatever_the_transcript(phone_check, aligner, analyzer):
    noise = 0.1 * np.random.default_rng(0).standard_normal(3 * 22050).astype(np.float32)
    result = check(phone_check, aligner, tokens_of(transcript("kathleen_arctic", "arctic_b0490"), analyzer), log_mel_spectrogram(noise))
    assert not result.matches_transcript


SENTENCE = "The quick brown fox jumped over the lazy dog near the bank of the river."


@pytest.mark.parametrize("kind", ["brown", "pink", "hum", "music", "clicks", "room", "sweep", "mixture", "bells", "bursts"])
def test_generated_nonspeech_is_refused_with_a_real_sentence(phone_check, aligner, analyzer, kind):
    """Noises, hum, music, clicks, a quiet room, a siren, and kinds the recogniser never trained on
    (reader/training/acoustic/nonspeech.py; seeds other than the training run's and the development set's)."""
    from reader.training.acoustic.nonspeech import synthesize

    for seed, seconds in ((11, 3.0), (12, 6.0)):
        audio = synthesize(kind, np.random.default_rng(seed), seconds)
        result = check(phone_check, aligner, tokens_of(SENTENCE, analyzer), log_mel_spectrogram(audio))
        assert not result.matches_transcript, (kind, seconds, result.score)


def with_score(tmp_path, score: str) -> RuntimePhoneCheck:
    folder = copy_of_acoustic(tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["phone_check"]["score"] = score
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return RuntimePhoneCheck(AcousticModel.load(folder, ONE_THREAD))


def test_only_a_score_with_the_aligners_term_needs_the_alignment_cost(tmp_path, analyzer):
    tokens, log_mel = tokens_of("a short sentence.", analyzer), np.zeros((200, 80), np.float32)
    summed = with_score(tmp_path / "summed", "ctc_gap_per_phone+alignment_cost")
    assert summed.needs_alignment_cost
    with pytest.raises(ValueError, match="alignment cost"):
        summed.check(tokens, log_mel)
    alone = with_score(tmp_path / "alone", "ctc_gap_per_phone")
    assert not alone.needs_alignment_cost
    assert alone.check(tokens, log_mel).score == pytest.approx(summed.check(tokens, log_mel, 1.5).score - 1.5)


def copy_of_acoustic(tmp_path):
    folder = tmp_path / "acoustic"
    shutil.copytree(models_dir() / "acoustic", folder)
    return folder


def test_corrupt_phone_recognizer_is_refused_with_one_line(tmp_path):
    folder = copy_of_acoustic(tmp_path)
    graph = folder / "phone_recognizer.onnx"
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 3])
    with pytest.raises(RuntimeModelError, match="truncated or corrupt"):
        AcousticModel.load(folder, ONE_THREAD)
    record_files(folder)  # a manifest that vouches for the broken file: onnxruntime cannot read it
    with pytest.raises(RuntimeModelError, match="phone_recognizer.onnx") as error:
        RuntimePhoneCheck(AcousticModel.load(folder, ONE_THREAD))
    assert "\n" not in str(error.value)


def test_model_without_phone_recognizer_is_reported(tmp_path, analyzer):
    folder = copy_of_acoustic(tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"].pop("phone_recognizer")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RuntimeModelError, match="has no phone recognizer.*re-export"):
        RuntimePhoneCheck(AcousticModel.load(folder, ONE_THREAD))
    with pytest.raises(ModelError, match="has no phone recognizer"):  # a manifest with the check's block but no graph
        ProsodyTransfer(AcousticModel.load(folder, ONE_THREAD), analyzer)
