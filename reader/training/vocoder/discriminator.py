"""Multi-resolution spectrogram discriminator (UnivNet, Vocos) for adversarial fine-tuning of the vocoder.

Spectral losses alone leave a GAN-free vocoder buzzy: they judge magnitudes frame by frame and never
whether the result sounds like speech. A discriminator does. This one looks at log-magnitude
spectrograms at several resolutions with small 2-D convolution stacks (16 channels by default, a
fraction of the usual 32, because it trains on two shared CPU cores); least-squares GAN losses and
feature matching as in HiFi-GAN. Training-time only: nothing of it is exported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from runtime.features import LOG_FLOOR


@dataclass
class AdversarialConfig:
    weight: float = 0.0  # 0: no discriminator (spectral losses only)
    feature_matching_weight: float = 0.0
    channels: int = 16
    resolutions: list[list[int]] = field(default_factory=lambda: [[512, 128], [1024, 256], [2048, 512]])  # (n_fft, hop)
    learning_rate: float = 2e-4
    start_step: int = 0  # the discriminator trains alone until this step (its opinions start as noise)


class ImageDiscriminator(nn.Module):
    """A small 2-D convolution stack judging a (B, 1, frames, bins) image: logits and feature maps."""

    def __init__(self, channels: int):
        super().__init__()
        self.layers = nn.ModuleList(
            [weight_norm(nn.Conv2d(1, channels, (3, 9), padding=(1, 4)))]
            + [weight_norm(nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), padding=(1, 4))) for _ in range(3)]
            + [weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1)))]
        )
        self.output = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def judge(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x, features = image, []
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.1)
            features.append(x)
        return self.output(x).flatten(1), features


class SpectrogramDiscriminator(ImageDiscriminator):
    def __init__(self, n_fft: int, hop: int, channels: int):
        super().__init__(channels)
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, samples) -> logits (B, ...) and the feature maps (for feature matching)."""
        spectrum = torch.stft(audio, self.n_fft, self.hop, window=self.window, center=True, return_complex=True)
        return self.judge(torch.log(spectrum.abs().clamp(min=LOG_FLOOR)).transpose(1, 2)[:, None])  # (B, 1, frames, bins)


class MultiResolutionDiscriminator(nn.Module):
    def __init__(self, config: AdversarialConfig):
        super().__init__()
        self.discriminators = nn.ModuleList(SpectrogramDiscriminator(n_fft, hop, config.channels) for n_fft, hop in config.resolutions)

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
