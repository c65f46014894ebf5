"""Linguistic analysis of a document: the typed input of every later stage.

document -> sentences -> normalised words -> parse (POS, tree) -> syntactic distances
-> pronunciations -> prosody plan (break level and intonation reset at every word gap).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..paths import models_dir
from .document import Document, SentenceSpan, SentenceSplitter, split_document
from .normalize import Token, normalize_sentence
from .pronounce import Pronouncer, load_lexicon
from .prosody import BreakLevel, BreakModel, plan_breaks
from .ssml import SsmlDocument, is_ssml, parse_ssml
from .ssml_controls import EventCursor, SentenceControls
from .syntax import Parser, PunctuationParser, make_parser, split_points, syntactic_distances

logger = logging.getLogger(__name__)

# No synthesis unit is longer than this many words: longer sentences are split into balanced units
# at clause and comma boundaries, then by syntactic distance (syntax.split_points).
MAX_SENTENCE_WORDS = 40

# Sentences are parsed in batches: spaCy's pipe is several times faster than one call per sentence.
# Batches start small and grow, so the first sentence is ready at once (time to first audio).
PARSE_BATCH_SIZES = (1, 4, 16, 64)


@dataclass(frozen=True)
class WordAnalysis:
    text: str  # the spoken word
    start: int  # character span of its source in the original document
    end: int
    pos: str  # Penn Treebank tag
    phonemes: tuple[str, ...]  # ARPAbet with stress
    punct_after: str  # punctuation between this word and the next ("" if none)


@dataclass
class SentenceAnalysis:
    """One synthesis unit. Per-word lists hold the break and reset *after* each word."""

    text: str  # original text of the sentence
    start: int
    end: int
    words: list[WordAnalysis]
    distances: list[int]  # syntactic distance at each of the len(words) - 1 gaps
    breaks: list[BreakLevel]
    resets: list[bool]
    chapter: int
    paragraph: int
    is_heading: bool = False
    ssml: SentenceControls | None = None  # what SSML set for it (per-word voice, pauses, marks)


@dataclass
class ParagraphAnalysis:
    start: int
    end: int
    sentences: list[SentenceAnalysis] = field(default_factory=list)
    is_heading: bool = False


@dataclass
class ChapterAnalysis:
    title: str | None
    start: int
    end: int
    paragraphs: list[ParagraphAnalysis] = field(default_factory=list)


@dataclass
class DocumentAnalysis:
    text: str
    chapters: list[ChapterAnalysis]

    @property
    def sentences(self) -> list[SentenceAnalysis]:
        return [s for c in self.chapters for p in c.paragraphs for s in p.sentences]


@dataclass(frozen=True)
class _SentenceJob:
    span: SentenceSpan
    chapter: int
    paragraph: int
    final: BreakLevel
    tokens: tuple[Token, ...]


# Characters that join written words into one group read as several words ("year-on-year",
# "U.S.", "example.com", "5-3"): no phrase break falls between the words of such a group.
WORD_JOINERS = frozenset("-‐‑/.@:_+&'’·")
# Punctuation after which a cut is a clause-level boundary (above a comma).
CLAUSE_PUNCTUATION = frozenset(";:—–-.!?…()[]{}")


def word_groups(words: Sequence[Token | WordAnalysis], text: str, offset: int = 0) -> list[bool]:
    """Per gap: whether words i and i+1 belong to one written word group.

    They do when they were read from one source token (a number read as several words), or when
    their sources touch or are separated only by joining characters. `text` starts at document
    offset `offset`.
    """
    joined = []
    for a, b in zip(words, words[1:]):
        between = text[a.end - offset : b.start - offset] if b.start > a.end else ""
        joined.append(len(between) <= 3 and all(ch in WORD_JOINERS for ch in between))
    return joined


def boundary_strength(punct: str) -> int:
    """How good a gap with this punctuation is for cutting a long sentence: 3 clause, 2 comma, 1 none."""
    if any(ch in CLAUSE_PUNCTUATION for ch in punct):
        return 3
    return 2 if "," in punct else 1


def _letter_tag(word: Token, tag: str, text: str) -> str:
    """A capital letter spelled out of an abbreviation ("a.m.", "FBI", "A. Smith") is a noun, never the
    article "a", whatever the tagger says: the pronouncer then says the letter's name."""
    following = text[word.end : word.end + 1]
    spelled = len(word.text) == 1 and word.text.isupper() and (following.isalnum() or following == ".")
    return "NNP" if spelled else tag


# The metal "lead" (L EH1 D) is a noun like the lead of a race; its neighbours tell them apart.
_LEAD_METAL_BEFORE = frozenset({"of", "with", "from", "contain", "contains", "containing"})
_LEAD_METAL_AFTER = frozenset({
    "pipe", "pipes", "poisoning", "paint", "content", "levels", "exposure", "shot", "bullet", "bullets",
    "weight", "weights", "ore", "oxide", "acid", "crystal", "mine", "mines", "solder", "sheet",
})
# Nouns the adjective "live" (L AY1 V) goes with, even where the tagger reads "live" as the verb.
_LIVE_NOUNS = frozenset({
    "audio", "video", "music", "stream", "streams", "streaming", "broadcast", "broadcasts", "coverage", "show",
    "shows", "performance", "performances", "event", "events", "feed", "tv", "television", "radio", "recording",
    "album", "action", "wire", "bait", "ammunition", "updates", "demo", "session", "concert", "concerts",
})


def _heteronym_tag(words: Sequence[Token], pos: Sequence[str], i: int) -> str:
    """The tag that picks a heteronym's pronunciation where the tagger's own tag cannot.

    "live" before a noun is the adjective ("listen to live audio", which the tagger reads as the verb);
    "lead" next to a word of metals ("made of lead", "lead pipes") is the metal, pronounced like the
    adjective (as in "a lead weight").
    """
    word = words[i].text.lower()
    before = words[i - 1].text.lower() if i > 0 else ""
    after = words[i + 1].text.lower() if i + 1 < len(words) else ""
    before_noun = i + 1 < len(words) and pos[i + 1] in ("NN", "NNS")
    if word == "live" and (after in _LIVE_NOUNS or pos[i].startswith("VB") and before_noun):
        return "JJ"
    if word == "lead" and pos[i].startswith("NN") and (before in _LEAD_METAL_BEFORE or after in _LEAD_METAL_AFTER):
        return "JJ"
    return pos[i]


def _drop_word(i: int, distances: list[int], punct: list[str]) -> None:
    """Remove word i from the gap lists (distances: one per gap; punct: one per word, after it).

    Its two gaps merge into one whose distance is the higher of the two: exactly the height of the
    lowest common ancestor of the new neighbours.
    """
    if distances:
        if 0 < i < len(distances):
            distances[i - 1] = max(distances[i - 1], distances[i])
            del distances[i]
        else:
            del distances[min(i, len(distances) - 1)]
    if i > 0:
        punct[i - 1] += punct[i]
    del punct[i]


class Analyzer:
    """Loads the parser, pronunciations and break model once; analyses any number of documents."""

    def __init__(
        self,
        parser: str | Parser = "spacy",
        lexicon: str | Path | None = None,
        break_model: BreakModel | Path | None = None,
        max_sentence_words: int = MAX_SENTENCE_WORDS,
    ) -> None:
        from ..models import analysis_models, check_models

        check_models(analysis_models(models_dir()))  # a corrupt G2P model fails now, not at the first unknown word
        self.parser = make_parser(parser) if isinstance(parser, str) else parser
        self.pronouncer = Pronouncer(load_lexicon(lexicon))
        self.break_model = break_model if isinstance(break_model, BreakModel) else BreakModel.load(break_model)
        self.max_sentence_words = max_sentence_words
        self._splitter = SentenceSplitter()
        # spaCy and stanza do not promise that one pipeline may parse in several threads at once
        # (spaCy's vocabulary grows as it meets new words), and concurrent readings share this one.
        self._parse_lock = threading.Lock()
        self._warned_unspeakable = False  # said once per analyzer, not once per word

    def split(self, text: str) -> Document:
        """The document's structure; SSML (frontend.ssml.is_ssml) is parsed, anything else is plain text."""
        if is_ssml(text):
            return parse_ssml(text, self._splitter)
        return split_document(text, self._splitter)

    def analyze_text(self, text: str) -> DocumentAnalysis:
        return self.analyze(self.split(text))

    def analyze(self, document: Document) -> DocumentAnalysis:
        chapters = [ChapterAnalysis(c.title, c.start, c.end) for c in document.chapters]
        for ci, chapter in enumerate(document.chapters):
            chapters[ci].paragraphs = [ParagraphAnalysis(p.start, p.end, is_heading=p.is_heading) for p in chapter.paragraphs]
        for sentence in self.iter_sentences(document):
            chapters[sentence.chapter].paragraphs[sentence.paragraph].sentences.append(sentence)
        return DocumentAnalysis(text=document.text, chapters=chapters)

    def iter_sentences(self, document: Document, quick_start: bool = False) -> Iterator[SentenceAnalysis]:
        """Analysed sentences in reading order, produced batch by batch (memory stays flat).

        quick_start: if the parser is still loading (syntax.BackgroundParser) when the first sentence
        is due, plan that one sentence from its punctuation (syntax.PunctuationParser) instead of
        waiting: first audio comes sooner, but the first sentence's plan then depends on timing.
        """
        if isinstance(document, SsmlDocument):
            yield from self._with_ssml_events(document, self._iter_sentences(document, quick_start))
            return
        yield from self._iter_sentences(document, quick_start)

    @staticmethod
    def _with_ssml_events(document: SsmlDocument, sentences: Iterator[SentenceAnalysis]) -> Iterator[SentenceAnalysis]:
        """Sentences with their SSML breaks and marks: each is held until the next one's first word
        is known, since a break between two sentences belongs to the end of the first."""
        cursor = EventCursor(document.controls)
        previous = None
        for sentence in sentences:
            if previous is not None:
                cursor.attach(previous.words, previous.breaks, previous.resets, previous.ssml, sentence.words[0].start)
                yield previous
            previous = sentence
        if previous is not None:
            cursor.attach(previous.words, previous.breaks, previous.resets, previous.ssml, float("inf"))
            yield previous

    def _iter_sentences(self, document: Document, quick_start: bool) -> Iterator[SentenceAnalysis]:
        batch: list[_SentenceJob] = []
        batch_index = 0
        for job in self._jobs(document):
            batch.append(job)
            if len(batch) == PARSE_BATCH_SIZES[min(batch_index, len(PARSE_BATCH_SIZES) - 1)]:
                provisional = quick_start and batch_index == 0 and not getattr(self.parser, "ready", True)
                yield from self._analyze_batch(document, batch, provisional)
                batch = []
                batch_index += 1
        if batch:
            yield from self._analyze_batch(document, batch)

    def _jobs(self, document: Document) -> Iterable[_SentenceJob]:
        for ci, chapter in enumerate(document.chapters):
            for pi, paragraph in enumerate(chapter.paragraphs):
                # One sentence of look-ahead tells which sentence ends the paragraph.
                spans = document.iter_sentences_of(paragraph)
                span = next(spans, None)
                while span is not None:
                    following = next(spans, None)
                    tokens = normalize_sentence(
                        document.sentence_text(span), span.start, heading=span.is_heading, keep=self.pronouncer.keep
                    )
                    if isinstance(document, SsmlDocument):
                        tokens = document.controls.rewrite(tokens, span.start, span.end)
                    if any(not t.is_punct for t in tokens):
                        last = following is None or span.is_heading
                        final = BreakLevel.PARAGRAPH if last else BreakLevel.SENTENCE
                        yield _SentenceJob(span, ci, pi, final, tuple(tokens))
                    span = following

    def _analyze_batch(self, document: Document, jobs: Sequence[_SentenceJob], provisional: bool = False) -> Iterator[SentenceAnalysis]:
        if provisional:
            parses = PunctuationParser().parse([job.tokens for job in jobs])
        else:
            with self._parse_lock:
                parses = self.parser.parse([job.tokens for job in jobs])
        for job, parsed in zip(jobs, parses):
            yield from self._analyze_sentence(document, job, parsed)

    def _analyze_sentence(self, document: Document, job: _SentenceJob, parsed) -> list[SentenceAnalysis]:
        words = [t for t in job.tokens if not t.is_punct]
        distances = syntactic_distances(parsed.tree, len(words))
        punct = [""] * len(words)
        wi = -1
        for t in job.tokens:
            if t.is_punct:
                if wi >= 0:
                    punct[wi] += t.text
            else:
                wi += 1
        pos = [_letter_tag(w, p, document.text) for w, p in zip(words, parsed.pos)]
        pos = [_heteronym_tag(words, pos, i) for i in range(len(words))]
        controls = document.controls if isinstance(document, SsmlDocument) else None
        if controls is not None:  # <w role> picks a heteronym's reading; <phoneme> gives the phonemes
            pos = [controls.role_at(w.start) or p for w, p in zip(words, pos)]
        phonemes = [self.pronouncer.phonemes(w.text, p) for w, p in zip(words, pos)]
        if controls is not None:
            phonemes = [controls.phonemes.get((w.start, w.end), p) for w, p in zip(words, phonemes)]
        # Words that cannot be spoken (no letters the pronouncer knows) leave the sentence; the gap they
        # leave keeps the higher of its two distances, which is exactly the LCA height of the new neighbours.
        unspeakable = [i for i, p in enumerate(phonemes) if not p]
        lettered = next((words[i].text for i in unspeakable if any(ch.isalpha() for ch in words[i].text)), None)
        if lettered is not None and not self._warned_unspeakable:
            self._warned_unspeakable = True
            logger.warning("reader: skipping words in a script it cannot speak (first: %r)", lettered[:40])
        for i in reversed(unspeakable):
            _drop_word(i, distances, punct)
            for values in (words, pos, phonemes):
                del values[i]
        if not words:
            return []
        joined = word_groups(words, document.text)
        breaks, resets = plan_breaks(self.break_model, distances, punct, pos, job.final, joined)
        analysed = [
            WordAnalysis(w.text, w.start, w.end, p, ph, pu) for w, p, ph, pu in zip(words, pos, phonemes, punct)
        ]
        # A cut inside a word group (between the words of one long number) is the last resort.
        strength = [0 if inside else boundary_strength(pu) for inside, pu in zip(joined, punct)]
        cuts = split_points(distances, self.max_sentence_words, strength)
        for cut in cuts:
            breaks[cut] = max(breaks[cut], BreakLevel.MAJOR)
            resets[cut] = True
        pieces = []
        bounds = [-1, *cuts, len(analysed) - 1]
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            lo += 1
            # The union of the piece's word spans (when a single token had to be cut, its pieces overlap on it).
            start = job.span.start if lo == 0 else min(w.start for w in analysed[lo : hi + 1])
            end = job.span.end if hi == len(analysed) - 1 else max(w.end for w in analysed[lo : hi + 1])
            pieces.append(
                SentenceAnalysis(
                    text=document.text[start:end],
                    start=start,
                    end=end,
                    words=analysed[lo : hi + 1],
                    distances=distances[lo:hi],
                    breaks=breaks[lo : hi + 1],
                    resets=resets[lo : hi + 1],
                    chapter=job.chapter,
                    paragraph=job.paragraph,
                    is_heading=job.span.is_heading,
                    ssml=SentenceControls([controls.voice_at(w.start) for w in analysed[lo : hi + 1]]) if controls else None,
                )
            )
        return pieces
