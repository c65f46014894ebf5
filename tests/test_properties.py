"""Property-based tests (hypothesis) of the front end and the Python API on arbitrary Unicode.

Any text either gives analyses / audio whose timings are consistent with the text, or raises
ReaderError; never another exception, and never a hang (each example runs under an alarm).
"""

import contextlib
import signal
from datetime import timedelta
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reader import Reader, ReaderError
from reader.model_inputs import ARPABET, sentence_to_inputs

# Pieces that exercise the normaliser, parser and pronouncer: numbers of any size, currency,
# dates, abbreviations, Markdown, emoji (with joiners and skin tones), right-to-left scripts,
# combining marks, odd scripts, control and format characters, odd whitespace.
PIECES = st.one_of(
    st.text(max_size=30),  # any code point except surrogates
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.sampled_from([
        "Dr.", "St.", "Mr. Smith", "e.g.", "U.S.A.", "$5.50", "€3", "50%", "3/4", "12:30 p.m.", "4 July 2021",
        "2021-07-04", "Henry VIII", "CHAPTER IV", "# Heading", "**bold**", "[link](http://x.io)", "- item",
        "https://example.com/a?b=c", "a@b.com", "555-0100", "1st", "22nd", "1990s", "§ 3", "20°C",
        "👍🏽", "👨‍👩‍👧", "🇫🇷", "مرحبا بالعالم", "שלום", "\u202eevil\u202c", "e\u0301\u0301\u0301", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇",
        "漢字かなカナ", "한국어", "ไทย", "Ελληνικά", "Ǆemal", "ﬁnance", "İstanbul", "ß", "\x00", "\x07", "\t", "\u200b",
        "\ufeff", "\u00a0", "\u2028", "\r\n", "\n\n", "...", "?!", "—", "'", '"', "(", ")", "a" * 60,
    ]),
    st.sampled_from(["The", "quick", "brown", "fox", "reads", "aloud", "and", "news", "today", ".", ",", " "]),
)
TEXTS = st.lists(PIECES, max_size=12).map(" ".join)


@contextlib.contextmanager
def time_limit(seconds: float):
    """Fail instead of hanging: SIGALRM interrupts the main thread's wait."""

    def expire(signum, frame):
        raise TimeoutError(f"no result within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def reader():
    return Reader(threads=1)


@settings(max_examples=150, deadline=timedelta(seconds=10), suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=TEXTS)
@example(text="-1833223193897476876877568269756798665701")  # more than 40 words from one token: cut inside it
@example(text="12:30 p.m. -102 156761979824000028300897151 00000000")  # "p.m." read inside the clock's span
def test_front_end_analyses_any_text_consistently(analyzer, text):
    with time_limit(30):
        try:
            sentences = list(analyzer.iter_sentences(analyzer.split(text)))
        except ReaderError:
            return
    for sentence, following in pairwise(sentences):
        # in reading order; units overlap only where one source token (a huge number) had to be cut
        assert following.start >= sentence.start and following.end >= sentence.end
    for sentence in sentences:
        assert 0 <= sentence.start < sentence.end <= len(text)
        assert sentence.text == text[sentence.start : sentence.end]
        assert sentence.words and len(sentence.distances) == len(sentence.words) - 1
        assert len(sentence.breaks) == len(sentence.resets) == len(sentence.words)
        for word in sentence.words:
            assert sentence.start <= word.start < word.end <= sentence.end
            assert word.text and word.phonemes
            assert all(p.rstrip("012") in ARPABET for p in word.phonemes)
        assert [w.start for w in sentence.words] == sorted(w.start for w in sentence.words)
        inputs = sentence_to_inputs(sentence)
        assert len(inputs) >= 2 * len(sentence.words) + 1  # <bos>, phonemes and a boundary per word


@settings(max_examples=30, deadline=timedelta(seconds=20), suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=TEXTS)
def test_synthesize_gives_audio_and_timings_consistent_with_any_text(reader, text):
    with time_limit(60):
        try:
            audio = reader.synthesize(text)
        except ReaderError:
            return
    assert audio.samples.dtype == np.float32 and np.all(np.isfinite(audio.samples))
    if not audio.sentences:
        assert len(audio.samples) == 0 and audio.words == ()
        return
    assert len(audio.samples) > 0
    for sentence, following in zip(audio.sentences, audio.sentences[1:] + (None,)):
        assert 0 <= sentence.start_char < sentence.end_char <= len(text)
        assert sentence.text == text[sentence.start_char : sentence.end_char]
        assert sentence.start < sentence.end
        if following is not None:
            assert following.start == sentence.end
            assert following.start_char >= sentence.start_char and following.end_char >= sentence.end_char
    assert abs(audio.sentences[-1].end - audio.seconds) < 1e-6
    starts = [w.start for w in audio.words]
    assert starts == sorted(starts)
    for word in audio.words:
        assert 0 <= word.start_char < word.end_char <= len(text)
        assert 0 <= word.start <= word.end <= audio.seconds + 1e-6
