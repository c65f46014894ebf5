"""Spectral losses between generated and recorded audio (no discriminator; see train.py for why).

- Multi-resolution STFT loss (Parallel WaveGAN): spectral convergence + L1 of log magnitudes at three
  window sizes. Short windows judge timing (and so phase coherence across frames), long ones judge
  harmonics; one resolution alone lets the other's artefacts through.
- Log-mel L1 (HiFi-GAN's reconstruction loss) with runtime.features' filterbank: what the ear weighs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from runtime.features import LOG_FLOOR, FeatureSettings, mel_filterbank


@dataclass
class LossConfig:
    resolutions: list[list[int]] = field(default_factory=lambda: [[512, 128], [1024, 256], [2048, 512]])  # (n_fft, hop)
    stft_weight: float = 1.0
    mel_weight: float = 1.0


def _magnitudes(audio: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, periodic=True, device=audio.device)
    spectrum = torch.stft(audio, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True)
    return spectrum.abs().clamp(min=LOG_FLOOR)  # (B, bins, frames)


class SpectralLosses(torch.nn.Module):
    def __init__(self, config: LossConfig, settings: FeatureSettings = FeatureSettings()):
        super().__init__()
        self.config = config
        self.settings = settings
        self.register_buffer("filterbank", torch.from_numpy(mel_filterbank(settings)), persistent=False)

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        magnitudes = _magnitudes(audio, self.settings.n_fft, self.settings.hop_length)
        return torch.log(torch.clamp(self.filterbank @ magnitudes, min=LOG_FLOOR))

    def forward(self, generated: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        convergence, log_magnitude = 0.0, 0.0
        for n_fft, hop in self.config.resolutions:
            generated_mag, target_mag = _magnitudes(generated, n_fft, hop), _magnitudes(target, n_fft, hop)
            convergence = convergence + torch.linalg.norm(target_mag - generated_mag) / torch.linalg.norm(target_mag)
            log_magnitude = log_magnitude + (torch.log(generated_mag) - torch.log(target_mag)).abs().mean()
        n = len(self.config.resolutions)
        return {
            "spectral_convergence": convergence / n,
            "log_magnitude": log_magnitude / n,
            "mel_l1": (self.log_mel(generated) - self.log_mel(target)).abs().mean(),
        }

    def total(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        stft = losses["spectral_convergence"] + losses["log_magnitude"]
        return self.config.stft_weight * stft + self.config.mel_weight * losses["mel_l1"]
