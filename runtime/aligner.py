"""Forced alignment of a recording to its tokens: the acoustic model's own aligner (ONNX) + monotonic
alignment search in numpy.

The exported `aligner` graph gives, for every frame, log-probabilities over the sentence's tokens (with
the beta-binomial prior learned in training); the most likely monotonic path (Glow-TTS's MAS) gives each
token's duration in frames. Whether the transcript fits is judged by the path's cost: per frame, how much
less likely the path's token is than the frame's best token (nats), averaged over frames and over tokens
and the two means averaged. The threshold is calibrated at export on held-out clips (manifest
`aligner`); why this cost: docs/phone-check.md#the-aligners-cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .acoustic import AcousticModel, TokenInputs
from .errors import RuntimeModelError


def monotonic_alignment_search(log_probs: np.ndarray, text_lengths: np.ndarray, frame_lengths: np.ndarray) -> np.ndarray:
    """(B, N) int64 durations of the best monotonic path through (B, T, N) frame-by-token log-probs.

    The path starts at (frame 0, token 0), ends at (last frame, last token), and at each frame either
    stays on its token or moves to the next one, so every token gets at least one frame (needs T >= N).
    One step per frame, vectorised over the batch and the tokens.
    """
    batch, max_frames, max_tokens = log_probs.shape
    token_index = np.arange(max_tokens)
    log_probs = np.where(token_index[None, None, :] < text_lengths[:, None, None], log_probs, -np.inf)
    best = np.full((batch, max_tokens), -np.inf)
    best[:, 0] = log_probs[:, 0, 0]
    moved_here = np.zeros((batch, max_frames, max_tokens), dtype=bool)  # came from token i-1 at frame t-1
    minus_inf_column = np.full((batch, 1), -np.inf)
    for t in range(1, max_frames):
        from_previous_token = np.concatenate([minus_inf_column, best[:, :-1]], axis=1)
        moved_here[:, t] = from_previous_token > best
        best = np.maximum(from_previous_token, best) + log_probs[:, t]

    durations = np.zeros((batch, max_tokens), dtype=np.int64)
    rows = np.arange(batch)
    current = np.asarray(text_lengths, dtype=np.int64) - 1
    for t in range(max_frames - 1, -1, -1):
        active = t < frame_lengths
        durations[rows[active], current[active]] += 1
        current = current - (active & moved_here[rows, t, current])
    return durations


@dataclass(frozen=True)
class Alignment:
    durations: np.ndarray  # (N,) int64 frames per token, each >= 1, summing to the recording's frame count
    cost: float  # log p(frame's best token) - log p(its token on the path), nats: (frame mean + token mean) / 2
    cost_threshold: float  # the model's calibrated limit on cost: above it the transcript does not match
    mean_nll: float  # mean negative log-probability per frame along the path (prior included), for reference

    @property
    def matches_transcript(self) -> bool:
        return self.cost <= self.cost_threshold


def alignment_of(log_probs: np.ndarray, cost_threshold: float) -> Alignment:
    """The best monotonic path through (T, N) alignment log-probabilities (T >= N), with its costs."""
    n_frames, n_tokens = log_probs.shape
    durations = monotonic_alignment_search(log_probs[None], np.array([n_tokens]), np.array([n_frames]))[0]
    on_path = log_probs[np.arange(n_frames), np.repeat(np.arange(n_tokens), durations)]
    frame_cost = log_probs.max(axis=1) - on_path
    token_cost = np.add.reduceat(frame_cost, np.cumsum(durations) - durations) / durations  # durations >= 1
    return Alignment(durations, float((frame_cost.mean() + token_cost.mean()) / 2), cost_threshold, float(-on_path.mean()))


class RuntimeAligner:
    """Aligns recordings to token sequences with an acoustic model's `aligner` graph."""

    def __init__(self, acoustic: AcousticModel, graph: str = "aligner") -> None:
        """graph: "aligner" (decides whether a transcript matches), or "joint_aligner" where the manifest
        has one (trained with the decoder; see the manifest's joint_aligner block)."""
        if graph not in acoustic.manifest.get("files", {}) or graph not in acoustic.manifest:
            raise RuntimeModelError(f"acoustic model {acoustic.folder} has no {graph} (exported before it existed): re-export it")
        self.session = acoustic.encoder(graph)
        self.cost_threshold = float(acoustic.manifest[graph]["cost_threshold"])

    def log_probs(self, tokens: TokenInputs, log_mel: np.ndarray) -> np.ndarray:
        """(T, N) alignment log-probabilities of a (T, n_mels) log-mel (reader_runtime.features) against the tokens."""
        (log_probs,) = self.session.run(None, {**tokens.feeds(), "log_mel": np.asarray(log_mel, np.float32)[None]})
        return log_probs[0]

    def align(self, tokens: TokenInputs, log_mel: np.ndarray) -> Alignment:
        """Token durations of the recording. A recording with fewer frames than tokens cannot hold the
        transcript (no monotonic path exists): it gets infinite costs and all-zero durations."""
        if log_mel.shape[0] < len(tokens):
            return Alignment(np.zeros(len(tokens), np.int64), float("inf"), self.cost_threshold, float("inf"))
        return alignment_of(self.log_probs(tokens, log_mel), self.cost_threshold)
