"""Vocos-style generator: log-mel frames -> per-frame STFT (n_fft 1024, hop 256), then inverse STFT.

Why this architecture (measured on the 2 shared CPU cores, see the report of issue 4): all layers run
at the frame rate (86 frames/s), not the sample rate, so it is ~10x cheaper than a HiFi-GAN of similar
quality; the inverse FFT + overlap-add is cheap numpy in the runtime. Every layer is a convolution
with a fixed kernel (no attention, no global normalisation), so an output frame depends only on the
input frames within `receptive_field_frames` on each side: streaming with that much context is exact.

The network predicts log-magnitude and phase per bin; the graph returns real and imaginary parts
(mag * cos, mag * sin), so the phase has no wrap-around discontinuity to learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from reader_runtime.features import FeatureSettings

# exp(log-magnitude) is capped: one wild bin early in training would otherwise blow up the losses.
MAX_LOG_MAGNITUDE = 6.0


@dataclass
class ModelConfig:
    n_mels: int = FeatureSettings.n_mels  # the frame geometry is the features' (check_feature_settings)
    channels: int = 192
    intermediate_channels: int = 576
    blocks: int = 6
    kernel_size: int = 7
    n_fft: int = FeatureSettings.n_fft
    hop_length: int = FeatureSettings.hop_length

    @property
    def receptive_field_frames(self) -> int:
        """Input frames each output frame sees on each side (input conv + one depthwise conv per block)."""
        return (self.kernel_size // 2) * (self.blocks + 1)


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over channels of a (B, C, T) tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class ConvNeXtBlock(nn.Module):
    def __init__(self, channels: int, intermediate_channels: int, kernel_size: int, layer_scale: float):
        super().__init__()
        self.depthwise = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.expand = nn.Linear(channels, intermediate_channels)
        self.contract = nn.Linear(intermediate_channels, channels)
        # Small initial residual scale (ConvNeXt/Vocos): each block starts close to the identity.
        self.scale = nn.Parameter(torch.full((channels,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        y = self.depthwise(x).transpose(1, 2)
        y = self.contract(F.gelu(self.expand(self.norm(y))))
        return x + (self.scale * y).transpose(1, 2)


class VocoderGenerator(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Conv1d(config.n_mels, config.channels, config.kernel_size, padding=config.kernel_size // 2)
        self.embed_norm = ChannelLayerNorm(config.channels)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(config.channels, config.intermediate_channels, config.kernel_size, 1.0 / config.blocks)
            for _ in range(config.blocks)
        )
        self.out_norm = nn.LayerNorm(config.channels)
        self.head = nn.Linear(config.channels, config.n_fft + 2)  # log-magnitude and phase of n_fft/2+1 bins
        self.register_buffer("window", torch.hann_window(config.n_fft, periodic=True), persistent=False)

    def forward(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, n_mels) -> real, imag (B, T, n_fft // 2 + 1) of each frame's STFT."""
        x = self.embed_norm(self.embed(log_mel.transpose(1, 2)))
        for block in self.blocks:
            x = block(x)
        log_magnitude, phase = self.head(self.out_norm(x.transpose(1, 2))).chunk(2, dim=-1)
        magnitude = torch.exp(log_magnitude.clamp(max=MAX_LOG_MAGNITUDE))
        return magnitude * torch.cos(phase), magnitude * torch.sin(phase)

    def waveform(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(B, T, n_mels) -> (B, T * hop) audio, as reader_runtime.vocoder computes it from the graph's output."""
        real, imag = self(log_mel)
        return inverse_stft(real, imag, self.window, self.config.hop_length)


def inverse_stft(real: torch.Tensor, imag: torch.Tensor, window: torch.Tensor, hop: int) -> torch.Tensor:
    """Weighted overlap-add of centred frames (frame i centred on sample i * hop), T * hop samples out.

    Normalised by the summed squared window of the frames present, so the ends (fewer overlapping
    frames) keep their level; the same convention as reader_runtime.vocoder's numpy overlap-add.
    """
    n_fft = window.numel()
    frames = torch.fft.irfft(torch.complex(real, imag), n=n_fft, dim=-1) * window  # (B, T, n_fft)
    n_frames = frames.shape[1]
    length = (n_frames - 1) * hop + n_fft

    def overlap_add(x: torch.Tensor) -> torch.Tensor:
        return F.fold(x.transpose(1, 2), output_size=(1, length), kernel_size=(1, n_fft), stride=(1, hop))[:, 0, 0]

    signal = overlap_add(frames)
    envelope = overlap_add((window**2).expand(1, n_frames, n_fft))
    start = n_fft // 2
    return signal[:, start : start + n_frames * hop] / envelope[:, start : start + n_frames * hop]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_feature_settings(config: ModelConfig, settings: FeatureSettings) -> None:
    if (config.n_fft, config.hop_length, config.n_mels) != (settings.n_fft, settings.hop_length, settings.n_mels):
        raise ValueError(f"model STFT/mel sizes {config} do not match the features {settings}")
