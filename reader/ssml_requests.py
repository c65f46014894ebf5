"""What an SSML sentence's controls (frontend.ssml_controls.SentenceControls) put into its synthesis
request: explicit pauses, per-token rate, pitch and gain, and timed marks (runtime SynthesisRequest)."""

from __future__ import annotations

import numpy as np

from .frontend.analysis import SentenceAnalysis
from .frontend.prosody import BreakLevel
from .model_inputs import ModelInputs


def ssml_settings(sentence: SentenceAnalysis, inputs: ModelInputs, levels: np.ndarray, pause_frames: np.ndarray, final_pauses: dict, frames_per_second: float) -> dict:
    """Keyword arguments of SynthesisRequest for the sentence's SSML controls ({} without any).
    Fills `pause_frames` (and `levels`, the runtime's phrase cuts) in place."""
    controls = sentence.ssml
    if controls is None:
        return {}
    boundaries = np.flatnonzero(inputs.boundary_mask)  # one boundary token after each word
    fixed = np.zeros(len(inputs), bool)
    for gap, level in enumerate(sentence.breaks[:-1]):
        # A strong break inside a sentence: the model reads a sentence boundary, the pause is the setting's.
        if level >= BreakLevel.SENTENCE and gap not in controls.pauses:
            pause_frames[boundaries[gap]] = round(final_pauses[level] * frames_per_second)
            levels[boundaries[gap]] = int(level)
    for gap, seconds in controls.pauses.items():
        token = 0 if gap < 0 else boundaries[gap]  # before the first word: <bos>, which holds leading silence
        pause_frames[token] = round(seconds * frames_per_second)
        fixed[token] = True
        if gap >= 0 and seconds > 0:
            levels[token] = max(int(levels[token]), int(BreakLevel.MINOR))
    # Each word's voice covers its phonemes and the boundary after it; <bos> takes the first word's.
    per_word = controls.voices
    word_of_token = np.maximum.accumulate(np.where(inputs.word_indices >= 0, inputs.word_indices, 0))
    rate = np.array([per_word[w].rate for w in word_of_token], np.float32)
    pitch = np.array([per_word[w].pitch for w in word_of_token], np.float32)
    gain = np.array([per_word[w].gain for w in word_of_token], np.float32)
    bleep = np.array([per_word[w].bleep for w in word_of_token], bool)
    # An explicit break is silence: the model fills a long pause token with breath and noise, so mute it.
    gain[fixed & (pause_frames > 0)] = 0.0
    marks = tuple(((0 if gap < 0 else int(boundaries[gap])) + after, name, start, end) for gap, name, start, end, after in controls.marks)
    return {
        "rate": rate if np.any(rate != 1.0) else None,
        "pitch": pitch if np.any(pitch != 1.0) else None,
        "gain": gain if np.any(gain != 1.0) else None,
        "bleep": bleep if bleep.any() else None,
        "fixed_pauses": fixed if fixed.any() else None,
        "marks": marks,
    }
