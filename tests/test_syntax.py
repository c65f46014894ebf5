from dataclasses import dataclass

import pytest
from stanza.models.constituency import tree_reader

from reader.frontend.syntax import SpacyParser, Tree, right_branching, split_points, syntactic_distances, tree_from_stanza

SEED = "The brown fox is quick , and it is jumping over the lazy dog ."
SEED_BRACKETS = (
    "(ROOT (S (S (NP (DT The) (JJ brown) (NN fox)) (VP (VBZ is) (ADJP (JJ quick)))) (, ,) (CC and) "
    "(S (NP (PRP it)) (VP (VBZ is) (VP (VBG jumping) (PP (IN over) (NP (DT the) (JJ lazy) (NN dog)))))) (. .)))"
)
# The seed's distance vector, without its leading 0 (it has one value per gap between words).
SEED_DISTANCES = [2, 1, 3, 1, 8, 7, 6, 5, 4, 3, 2, 1]


@dataclass
class Tok:
    text: str
    is_punct: bool


def tokens(sentence):
    return [Tok(w, w in ",.;:!?") for w in sentence.split()]


@pytest.fixture(scope="module")
def spacy_parser():
    return SpacyParser()


def check_seed_properties(d):
    words = [w for w in SEED.split() if w not in ",."]
    gap = {(words[i], words[i + 1]): d[i] for i in range(len(d))}
    assert max(d) == gap[("quick", "and")] and d.count(max(d)) == 1
    assert gap[("fox", "is")] > max(d[0:2]) and gap[("fox", "is")] > gap[("is", "quick")]
    tail = d[words.index("it") :]
    assert all(a >= b for a, b in zip(tail, tail[1:]))


def test_stanza_tree_gives_seed_distances():
    toks = tokens(SEED)
    tree = tree_from_stanza(tree_reader.read_trees(SEED_BRACKETS)[0], toks)
    d = syntactic_distances(tree, 13)
    check_seed_properties(d)
    assert d == SEED_DISTANCES


def test_spacy_dependency_brackets_give_seed_distances(spacy_parser):
    parsed = spacy_parser.parse([tokens(SEED)])[0]
    d = syntactic_distances(parsed.tree, 13)
    check_seed_properties(d)
    assert d == SEED_DISTANCES
    assert len(parsed.pos) == 13 and parsed.pos[0] == "DT"


def test_subject_break_outranks_phrase_internal_gaps(spacy_parser):
    toks = tokens("The old man in the grey coat slowly opened the heavy door .")
    parsed = spacy_parser.parse([toks])[0]
    d = syntactic_distances(parsed.tree, 12)
    # between "coat" and "slowly" (end of the subject noun phrase) comes the largest break
    assert d.index(max(d)) == 6


def test_stanza_punctuation_tags_are_dropped_and_leaves_are_words():
    toks = tokens("Hello , world .")
    tree = tree_from_stanza(tree_reader.read_trees("(ROOT (S (INTJ (UH Hello)) (, ,) (NP (NN world)) (. .)))")[0], toks)
    assert tree.words() == [0, 1]


def test_long_sentences_parse_in_windows(spacy_parser):
    toks = tokens(" ".join(["the cat sat on the mat and"] * 60) + " .")  # 420 words
    parsed = spacy_parser.parse([toks])[0]
    n = 420
    assert sorted(parsed.tree.words()) == list(range(n))
    assert len(syntactic_distances(parsed.tree, n)) == n - 1


def test_split_points_cut_at_largest_distance_until_parts_are_short():
    d = [1, 2, 1, 9, 1, 2, 1, 5, 1, 2, 1]  # 12 words
    assert split_points(d, 12) == []
    assert split_points(d, 8) == [3]
    cuts = split_points(d, 4)
    bounds = [-1, *cuts, 11]
    assert all(b - a <= 4 for a, b in zip(bounds, bounds[1:]))
    assert 3 in cuts and 7 in cuts


def test_right_branching_and_flat_nodes():
    leaves = [Tree("X", word=i) for i in range(3)]
    flat = Tree("S", tuple(leaves))
    assert syntactic_distances(flat, 3) == [1, 1]
    binary = right_branching("S", leaves)
    assert syntactic_distances(binary, 3) == [2, 1]
