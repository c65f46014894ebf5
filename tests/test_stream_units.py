import numpy as np

from reader_runtime.stream import phrase_cuts, word_timings


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
