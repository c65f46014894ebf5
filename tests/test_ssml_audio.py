"""SSML and pause settings in rendered audio, with the real models: break times are silences of that
length, prosody rate shortens speech, --sentence-pause sets the gap, volume is gain, <mark>s and
speech marks fall where they should, and generated SSML never sends times backwards."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from test_ssml import SSML_BODIES

from reader.cli import main
from reader.engine import Audio, Reader
from reader.marks import SpeechMarks

SENTENCE = "The committee will publish its findings on the economy next week."


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader(threads=1)


def silent_runs(samples: np.ndarray, sample_rate: int, floor_db: float = -40.0) -> list[tuple[float, float]]:
    """(start, end) seconds of the stretches whose 10 ms RMS is `floor_db` below the loudest frame."""
    hop = sample_rate // 100
    frames = samples[: len(samples) // hop * hop].reshape(-1, hop)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) + 1e-12
    quiet = 20 * np.log10(rms / rms.max()) < floor_db
    runs, start = [], None
    for i, q in enumerate([*quiet, False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            runs.append((start / 100, i / 100))
            start = None
    return runs


def silent_between(samples: np.ndarray, sample_rate: int, after: float, before: float) -> bool:
    """Whether the audio from `after` to `before` (the end of one word, the start of the next) is silent."""
    return any(a <= after + 0.02 and before - 0.02 <= b for a, b in silent_runs(samples, sample_rate))


def word(audio, text: str, written: str):
    return next(w for w in audio.words if text[w.start_char : w.end_char] == written)


def test_break_time_is_that_silence(reader: Reader) -> None:
    text = '<speak>Good morning <break time="1500ms"/> everyone, here is the news.</speak>'
    for speed in (1.0, 2.0):  # an explicit time holds at any speed
        audio = Audio(*_collected(reader, text, speed))
        morning, everyone = word(audio, text, "morning"), word(audio, text, "everyone")
        assert abs(everyone.start - morning.end - 1.5) <= 0.1, (speed, morning, everyone)
        assert silent_between(audio.samples, audio.sample_rate, morning.end, everyone.start)


def test_prosody_rate_shortens_speech(reader: Reader) -> None:
    plain = reader.synthesize(f"<speak>{SENTENCE}</speak>")
    fast = reader.synthesize(f'<speak><prosody rate="150%">{SENTENCE}</prosody></speak>')
    ratio = (fast.words[-1].end - fast.words[0].start) / (plain.words[-1].end - plain.words[0].start)
    assert abs(ratio - 1 / 1.5) <= 0.1 / 1.5, ratio


def test_volume_is_gain_and_expletives_are_bleeped(reader: Reader) -> None:
    plain_text = "<speak>Well, its findings were heck of a surprise.</speak>"
    text = '<speak>Well, <prosody volume="-10dB">its findings</prosody> were <say-as interpret-as="expletive">heck</say-as> of a surprise.</speak>'
    plain, shaped = reader.synthesize(plain_text), reader.synthesize(text)
    assert len(plain.samples) == len(shaped.samples)  # volume changes no duration
    sr = plain.sample_rate

    def rms(audio, source, written):
        w = word(audio, source, written)
        return float(np.sqrt(np.mean(audio.samples[int((w.start + 0.03) * sr) : int((w.end - 0.03) * sr)] ** 2)))

    assert 20 * np.log10(rms(shaped, text, "findings") / rms(plain, plain_text, "findings")) == pytest.approx(-10, abs=1.0)
    # the expletive is a 1 kHz tone where the word was: nearly all its energy at the tone's frequency
    heck = word(shaped, text, "heck")
    bleep = shaped.samples[int((heck.start + 0.03) * sr) : int((heck.end - 0.03) * sr)]
    spectrum = np.abs(np.fft.rfft(bleep * np.hanning(len(bleep)))) ** 2
    tone = np.abs(np.fft.rfftfreq(len(bleep), 1 / sr) - 1000) < 30
    assert spectrum[tone].sum() > 0.99 * spectrum.sum()
    assert float(np.sqrt(np.mean(bleep**2))) == pytest.approx(0.2 / np.sqrt(2), rel=0.1)
    assert rms(shaped, text, "surprise") == pytest.approx(rms(plain, plain_text, "surprise"), rel=0.05)


def test_render_with_sentence_pause_and_speech_marks(tmp_path: Path) -> None:
    source = '<speak><s>The café opens early.</s><s>Then <mark name="advert"/>the news follows.</s></speak>'
    (tmp_path / "in.ssml").write_text(source, encoding="utf-8")
    out, marks_path = tmp_path / "out.wav", tmp_path / "out.jsonl"
    assert main(["render", str(tmp_path / "in.ssml"), "-o", str(out), "--marks", str(marks_path), "--sentence-pause", "1.2"]) == 0
    samples, sr = soundfile.read(out, dtype="float32")
    marks = [json.loads(line) for line in marks_path.read_text(encoding="utf-8").splitlines()]
    data = source.encode("utf-8")
    words = {data[m["start"] : m["end"]].decode(): m for m in marks if m["type"] == "word"}
    assert list(words) == ["The", "café", "opens", "early", "Then", "the", "news", "follows"]
    assert [m["type"] for m in marks].count("sentence") == 2
    times = [m["time"] for m in marks]
    assert times == sorted(times)
    # The silence between the sentences: the pause, plus the quiet end of "early" and the next <bos>
    # (test_sentence_pause_sets_the_gap measures the pause itself).
    runs = [b - a for a, b in silent_runs(samples, sr) if words["early"]["time"] / 1000 < a and b < words["Then"]["time"] / 1000 + 0.05]
    assert 1.2 <= max(runs) <= 1.2 + 0.2, runs
    (advert,) = [m for m in marks if m["type"] == "ssml"]
    assert advert["value"] == "advert" and data[advert["start"] : advert["end"]] == b'<mark name="advert"/>'
    assert words["Then"]["time"] < advert["time"] <= words["the"]["time"]


def test_sentence_pause_sets_the_gap() -> None:
    reader = Reader(threads=1, sentence_pause=1.2, paragraph_pause=2.0)
    text = "The cafe opens early. Then the news follows.\n\nA new paragraph starts."
    audio = reader.synthesize(text)
    for before, after, seconds in (("early", "Then", 1.2), ("follows", "A", 2.0)):
        end, start = word(audio, text, before).end, word(audio, text, after).start
        assert abs(start - end - seconds) <= 0.1, (before, start - end)
        assert silent_between(audio.samples, audio.sample_rate, end, start)


def test_marks_fall_between_the_words_around_them(reader: Reader) -> None:
    text = '<speak><mark name="a"/>Good <mark name="b"/>morning.<break time="1s"/><mark name="c"/> Here <mark name="d"/>we go.<mark name="e"/></speak>'
    audio = reader.synthesize(text)
    at = {m.name: m.time for m in audio.marks}
    assert list(at) == ["a", "b", "c", "d", "e"]
    good, morning, here, we, go = (word(audio, text, w) for w in ("Good", "morning", "Here", "we", "go"))
    assert at["a"] <= good.start
    assert good.end <= at["b"] <= morning.start
    assert morning.end + 0.9 <= at["c"] <= here.start  # written after the break: timed after its silence
    assert here.end <= at["d"] <= we.start
    assert go.end <= at["e"] <= len(audio.samples) / audio.sample_rate


def test_speech_marks_are_polly_lines_with_byte_offsets(reader: Reader) -> None:
    text = "Caf\u00e9 na\u00efve, 2024. Done."
    marks = [m for chunk in _chunks(reader, text) for m in SpeechMarks(text).marks(chunk)]
    data = text.encode("utf-8")
    assert [(m["type"], data[m["start"] : m["end"]].decode()) for m in marks if m["type"] == "word"] == [
        ("word", "Caf\u00e9"), ("word", "na\u00efve"), ("word", "2024"), ("word", "Done"),
    ]  # fmt: skip
    assert all(set(m) == {"time", "type", "start", "end", "value"} and isinstance(m["time"], int) for m in marks)


def _chunks(reader: Reader, text: str, speed: float | None = None) -> list:
    async def collect():
        return [chunk async for chunk in reader.stream(text, speed=speed)]

    return asyncio.run(collect())


def _collected(reader: Reader, text: str, speed: float) -> tuple:
    chunks = _chunks(reader, text, speed)
    words = tuple(w for c in chunks for w in c.words)
    return np.concatenate([c.samples for c in chunks]), reader.sample_rate, (), words


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=SSML_BODIES)
def test_generated_ssml_times_never_go_back(reader: Reader, body: str) -> None:
    text = f"<speak>{body}</speak>"
    audio = reader.synthesize(text)
    starts = [w.start for w in audio.words]
    assert starts == sorted(starts) and all(w.end >= w.start for w in audio.words)
    # In stream order, chunk after chunk: every chunk's words and marks come no earlier than the last chunk's.
    times = [t for chunk in _chunks(reader, text) for t in sorted([*(w.start for w in chunk.words), *(m.time for m in chunk.marks)])]
    assert times == sorted(times)
    assert all(0 <= w.start_char < w.end_char <= len(text) for w in audio.words)
    assert all(0 <= m.start_char < m.end_char <= len(text) for m in audio.marks)
