import numpy as np

from reader_runtime.stream import first_cuts, phrase_cuts, word_timings


def test_phrase_cuts_fall_in_the_middle_of_phrase_break_pauses():
    durations = np.array([2, 5, 5, 4, 6, 6, 10, 3])
    # tokens 3 and 7 are boundaries: 3 a minor break (level 1), 7 the sentence end (level 3)
    levels = np.array([-1, -1, -1, 1, -1, -1, -1, 3])
    ends = np.cumsum(durations)
    cuts = phrase_cuts(durations, levels)
    assert cuts == [int(ends[2] + 2)]  # middle of token 3's 4 frames; the final pause is not a cut
    assert phrase_cuts(durations, np.full(8, -1)) == []
    assert phrase_cuts(durations, np.array([-1, -1, -1, 0, -1, -1, -1, 3])) == []  # level NONE joins


def test_word_timings_from_token_durations():
    durations = np.array([3, 2, 2, 1, 4, 4, 2])
    words = np.array([-1, 0, 0, -1, 1, 1, -1])
    timings = word_timings(durations, words, seconds_per_frame=0.01, offset=1.0)
    assert [(t.word_index, round(t.start, 3), round(t.end, 3)) for t in timings] == [(0, 1.03, 1.07), (1, 1.08, 1.16)]


def test_short_phrases_join_the_next_into_one_piece():
    # tokens 1, 3 and 5 are phrase breaks: cuts in the middle of their pauses at frames 32, 62 and 152
    durations = np.array([30, 4, 26, 4, 86, 4, 40])
    levels = np.array([-1, 1, -1, 1, -1, 1, 3])
    assert phrase_cuts(durations, levels) == [32, 62, 152]
    # at least 50 frames a piece: the 32-frame first phrase joins the second; the last piece, 42
    # frames, is at least half of that and stays its own
    assert phrase_cuts(durations, levels, min_piece=50) == [62, 152]
    # at least 100: the first three phrases make one piece; the last would be under 50 and joins it
    assert phrase_cuts(durations, levels, min_piece=100) == []
    # after earlier cuts ending at frame 40: pieces counted from there, none before it
    assert phrase_cuts(durations, levels, min_piece=50, start=40) == [152]


def test_first_cuts_start_with_the_first_chunk_and_grow():
    assert first_cuts(lookahead_frames=29, ramp_chunks=0, limit=500) == [49]
    assert first_cuts(29, 0, 500, first_frames=60) == [89]
    assert first_cuts(29, 3, 500) == [49, 69, 99, 144]  # 20, 20, 30, 45: the ramp grows by 1.5
    assert first_cuts(29, 3, 80) == [49, 69]  # never past the sentence
    assert first_cuts(29, 0, 40) == []  # a phrase shorter than the first chunk is the first chunk
