"""Vocoder training: a Vocos-style generator (log-mel -> per-frame STFT) trained with spectral losses."""
