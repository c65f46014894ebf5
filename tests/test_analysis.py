from reader.analysis import MAX_SENTENCE_WORDS
from reader.prosody import BreakLevel

SEED = "The brown fox is quick, and it is jumping over the lazy dog."


def test_seed_sentence_end_to_end(analyzer):
    (sentence,) = analyzer.analyze_text(SEED).sentences
    words = [w.text for w in sentence.words]
    assert words == "The brown fox is quick and it is jumping over the lazy dog".split()
    assert sentence.distances == [2, 1, 3, 1, 8, 7, 6, 5, 4, 3, 2, 1]
    quick = words.index("quick")
    assert sentence.words[quick].punct_after == ","
    assert sentence.breaks[quick] >= BreakLevel.MINOR  # clause boundary with a comma
    assert sentence.breaks[0] == BreakLevel.NONE  # inside "The brown fox"
    assert sentence.breaks[-1] == BreakLevel.PARAGRAPH and sentence.resets[-1]
    assert len(sentence.breaks) == len(sentence.resets) == len(words)
    assert all(w.phonemes for w in sentence.words)


def test_word_offsets_point_at_source_text(analyzer):
    text = "It cost $3.50 on Jan. 5, 2020, said Dr. Smith."
    (sentence,) = analyzer.analyze_text(text).sentences
    for w in sentence.words:
        assert 0 <= w.start < w.end <= len(text)
    dollars = [w for w in sentence.words if w.text == "dollars"][0]
    assert text[dollars.start : dollars.end] == "$3.50"
    doctor = [w for w in sentence.words if w.text.lower() == "doctor"][0]
    assert text[doctor.start : doctor.end].startswith("Dr")
    assert sentence.text == text


def test_sentence_and_paragraph_final_breaks(analyzer):
    doc = analyzer.analyze_text("First one. Second one.\n\nNew paragraph.")
    assert [s.breaks[-1] for s in doc.sentences] == [BreakLevel.SENTENCE, BreakLevel.PARAGRAPH, BreakLevel.PARAGRAPH]
    assert [s.paragraph for s in doc.sentences] == [0, 0, 1]


def test_long_sentences_split_at_largest_distance(analyzer):
    clause = "the committee that met on a cold morning in the old town hall discussed the budget at length"
    text = f"{clause}, and {clause}, while {clause}, because {clause}."
    sentences = analyzer.analyze_text(text).sentences
    assert len(sentences) >= 2
    assert all(len(s.words) <= MAX_SENTENCE_WORDS for s in sentences)
    for s in sentences[:-1]:
        assert s.breaks[-1] == BreakLevel.MAJOR and s.resets[-1]
    assert sentences[-1].breaks[-1] == BreakLevel.PARAGRAPH
    # the pieces tile the sentence without losing words
    assert sum(len(s.words) for s in sentences) == len(text.replace(",", "").replace(".", "").split())


def test_unspeakable_tokens_leave_consistent_gaps(analyzer):
    (sentence,) = analyzer.analyze_text("Hello 😀 world ✓ again.").sentences
    assert [w.text for w in sentence.words] == ["Hello", "world", "again"]
    assert len(sentence.distances) == 2


def test_rtl_control_and_symbol_only_text(analyzer):
    assert analyzer.analyze_text("★ ☆ ♦ ♠").sentences == []
    doc = analyzer.analyze_text("Hello\x07 there.\u202e He said שלום to me.")
    assert doc.sentences and all(w.phonemes for s in doc.sentences for w in s.words)


def test_numbers_only_document_is_spoken(analyzer):
    words = [w.text for s in analyzer.analyze_text("1 2 3 42").sentences for w in s.words]
    assert words[:3] == ["one", "two", "three"] and "forty" in words


def test_headings_form_chapters(analyzer):
    doc = analyzer.analyze_text("# Part One\n\nSome text here.\n\n# Part Two\n\nMore text.")
    assert [c.title for c in doc.chapters] == ["Part One", "Part Two"]
    assert doc.sentences[0].is_heading and doc.sentences[0].breaks[-1] == BreakLevel.PARAGRAPH
