"""Discriminators for adversarial fine-tuning of the vocoder: multi-resolution spectrogram (UnivNet,
Vocos) and, optionally, multi-period waveform (HiFi-GAN).

Spectral losses alone leave a GAN-free vocoder buzzy: they judge magnitudes frame by frame and never
whether the result sounds like speech. A discriminator does. The spectrogram ones look at
log-magnitude spectrograms at several resolutions with small 2-D convolution stacks (16 channels by
default, a fraction of the usual 32, because they train on two shared CPU cores). Magnitudes cannot
show a wrong phase, and the shipped vocoder's phase costs it half of its DNSMOS gap to the recordings
on LJ (benchmarks/vocoder_copy_synthesis.py, test clips: OVRL 3.07, 3.34 with the recording's phase,
recordings 3.58; kathleen 3.40, 3.51, 3.70); the period
ones (`periods`) look at the waveform folded by a period, where a phase that drifts between frames
breaks the sample-to-sample pattern of every period of a voiced sound. Least-squares GAN losses and
feature matching as in HiFi-GAN. Training-time only: nothing of it is exported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from reader_runtime.features import LOG_FLOOR


@dataclass
class AdversarialConfig:
    weight: float = 0.0  # 0: no discriminator (spectral losses only)
    feature_matching_weight: float = 0.0
    channels: int = 16
    resolutions: list[list[int]] = field(default_factory=lambda: [[512, 128], [1024, 256], [2048, 512]])  # (n_fft, hop)
    periods: list[int] = field(default_factory=list)  # waveform discriminators' periods (HiFi-GAN: 2, 3, 5, 7, 11)
    learning_rate: float = 2e-4
    start_step: int = 0  # the discriminator trains alone until this step (its opinions start as noise)


class ConvStackDiscriminator(nn.Module):
    """A 2-D convolution stack judging a (B, 1, height, width) image: logits and feature maps."""

    def __init__(self, layers: list[nn.Conv2d], output: nn.Conv2d):
        super().__init__()
        self.layers = nn.ModuleList(weight_norm(layer) for layer in layers)
        self.output = weight_norm(output)

    def judge(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x, features = image, []
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.1)
            features.append(x)
        return self.output(x).flatten(1), features


class ImageDiscriminator(ConvStackDiscriminator):
    """Judges a (B, 1, frames, bins) spectrogram image, halving its bins three times."""

    def __init__(self, channels: int):
        super().__init__(
            [nn.Conv2d(1, channels, (3, 9), padding=(1, 4))]
            + [nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), padding=(1, 4)) for _ in range(3)]
            + [nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))],
            nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)),
        )


class SpectrogramDiscriminator(ImageDiscriminator):
    def __init__(self, n_fft: int, hop: int, channels: int):
        super().__init__(channels)
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, samples) -> logits (B, ...) and the feature maps (for feature matching)."""
        spectrum = torch.stft(audio, self.n_fft, self.hop, window=self.window, center=True, return_complex=True)
        return self.judge(torch.log(spectrum.abs().clamp(min=LOG_FLOOR)).transpose(1, 2)[:, None])  # (B, 1, frames, bins)


class PeriodDiscriminator(ConvStackDiscriminator):
    """HiFi-GAN's: the waveform folded into (samples / period, period), judged down its columns (each
    column one phase of the period), with 16 to 64 channels against HiFi-GAN's 32 to 1024, for the
    same reason."""

    def __init__(self, period: int, channels: int):
        widths = [1, channels, 2 * channels, 4 * channels, 4 * channels]
        super().__init__(
            [nn.Conv2d(a, b, (5, 1), stride=(3, 1), padding=(2, 0)) for a, b in zip(widths, widths[1:])] + [nn.Conv2d(widths[-1], widths[-1], (5, 1), padding=(2, 0))],
            nn.Conv2d(widths[-1], 1, (3, 1), padding=(1, 0)),
        )
        self.period = period

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, samples) -> logits (B, ...) and the feature maps (for feature matching)."""
        padded = F.pad(audio, (0, -audio.shape[1] % self.period), mode="reflect")
        return self.judge(padded.view(audio.shape[0], 1, -1, self.period))


class Discriminators(nn.Module):
    """Every spectrogram discriminator of the config's resolutions and period discriminator of its periods."""

    def __init__(self, config: AdversarialConfig):
        super().__init__()
        self.discriminators = nn.ModuleList(
            [SpectrogramDiscriminator(n_fft, hop, config.channels) for n_fft, hop in config.resolutions]
            + [PeriodDiscriminator(period, config.channels) for period in config.periods]
        )

    def forward(self, audio: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [d(audio) for d in self.discriminators]


def discriminator_loss(real: list, fake: list) -> torch.Tensor:
    """Least-squares GAN: real judged 1, generated 0 (fake computed from a detached generator output)."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(f**2) for (r, _), (f, _) in zip(real, fake, strict=True))


def generator_losses(real: list, fake: list) -> tuple[torch.Tensor, torch.Tensor]:
    """(adversarial, feature matching): generated judged 1; L1 between real and generated feature maps."""
    adversarial = sum(torch.mean((1 - f) ** 2) for f, _ in fake)
    matching = sum(
        torch.mean(torch.abs(r.detach() - g)) for (_, real_features), (_, fake_features) in zip(real, fake, strict=True) for r, g in zip(real_features, fake_features, strict=True)
    )
    return adversarial, matching
