"""Start-up: the parser loads in the background, the first sentence of a quick start may be planned from
punctuation while it loads, and everything that must be deterministic still is."""

import asyncio
import filecmp
import subprocess
import sys
import threading

import numpy as np
import pytest

from reader.frontend.analysis import Analyzer
from reader.engine import Reader
from reader.errors import ModelError
from reader.frontend.normalize import normalize_sentence
from reader.frontend.syntax import BackgroundParser, PunctuationParser, SpacyParser, make_parser, syntactic_distances
from reader_runtime.stream import FIRST_CHUNK_AUDIO_FRAMES

TEXT = "Yes, a man can read it; but not today. The committee met on Tuesday to review the budget, and it agreed."


def gated_spacy(gate: threading.Event) -> BackgroundParser:
    """The real spaCy parser, loading in the background only once `gate` is set (a parser still loading)."""

    def load():
        gate.wait()
        return SpacyParser()

    return BackgroundParser("spacy", load)


def test_punctuation_plan_ranks_clause_marks_over_commas_over_words():
    tokens = normalize_sentence("Well, I think a man can read it; but not today.", 0)
    (parsed,) = PunctuationParser().parse([tokens])
    words = [t.text for t in tokens if not t.is_punct]
    distances = syntactic_distances(parsed.tree, len(words))
    assert distances == [2, 1, 1, 1, 1, 1, 1, 3, 1, 1]
    assert sorted(parsed.tree.words()) == list(range(len(words)))
    assert dict(zip(words, parsed.pos)) == {"Well": "", "I": "PRP", "think": "", "a": "DT", "man": "", "can": "MD", "read": "", "it": "PRP", "but": "CC", "not": "", "today": ""}


def test_quick_start_plans_only_the_first_sentence_without_the_parser(analyzer):
    reference = list(analyzer.iter_sentences(analyzer.split(TEXT)))
    gate = threading.Event()
    quick = Analyzer(parser=gated_spacy(gate))
    sentences = quick.iter_sentences(quick.split(TEXT), quick_start=True)
    first = next(sentences)  # returns although the parser is still loading
    assert not quick.parser.ready
    assert [w.text for w in first.words] == [w.text for w in reference[0].words]
    assert [w.pos for w in first.words][:4] == ["", "DT", "", "MD"]  # from the function-word list, not spaCy
    assert [w.phonemes for w in first.words][1] == ("AH0",)  # the article "a", not the letter
    gate.set()
    assert list(sentences) == reference[1:]  # every later sentence waits for the parser


def test_without_quick_start_a_loading_parser_is_waited_for(analyzer):
    reference = list(analyzer.iter_sentences(analyzer.split(TEXT)))
    gate = threading.Event()
    waiting = Analyzer(parser=gated_spacy(gate))
    threading.Timer(0.2, gate.set).start()
    assert list(waiting.iter_sentences(waiting.split(TEXT))) == reference
    # with the parser ready, quick_start changes nothing
    assert list(waiting.iter_sentences(waiting.split(TEXT), quick_start=True)) == reference


def test_a_parser_that_fails_to_load_fails_at_first_use():
    def load():
        raise ModelError("spaCy model 'x' is not installed")

    parser = BackgroundParser("spacy", load)
    tokens = normalize_sentence("Hello there.", 0)
    for _ in range(2):  # the same one-line error every time
        with pytest.raises(ModelError, match="not installed"):
            parser.parse([tokens])
    with pytest.raises(Exception, match="unknown parser"):
        make_parser("nonsense")


@pytest.fixture(scope="module")
def reader():
    return Reader(threads=1)


def test_quick_start_stream_speaks_before_the_parser_is_loaded():
    reader = Reader(threads=1)
    gate = threading.Event()
    reader.analyzer.parser = gated_spacy(gate)  # as in a fresh process, where spaCy takes seconds
    hop, rate = reader.acoustic.hop_length, reader.sample_rate

    async def first_chunk_then_rest():
        chunks = []
        async for chunk in reader.stream(TEXT, quick_start=True):
            if not chunks:
                assert not reader.analyzer.parser.ready  # the first audio did not wait for spaCy
                gate.set()
            chunks.append(chunk)
        return chunks

    chunks = asyncio.run(asyncio.wait_for(first_chunk_then_rest(), timeout=120))
    # the stream's first chunk is cut short: the vocoder's look-ahead plus a few frames of audio
    assert 0 < len(chunks[0].samples) <= (FIRST_CHUNK_AUDIO_FRAMES + 2) * hop
    assert len(chunks[0].samples) / rate > 0.1
    timings = [s for c in chunks for s in c.sentences]
    assert [TEXT[s.start_char : s.end_char] for s in timings] == [TEXT[: TEXT.index(" The")], TEXT[TEXT.index("The") :]]


def test_a_default_stream_is_the_same_audio_every_time(reader):
    first = reader.synthesize(TEXT).samples
    fresh = Reader(threads=1)  # its parser is still loading: the reading waits for it
    assert np.array_equal(fresh.synthesize(TEXT).samples, first)


def test_render_to_a_file_is_byte_identical_from_fresh_processes(tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text(TEXT, encoding="utf-8")
    outputs = [tmp_path / "one.wav", tmp_path / "two.wav"]
    for out in outputs:
        proc = subprocess.run([sys.executable, "-m", "reader", "render", str(doc), "-o", str(out)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    assert filecmp.cmp(*outputs, shallow=False)


def test_the_command_line_loads_spacy_without_torch():
    code = (
        "import sys, threading\n"
        "from reader.frontend.syntax import SpacyParser, hide_torch_from_spacy\n"
        "from reader.frontend.normalize import normalize_sentence\n"
        "hide_torch_from_spacy()\n"
        "parser = SpacyParser()\n"
        "assert 'torch' not in sys.modules\n"
        "print(parser.parse([normalize_sentence('The dog barks loudly.', 0)])[0].pos)\n"
        "import torch\n"  # hidden only from the thread loading spaCy, and only while it loads
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "('DT', 'NN', 'VBZ', 'RB')"
