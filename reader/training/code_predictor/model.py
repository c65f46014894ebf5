"""The code predictor network: token embeddings + position, syntax and BERT projections + speaker + the
reading context (one row per unit, added to each of its tokens), a dilated convolution stack (about 120
tokens of context either side: a whole sentence, where the acoustic model's own predictor sees five
tokens), and a linear head to the prosody codes."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from reader.prosody_prediction import BERT_DIM, CONTEXT_DIM, POSITION_DIM, SYNTAX_DIM
from reader.training.acoustic.model import ConvStack, TokenEmbedding


@dataclass
class PredictorConfig:
    hidden: int = 128
    kernel_size: int = 5
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 1, 2, 4, 8])
    dropout: float = 0.25  # ~1,400 clips: at 0.1 the valid loss turned up after 400 steps of 2,000
    bert_dropout: float = 0.5  # 384 inputs per token: the projection overfits first
    n_speakers: int = 2
    code_dim: int = 4


class CodePredictorNet(nn.Module):
    def __init__(self, config: PredictorConfig):
        super().__init__()
        self.config = config
        hidden = config.hidden
        self.embedding = TokenEmbedding(hidden)
        self.speaker = nn.Embedding(config.n_speakers, hidden)
        self.position = nn.Linear(POSITION_DIM, hidden)
        self.syntax = nn.Linear(SYNTAX_DIM, hidden)
        self.bert = nn.Sequential(nn.Dropout(config.bert_dropout), nn.Linear(BERT_DIM, hidden))
        self.convs = ConvStack(hidden, config.kernel_size, config.dilations, config.dropout)
        self.head = nn.Linear(hidden, config.code_dim)
        # Variance compensation (set after training, see train.py): a regression to the codes' mean is
        # flatter than any real reading; each dimension's deviation from the training mean is scaled
        # back towards the recorded codes' spread (global variance, as in HMM-era TTS).
        self.register_buffer("code_mean", torch.zeros(config.code_dim))
        self.register_buffer("code_scale", torch.ones(config.code_dim))
        # The context projection is made last and from a forked RNG, without a bias, and its dropout draws
        # from a generator of its own: a set without context (all zeros) trains exactly as before it
        # existed (same initial weights, same dropout masks, zero contribution and gradient).
        with torch.random.fork_rng(devices=[]):
            self.context = nn.Linear(CONTEXT_DIM, hidden, bias=False)
            self.context_dropout = torch.Generator().manual_seed(int(torch.randint(2**31 - 1, ())))
        # The mean previous-sentence vector of the training units that have one (set before training):
        # centred, an absent previous sentence (a paragraph's start, ARCTIC's lone sentences) reads as an
        # average one rather than carrying a voice's offset, since in the data only LJ has them.
        self.register_buffer("previous_mean", torch.zeros(BERT_DIM))

    def forward(self, symbol_ids, stress_ids, word_position_ids, break_ids, speaker_id, position, syntax, bert, context, token_mask=None):
        """(B, N, code_dim) codes; context (B, CONTEXT_DIM); token_mask (B, N) float, None = all valid (export, batch of one)."""
        if token_mask is None:
            token_mask = torch.ones_like(symbol_ids, dtype=torch.float32)
        x = self.embedding(symbol_ids, stress_ids, word_position_ids, break_ids) + self.speaker(speaker_id)[:, None, :]
        x = x + self.position(position) + self.syntax(syntax) + self.bert(bert) + self.context(self.centred(context))[:, None, :]
        codes = self.head(self.convs(x * token_mask[..., None], token_mask))
        return (self.code_mean + (codes - self.code_mean) * self.code_scale) * token_mask[..., None]

    def centred(self, context: torch.Tensor) -> torch.Tensor:
        previous, continues = context[:, :BERT_DIM], context[:, BERT_DIM:]
        present = (previous.abs().sum(-1, keepdim=True) > 0).to(previous.dtype)
        previous = (previous - self.previous_mean) * present
        if self.training:
            keep = torch.rand(previous.shape, generator=self.context_dropout) >= self.config.bert_dropout
            previous = previous * keep / (1 - self.config.bert_dropout)
        return torch.cat([previous, continues], -1)
