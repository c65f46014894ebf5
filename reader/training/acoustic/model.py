"""The acoustic model: phonemes (+ word and break features), speaker, utterance embedding -> log-mel.

One non-autoregressive model holding both papers' ideas: an utterance-level VAE reference encoder
(Tyagi et al., 16-d embedding), a CopyCat reference encoder (Karlapati et al., a 4-d code per token,
speaker-independent), a prosody-code predictor for plain TTS, FastPitch-style duration, pitch and
energy predictors conditioned on the codes, and a convolutional encoder and decoder. Durations come
from the unsupervised aligner in align.py, trained jointly. Why each choice: docs/training.md#the-acoustic-model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reader.model_inputs import N_BREAK_IDS, N_STRESS_IDS, N_WORD_POSITION_IDS, SYMBOLS

from .align import MASKED_LOG_PROB, alignment_matrix, forward_sum_loss, log_beta_binomial_prior, monotonic_alignment_search
from .data import Batch, NormalisationStats


@dataclass
class ModelConfig:
    n_speakers: int = 2
    hidden: int = 128
    encoder_layers: int = 4
    decoder_dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 1, 2, 4])
    kernel_size: int = 5
    predictor_layers: int = 2
    reference_channels: int = 128
    utterance_embedding_dim: int = 16
    prosody_code_dim: int = 4
    # False builds the transfer baseline of the CopyCat paper's comparison: a reference encoder that is
    # not made speaker-independent (no instance normalisation, no speaker input; pair it with a wide
    # code and no KL in the config).
    copycat_speaker_independent: bool = True
    # Share of training utterances decoded from the *predicted* prosody codes instead of the reference
    # encoder's. With reference codes only, the decoder never needs the utterance embedding (the codes
    # already carry each clip's prosody) and the utterance VAE collapsed (embeddings spread 1e-4);
    # decoding some clips from text + utterance embedding gives the embedding a real job, and trains the
    # path plain TTS uses at inference.
    predicted_code_share: float = 0.0
    aligner_dim: int = 80
    aligner_temperature: float = 0.0005  # RAD-TTS's scale on the squared key-query distance
    dropout: float = 0.1
    n_mels: int = 80


def sequence_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """(B, max_length) float mask, 1 on valid positions."""
    return (torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]).to(torch.float32)


class ConvBlock(nn.Module):
    """Pre-norm residual 1-D convolution over (B, T, C) sequences."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=dilation * (kernel_size - 1) // 2, dilation=dilation)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.conv((self.norm(x) * mask[..., None]).transpose(1, 2)).transpose(1, 2)
        return (x + self.dropout(F.relu(y))) * mask[..., None]


class ConvStack(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilations: list[int], dropout: float):
        super().__init__()
        self.blocks = nn.ModuleList(ConvBlock(channels, kernel_size, d, dropout) for d in dilations)
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x) * mask[..., None]


class TokenEmbedding(nn.Module):
    """Sum of symbol, stress, word-position and break-level embeddings."""

    def __init__(self, hidden: int):
        super().__init__()
        self.symbol = nn.Embedding(len(SYMBOLS), hidden)
        self.stress = nn.Embedding(N_STRESS_IDS, hidden)
        self.word_position = nn.Embedding(N_WORD_POSITION_IDS, hidden)
        self.break_level = nn.Embedding(N_BREAK_IDS, hidden)

    def forward(self, symbol_ids, stress_ids, word_position_ids, break_ids) -> torch.Tensor:
        return self.symbol(symbol_ids) + self.stress(stress_ids) + self.word_position(word_position_ids) + self.break_level(break_ids)


class Aligner(nn.Module):
    """Soft text-to-frame alignment (RAD-TTS): log-softmax over tokens of -temperature * |query - key|^2,
    plus the beta-binomial prior. Returns (B, T, N) log-probabilities, padding at MASKED_LOG_PROB."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.temperature = config.aligner_temperature
        self.keys = nn.Sequential(
            nn.Conv1d(config.hidden, config.hidden, 3, padding=1), nn.ReLU(), nn.Conv1d(config.hidden, config.aligner_dim, 1)
        )
        self.queries = nn.Sequential(
            nn.Conv1d(config.n_mels, config.hidden, 3, padding=1), nn.ReLU(),
            nn.Conv1d(config.hidden, config.hidden, 1), nn.ReLU(), nn.Conv1d(config.hidden, config.aligner_dim, 1),
        )  # fmt: skip

    def forward(self, token_embeddings, log_mel, text_lengths, frame_lengths) -> torch.Tensor:
        keys = self.keys(token_embeddings.transpose(1, 2)).transpose(1, 2)  # (B, N, A)
        queries = self.queries(log_mel.transpose(1, 2)).transpose(1, 2)  # (B, T, A)
        # |q - k|^2 expanded, so no (B, T, N, A) difference tensor is built
        distance = queries.pow(2).sum(-1)[:, :, None] + keys.pow(2).sum(-1)[:, None, :] - 2 * queries @ keys.transpose(1, 2)
        text_mask = sequence_mask(text_lengths, keys.shape[1])[:, None, :] > 0
        scores = (-self.temperature * distance).masked_fill(~text_mask, MASKED_LOG_PROB)
        log_probs = F.log_softmax(scores, dim=-1) + log_beta_binomial_prior(text_lengths, frame_lengths)
        valid = text_mask & (sequence_mask(frame_lengths, queries.shape[1])[:, :, None] > 0)
        return log_probs.masked_fill(~valid, MASKED_LOG_PROB)


class UtteranceEncoder(nn.Module):
    """VAE reference encoder: mel -> (mean, log-variance) of the utterance's acoustic embedding.

    Strided convolutions (8x downsampling) then a masked mean over time: order-free pooling is enough
    for a sentence-wide summary, and exports to ONNX without recurrent ops. The mel is centred on the
    training mean and the activations are leaky: with raw log-mels (about -11..2) and plain ReLUs the
    first layer of the first shipped model died entirely (no unit ever active), which fixed every
    embedding to one constant."""

    def __init__(self, config: ModelConfig, log_mel_mean: list[float]):
        super().__init__()
        channels = config.reference_channels
        self.convs = nn.ModuleList(nn.Conv1d(config.n_mels if i == 0 else channels, channels, 3, stride=2, padding=1) for i in range(3))
        self.to_posterior = nn.Linear(channels, 2 * config.utterance_embedding_dim)
        self.register_buffer("log_mel_mean", torch.tensor(log_mel_mean, dtype=torch.float32))

    def forward(self, log_mel: torch.Tensor, frame_lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """frame_lengths None: every frame is valid (a single unpadded reference)."""
        x = (log_mel - self.log_mel_mean).transpose(1, 2)
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        if frame_lengths is None:
            pooled = x.mean(-1)
        else:
            lengths = frame_lengths
            for _ in self.convs:
                lengths = (lengths - 1) // 2 + 1
            mask = sequence_mask(lengths, x.shape[2])[:, None, :]
            pooled = (x * mask).sum(-1) / mask.sum(-1).clamp(min=1)
        mean, log_variance = self.to_posterior(pooled).chunk(2, dim=-1)
        return mean, log_variance


def instance_normalise(log_mel: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Each mel bin of each utterance to zero mean and unit variance over its valid frames."""
    weights = frame_mask[..., None]
    count = weights.sum(1, keepdim=True).clamp(min=1)
    mean = (log_mel * weights).sum(1, keepdim=True) / count
    variance = ((log_mel - mean).pow(2) * weights).sum(1, keepdim=True) / count
    return (log_mel - mean) / torch.sqrt(variance + 1e-5) * weights


def pool_to_tokens(frames: torch.Tensor, alignment: torch.Tensor) -> torch.Tensor:
    """(B, N, C) mean of each token's frames, from (B, T, C) frames and a (B, T, N) hard alignment."""
    return alignment.transpose(1, 2) @ frames / alignment.sum(1)[..., None].clamp(min=1)


class CopyCatEncoder(nn.Module):
    """Reference encoder: (mel, token encodings, speaker) -> per-token (mean, log-variance) codes."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        channels = config.reference_channels
        self.frame_in = nn.Linear(config.n_mels, channels)
        self.frame_convs = ConvStack(channels, config.kernel_size, [1, 2], config.dropout)
        self.token_in = nn.Linear(channels + config.hidden, config.hidden)
        self.token_convs = ConvStack(config.hidden, config.kernel_size, [1, 1], config.dropout)
        self.to_posterior = nn.Linear(config.hidden, 2 * config.prosody_code_dim)
        self.speaker_independent = config.copycat_speaker_independent

    def forward(self, log_mel, frame_mask, token_encodings, speaker, alignment, token_mask):
        reference = instance_normalise(log_mel, frame_mask) if self.speaker_independent else log_mel * frame_mask[..., None]
        frames = self.frame_convs(self.frame_in(reference), frame_mask)
        tokens = self.token_in(torch.cat([pool_to_tokens(frames, alignment), token_encodings], dim=-1))
        if self.speaker_independent:
            tokens = tokens + speaker[:, None, :]
        mean, log_variance = self.to_posterior(self.token_convs(tokens, token_mask)).chunk(2, dim=-1)
        return mean, log_variance


class TokenPredictor(nn.Module):
    """Small conv stack + linear head over token states (durations, pitch, energy, prosody codes)."""

    def __init__(self, config: ModelConfig, out_features: int):
        super().__init__()
        self.convs = ConvStack(config.hidden, config.kernel_size - 2, [1] * config.predictor_layers, config.dropout)
        self.head = nn.Linear(config.hidden, out_features)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(x, mask)) * mask[..., None]


@dataclass
class VarianceTargets:
    """Token-level targets derived from the hard alignment."""

    durations: torch.Tensor  # (B, N) frames
    normalised_log_f0: torch.Tensor  # (B, N)
    normalised_energy: torch.Tensor  # (B, N)


def gaussian_kl(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, var) || N(0, 1)) summed over the last dimension."""
    return 0.5 * (mean.pow(2) + log_variance.exp() - 1.0 - log_variance).sum(-1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


class AcousticModel(nn.Module):
    def __init__(self, config: ModelConfig, stats: NormalisationStats):
        super().__init__()
        self.config = config
        hidden = config.hidden
        self.embedding = TokenEmbedding(hidden)
        self.encoder = ConvStack(hidden, config.kernel_size, [1] * config.encoder_layers, config.dropout)
        self.speaker_embedding = nn.Embedding(config.n_speakers, hidden)
        self.aligner = Aligner(config)
        self.utterance_encoder = UtteranceEncoder(config, stats.log_mel_mean)
        self.copycat_encoder = CopyCatEncoder(config)
        self.utterance_projection = nn.Linear(config.utterance_embedding_dim, hidden)
        self.code_projection = nn.Linear(config.prosody_code_dim, hidden)
        self.code_predictor = TokenPredictor(config, config.prosody_code_dim)
        self.duration_predictor = TokenPredictor(config, 1)
        self.pitch_predictor = TokenPredictor(config, 1)
        self.energy_predictor = TokenPredictor(config, 1)
        self.pitch_embedding = nn.Conv1d(1, hidden, 3, padding=1)
        self.energy_embedding = nn.Conv1d(1, hidden, 3, padding=1)
        self.decoder = ConvStack(hidden, config.kernel_size, config.decoder_dilations, config.dropout)
        self.mel_out = nn.Linear(hidden, config.n_mels)
        with torch.no_grad():  # start from the average spectrum: the first steps then learn structure, not offset
            self.mel_out.bias.copy_(torch.tensor(stats.log_mel_mean))
        # Stored with the weights so exported graphs speak Hz.
        self.register_buffer("log_f0_mean", torch.tensor(stats.log_f0_mean))
        self.register_buffer("log_f0_std", torch.tensor(stats.log_f0_std))

    # -- pieces shared by training and inference -------------------------------------------------

    def encode_text(self, symbol_ids, stress_ids, word_position_ids, break_ids, token_mask):
        embeddings = self.embedding(symbol_ids, stress_ids, word_position_ids, break_ids)
        return embeddings, self.encoder(embeddings, token_mask)

    def conditioned_states(self, encodings, speaker, utterance_embedding, codes):
        """Token states that the variance predictors and the decoder read."""
        return encodings + speaker[:, None, :] + self.utterance_projection(utterance_embedding)[:, None, :] + self.code_projection(codes)

    def predict_codes(self, encodings, speaker, utterance_embedding, token_mask):
        states = encodings + speaker[:, None, :] + self.utterance_projection(utterance_embedding)[:, None, :]
        return self.code_predictor(states, token_mask)

    def decode(self, states, normalised_log_f0, normalised_energy, alignment, frame_mask):
        """Mel from token states, token pitch/energy and a (B, T, N) alignment."""
        variance = self.pitch_embedding(normalised_log_f0[:, None, :]) + self.energy_embedding(normalised_energy[:, None, :])
        frames = alignment @ (states + variance.transpose(1, 2))
        return self.mel_out(self.decoder(frames, frame_mask))

    # -- training --------------------------------------------------------------------------------

    def forward(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return self.training_losses(batch)  # forward() is what DistributedDataParallel wraps

    def training_losses(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Unweighted losses (train.py weights them) and the hard durations (for logging)."""
        token_mask = sequence_mask(batch.text_lengths, batch.symbol_ids.shape[1])
        frame_mask = sequence_mask(batch.frame_lengths, batch.log_mel.shape[1])
        embeddings, encodings = self.encode_text(batch.symbol_ids, batch.stress_ids, batch.word_position_ids, batch.break_ids, token_mask)
        speaker = self.speaker_embedding(batch.speaker_ids)

        attention = self.aligner(embeddings, batch.log_mel, batch.text_lengths, batch.frame_lengths)
        durations = torch.from_numpy(
            monotonic_alignment_search(attention.detach().cpu().numpy(), batch.text_lengths.cpu().numpy(), batch.frame_lengths.cpu().numpy())
        ).to(attention.device)
        alignment = alignment_matrix(durations, batch.log_mel.shape[1]) * frame_mask[..., None]
        targets = VarianceTargets(
            durations=durations,
            normalised_log_f0=pool_to_tokens(batch.normalised_log_f0[..., None], alignment)[..., 0],
            normalised_energy=pool_to_tokens(batch.normalised_energy[..., None], alignment)[..., 0],
        )

        utterance_mean, utterance_log_variance = self.utterance_encoder(batch.log_mel, batch.frame_lengths)
        utterance_embedding = utterance_mean + torch.randn_like(utterance_mean) * (0.5 * utterance_log_variance).exp()
        code_mean, code_log_variance = self.copycat_encoder(batch.log_mel, frame_mask, encodings, speaker, alignment, token_mask)
        codes = (code_mean + torch.randn_like(code_mean) * (0.5 * code_log_variance).exp()) * token_mask[..., None]
        # The utterance embedding is not detached here: predicting the codes is what gives it a job
        # (with the codes carrying the prosody, the decoder alone let the utterance VAE collapse).
        predicted_codes = self.predict_codes(encodings.detach(), speaker.detach(), utterance_embedding, token_mask)
        if self.training and self.config.predicted_code_share > 0:
            from_prediction = (torch.rand(codes.shape[0], 1, 1, device=codes.device) < self.config.predicted_code_share).to(codes.dtype)
            codes = from_prediction * predicted_codes * token_mask[..., None] + (1.0 - from_prediction) * codes

        states = self.conditioned_states(encodings, speaker, utterance_embedding, codes)
        # Text and speaker detached (Glow-TTS style: the regressions must not pull the text encoder away
        # from what the decoder needs); the utterance embedding and codes not, so that rate, pitch and
        # loudness, which the predictors need, are what those latents learn to hold.
        predictor_input = self.conditioned_states(encodings.detach(), speaker.detach(), utterance_embedding, codes)
        log_duration = self.duration_predictor(predictor_input, token_mask)[..., 0]
        pitch = self.pitch_predictor(predictor_input, token_mask)[..., 0]
        energy = self.energy_predictor(predictor_input, token_mask)[..., 0]
        mel = self.decode(states, targets.normalised_log_f0, targets.normalised_energy, alignment, frame_mask)

        mel_mask = frame_mask[..., None].expand_as(mel)
        soft_attention_at_path = (F.softmax(attention, dim=-1) * alignment).sum(-1)
        losses = {
            "mel": masked_mean((mel - batch.log_mel).abs(), mel_mask),
            "duration": masked_mean((log_duration - torch.log1p(durations.float())).pow(2), token_mask),
            "pitch": masked_mean((pitch - targets.normalised_log_f0).pow(2), token_mask),
            "energy": masked_mean((energy - targets.normalised_energy).pow(2), token_mask),
            "code_prediction": masked_mean((predicted_codes - code_mean.detach()).pow(2).mean(-1), token_mask),
            "kl_utterance": gaussian_kl(utterance_mean, utterance_log_variance).mean(),
            "kl_copycat": masked_mean(gaussian_kl(code_mean, code_log_variance), token_mask),
            "alignment_ctc": forward_sum_loss(attention, batch.text_lengths, batch.frame_lengths),
            # RAD-TTS's binarisation term: pulls the soft alignment towards the hard path.
            "alignment_binarisation": -masked_mean(torch.log(soft_attention_at_path.clamp(min=1e-8)), frame_mask),
        }
        return losses, durations

    # -- inference (exported to ONNX; batch of one, no padding) ---------------------------------------

    def synthesise(
        self,
        symbol_ids, stress_ids, word_position_ids, break_ids,  # (1, N) int64
        speaker_id,  # (1,) int64
        utterance_embedding,  # (1, E) float
        prosody_codes,  # (1, N, C) float: used where prosody_code_mask is 1
        prosody_code_mask,  # (1, N) float: 1 = use the given code, 0 = predict it from text
        duration_override,  # (1, N) float frames: >= 0 = use it (rounded), < 0 = predict
        f0_override,  # (1, N) float Hz: > 0 = use it, <= 0 = predict
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mel (1, T, n_mels), durations (1, N) int64 frames, f0 (1, N) Hz)."""  # fmt: skip
        token_mask = torch.ones_like(symbol_ids, dtype=torch.float32)
        _, encodings = self.encode_text(symbol_ids, stress_ids, word_position_ids, break_ids, token_mask)
        speaker = self.speaker_embedding(speaker_id)
        predicted_codes = self.predict_codes(encodings, speaker, utterance_embedding, token_mask)
        use_given = prosody_code_mask[..., None]
        codes = use_given * prosody_codes + (1.0 - use_given) * predicted_codes
        states = self.conditioned_states(encodings, speaker, utterance_embedding, codes)

        predicted_frames = (torch.exp(self.duration_predictor(states, token_mask)[..., 0]) - 1.0).round().clamp(min=1.0)
        durations = torch.where(duration_override >= 0, duration_override.round(), predicted_frames).long()
        override_log_f0 = (torch.log(f0_override.clamp(min=1.0)) - self.log_f0_mean) / self.log_f0_std
        log_f0 = torch.where(f0_override > 0, override_log_f0, self.pitch_predictor(states, token_mask)[..., 0])
        energy = self.energy_predictor(states, token_mask)[..., 0]

        alignment = alignment_matrix(durations, durations.sum())
        frame_mask = torch.ones_like(alignment[..., 0])
        mel = self.decode(states, log_f0, energy, alignment, frame_mask)
        f0_hz = torch.exp(log_f0 * self.log_f0_std + self.log_f0_mean)
        return mel, durations, f0_hz

    def reference_utterance_embedding(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(1, E) posterior mean of the utterance embedding of a (1, T, n_mels) reference."""
        mean, _ = self.utterance_encoder(log_mel)
        return mean

    def reference_prosody_codes(self, log_mel, symbol_ids, stress_ids, word_position_ids, break_ids, speaker_id, durations):
        """(1, N, C) posterior-mean CopyCat codes of a reference clip, given its token durations."""
        token_mask = torch.ones_like(symbol_ids, dtype=torch.float32)
        _, encodings = self.encode_text(symbol_ids, stress_ids, word_position_ids, break_ids, token_mask)
        alignment = alignment_matrix(durations, log_mel.shape[1])
        frame_mask = torch.ones_like(log_mel[..., 0])
        mean, _ = self.copycat_encoder(log_mel, frame_mask, encodings, self.speaker_embedding(speaker_id), alignment, token_mask)
        return mean


def count_parameters(module: nn.Module) -> int:
    return int(sum(np.prod(p.shape) for p in module.parameters()))
