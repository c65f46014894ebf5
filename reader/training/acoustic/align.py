"""Learned phoneme durations: attention prior, forward-sum loss and monotonic alignment search.

The unsupervised aligner of RAD-TTS ("One TTS Alignment To Rule Them All", Badlani et al. 2022):
a soft alignment (frames attending over tokens, L2 distance between learned keys and queries, plus a
beta-binomial prior that favours the diagonal) trained with a CTC-style forward-sum loss over all
monotonic paths; the hard durations used everywhere else are its most likely monotonic path (MAS,
as in Glow-TTS), found in numpy by reader_runtime.aligner, which also aligns real recordings at run time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reader_runtime.aligner import monotonic_alignment_search  # noqa: F401  (training's durations; re-exported for model.py)

MASKED_LOG_PROB = -1e4  # finite stand-in for log 0: -inf turns into NaN in the CTC and softmax gradients


def log_beta_binomial_prior(text_lengths: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, N) log of RAD-TTS's beta-binomial alignment prior: frame t of T favours token ~ t/T * N.

    Padding positions get MASKED_LOG_PROB. With RAD-TTS's scale of 1, every argument of the Gamma
    functions is a whole number, so log Gamma(m) = log (m-1)! is read from a table of log factorials:
    exact, and exportable to ONNX, which has no lgamma. Lengths stay tensors so that a traced graph
    keeps them dynamic.
    """
    device = text_lengths.device
    max_tokens, max_frames = text_lengths.max(), frame_lengths.max()
    n = (text_lengths - 1)[:, None, None]  # binomial trials: tokens 0..N-1
    k = torch.arange(max_tokens, device=device)[None, None, :]
    t = torch.arange(1, max_frames + 1, device=device)[None, :, None]
    # alpha = t, beta = T - t + 1 (>= 1 on valid frames; padding frames are clamped, then masked)
    beta = (frame_lengths[:, None, None] - t + 1).clamp(min=1)
    rest = (n - k).clamp(min=0)
    log_factorial = F.pad(torch.cumsum(torch.log(torch.arange(1, max_tokens + max_frames + 1, dtype=torch.float64, device=device)), 0), (1, 0))
    log_gamma = lambda m: log_factorial[m - 1]  # noqa: E731
    log_beta = lambda a, b: log_gamma(a) + log_gamma(b) - log_gamma(a + b)  # noqa: E731
    log_choose = log_gamma(n + 1) - log_gamma(k + 1) - log_gamma(rest + 1)
    log_prior = log_choose + log_beta(k + t, rest + beta) - log_beta(t, beta)
    valid = (k <= n) & (t <= frame_lengths[:, None, None])
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
