"""Spectral losses between generated and recorded audio (no discriminator; see train.py for why).

Multi-resolution STFT loss (Parallel WaveGAN), log-mel L1 (HiFi-GAN's), and for a teacher's target
only a complex STFT L1 (`complex_weight`) and APNet's anti-wrapping phase losses (`phase_weight`).
What each judges and what was measured: docs/training.md#vocoder-losses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from reader_runtime.features import LOG_FLOOR, FeatureSettings, mel_filterbank


@dataclass
class LossConfig:
    resolutions: list[list[int]] = field(default_factory=lambda: [[512, 128], [1024, 256], [2048, 512]])  # (n_fft, hop)
    stft_weight: float = 1.0
    mel_weight: float = 1.0
    complex_weight: float = 0.0
    complex_compression: float = 0.3
    phase_weight: float = 0.0


def _spectrum(audio: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, periodic=True, device=audio.device)
    return torch.stft(audio, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True)  # (B, bins, frames)


def _magnitudes(audio: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    return _spectrum(audio, n_fft, hop).abs().clamp(min=LOG_FLOOR)


def _wrapped_angle_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|angle(a) - angle(b)| wrapped into [0, pi], for unit-magnitude complex tensors."""
    return torch.angle(a * b.conj()).abs()


def phase_losses(generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Anti-wrapping instantaneous phase + group delay + instantaneous frequency errors of two
    (B, bins, frames) spectra, weighted by the target's square-rooted magnitude."""
    unit_generated = generated / (generated.abs() + LOG_FLOOR)
    unit_target = target / (target.abs() + LOG_FLOOR)
    weight = target.abs().sqrt()
    weight = weight / weight.mean(dim=(1, 2), keepdim=True).clamp(min=LOG_FLOOR)

    def weighted(error: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return (error * w).mean()

    instantaneous = weighted(_wrapped_angle_difference(unit_generated, unit_target), weight)
    # Steps along frequency (group delay) and along time (instantaneous frequency), as phase rotations.
    group_delay = weighted(
        _wrapped_angle_difference(unit_generated[:, 1:] * unit_generated[:, :-1].conj(), unit_target[:, 1:] * unit_target[:, :-1].conj()),
        torch.minimum(weight[:, 1:], weight[:, :-1]),
    )
    frequency = weighted(
        _wrapped_angle_difference(unit_generated[..., 1:] * unit_generated[..., :-1].conj(), unit_target[..., 1:] * unit_target[..., :-1].conj()),
        torch.minimum(weight[..., 1:], weight[..., :-1]),
    )
    return instantaneous + group_delay + frequency


def _compressed(spectrum: torch.Tensor, power: float) -> torch.Tensor:
    magnitude = spectrum.abs().clamp(min=LOG_FLOOR)
    return torch.view_as_real(spectrum * (magnitude ** (power - 1.0)))


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
        convergence, log_magnitude, complex_l1, phase = 0.0, 0.0, 0.0, 0.0
        for n_fft, hop in self.config.resolutions:
            generated_spectrum, target_spectrum = _spectrum(generated, n_fft, hop), _spectrum(target, n_fft, hop)
            generated_mag, target_mag = generated_spectrum.abs().clamp(min=LOG_FLOOR), target_spectrum.abs().clamp(min=LOG_FLOOR)
            convergence = convergence + torch.linalg.norm(target_mag - generated_mag) / torch.linalg.norm(target_mag)
            log_magnitude = log_magnitude + (torch.log(generated_mag) - torch.log(target_mag)).abs().mean()
            if self.config.complex_weight:
                power = self.config.complex_compression
                complex_l1 = complex_l1 + (_compressed(generated_spectrum, power) - _compressed(target_spectrum, power)).abs().mean()
            if self.config.phase_weight:
                phase = phase + phase_losses(generated_spectrum, target_spectrum)
        n = len(self.config.resolutions)
        losses = {
            "spectral_convergence": convergence / n,
            "log_magnitude": log_magnitude / n,
            "mel_l1": (self.log_mel(generated) - self.log_mel(target)).abs().mean(),
        }
        if self.config.complex_weight:
            losses["complex_l1"] = complex_l1 / n
        if self.config.phase_weight:
            losses["phase"] = phase / n
        return losses

    def total(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        stft = losses["spectral_convergence"] + losses["log_magnitude"]
        total = self.config.stft_weight * stft + self.config.mel_weight * losses["mel_l1"]
        if "complex_l1" in losses:
            total = total + self.config.complex_weight * losses["complex_l1"]
        if "phase" in losses:
            total = total + self.config.phase_weight * losses["phase"]
        return total
