"""Learned phoneme durations: attention prior, forward-sum loss and monotonic alignment search.

The unsupervised aligner of RAD-TTS ("One TTS Alignment To Rule Them All", Badlani et al. 2022):
a soft alignment (frames attending over tokens, L2 distance between learned keys and queries, plus a
beta-binomial prior that favours the diagonal) trained with a CTC-style forward-sum loss over all
monotonic paths; the hard durations used everywhere else are its most likely monotonic path (MAS,
as in Glow-TTS), found here in numpy vectorised over the batch and the tokens.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

MASKED_LOG_PROB = -1e4  # finite stand-in for log 0: -inf turns into NaN in the CTC and softmax gradients


def monotonic_alignment_search(log_probs: np.ndarray, text_lengths: np.ndarray, frame_lengths: np.ndarray) -> np.ndarray:
    """(B, N) int64 durations of the best monotonic path through (B, T, N) frame-by-token log-probs.

    The path starts at (frame 0, token 0), ends at (last frame, last token), and at each frame either
    stays on its token or moves to the next one, so every token gets at least one frame (needs T >= N).
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


def log_beta_binomial_prior(text_lengths: torch.Tensor, frame_lengths: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """(B, T, N) log of RAD-TTS's beta-binomial alignment prior: frame t of T favours token ~ t/T * N.

    Padding positions get MASKED_LOG_PROB.
    """
    max_tokens, max_frames = int(text_lengths.max()), int(frame_lengths.max())
    n = (text_lengths - 1).to(torch.float64)[:, None, None]  # binomial trials: tokens 0..N-1
    k = torch.arange(max_tokens, dtype=torch.float64)[None, None, :]
    t = torch.arange(1, max_frames + 1, dtype=torch.float64)[None, :, None]
    alpha = scale * t
    beta = scale * (frame_lengths.to(torch.float64)[:, None, None] - t + 1)
    log_beta = lambda a, b: torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)  # noqa: E731
    log_choose = torch.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma((n - k).clamp(min=0) + 1)
    log_prior = log_choose + log_beta(k + alpha, (n - k).clamp(min=0) + beta.clamp(min=1e-3)) - log_beta(alpha, beta.clamp(min=1e-3))
    valid = (k < n + 1) & (t <= frame_lengths[:, None, None])
    return torch.where(valid, log_prior, torch.full_like(log_prior, MASKED_LOG_PROB)).to(torch.float32)


def forward_sum_loss(attention_log_probs: torch.Tensor, text_lengths: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
    """RAD-TTS's forward-sum loss: -log of the total probability of all monotonic paths, via CTC.

    attention_log_probs: (B, T, N), padding already at MASKED_LOG_PROB. Each token is a CTC target in
    order; a blank class with a fixed low score lets CTC's path structure express "stay on a token".
    """
    batch, max_frames, max_tokens = attention_log_probs.shape
    blank = torch.full((batch, max_frames, 1), -1.0, dtype=attention_log_probs.dtype)
    with_blank = F.log_softmax(torch.cat([blank, attention_log_probs], dim=-1), dim=-1)
    targets = torch.arange(1, max_tokens + 1).expand(batch, max_tokens)
    return F.ctc_loss(
        with_blank.transpose(0, 1), targets, frame_lengths, text_lengths, blank=0, reduction="mean", zero_infinity=True
    )


def alignment_matrix(durations: torch.Tensor, n_frames: torch.Tensor | int) -> torch.Tensor:
    """(B, T, N) 0/1 matrix with frame t assigned to token i iff start_i <= t < end_i.

    Written with cumsum and comparisons (no repeat_interleave) so that it exports to ONNX with a
    data-dependent number of frames.
    """
    ends = torch.cumsum(durations, dim=-1)
    starts = ends - durations
    frames = torch.arange(n_frames, device=durations.device)[None, :, None]
    return ((frames >= starts[:, None, :]) & (frames < ends[:, None, :])).to(torch.float32)
