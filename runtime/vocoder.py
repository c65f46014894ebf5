"""Vocoder: natural-log mel frames -> waveform, whole utterances or streamed chunk by chunk.

The ONNX graph maps log-mel frames to each frame's STFT (n_fft 1024, hop 256); the inverse FFT and a
window-normalised overlap-add are done here in numpy (as reader.training.vocoder.model.inverse_stft).
Streaming is exact, not crossfaded: a spectrum frame depends only on the mel frames within
`receptive_field_frames`, so VocoderStream runs the graph on each new stretch with that much context and
emits only the samples no later frame can change. Denoising (manifest `denoise.strength`) subtracts the
graph's own noise floor (its magnitudes for a silent mel) from every frame, phase kept.
Details: docs/vocoders.md.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import RuntimeModelError
from .features import LOG_FLOOR, FeatureSettings
from .manifest import MANIFEST_NAME as MANIFEST_NAME  # re-exported: the vocoder exporter writes it
from .manifest import read_manifest
from .session import SessionOptions, load_session

FORMAT_VERSION = 1
# A strength beyond this would subtract far more than the noise floor: a corrupt manifest, not a setting.
MAX_DENOISE_STRENGTH = 16.0


@dataclass(frozen=True)
class VocoderSpec:
    """What the runtime needs to know about an exported vocoder (from its manifest)."""

    graph_file: str
    features: FeatureSettings
    receptive_field_frames: int
    denoise_strength: float = 0.0


def set_denoise_strength(folder: str | Path, strength: float, selection: str) -> None:
    """Write the denoise strength (and how it was chosen) into the manifest of the vocoder in `folder`."""
    if not 0.0 <= strength <= MAX_DENOISE_STRENGTH:
        raise ValueError(f"denoise strength {strength} is not in [0, {MAX_DENOISE_STRENGTH:g}]")
    path = Path(folder) / MANIFEST_NAME
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["denoise"] = {
        "strength": strength,
        "method": "the graph's magnitude spectrum for a silent mel, times the strength, subtracted from every frame's magnitude, phase kept (runtime/vocoder.py)",
        "selection": selection,
    }
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


class Vocoder:
    def __init__(self, session, spec: VocoderSpec):
        self.session = session
        self.spec = spec
        settings = spec.features
        self.window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(settings.n_fft) / settings.n_fft)).astype(np.float64)
        self.window_squared = self.window**2  # the overlap-add's normalising envelope, per frame
        self.noise_floor = spec.denoise_strength * self.silence_magnitude() if spec.denoise_strength > 0 else None
        # Mel frames a stream must have received beyond a sample's frame before it emits that sample.
        self.lookahead_frames = spec.receptive_field_frames + 2
        self.ramp_chunks = 0  # reader_runtime.stream.first_cuts: far ahead of real time, one small first chunk is enough

    @classmethod
    def load(cls, folder: str | Path, options: SessionOptions = SessionOptions()) -> Vocoder:
        """The vocoder in `folder` (manifest.json and its graph); bad files raise RuntimeModelError."""
        manifest = read_manifest(folder, "vocoder", FORMAT_VERSION)
        try:
            spec = VocoderSpec(
                manifest.files["graph"].path.name, FeatureSettings(**manifest.data["features"]), int(manifest.data["receptive_field_frames"]),
                float(manifest.data.get("denoise", {}).get("strength", 0.0)),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RuntimeModelError(f"vocoder manifest is unreadable: {manifest.path} ({exc})") from None
        if not 0.0 <= spec.denoise_strength <= MAX_DENOISE_STRENGTH:  # also refuses NaN
            raise RuntimeModelError(f"vocoder manifest {manifest.path}: denoise strength {spec.denoise_strength} is not in [0, {MAX_DENOISE_STRENGTH:g}]")
        if spec.features != FeatureSettings():
            raise RuntimeModelError(f"vocoder {manifest.path} expects features {asdict(spec.features)}, the engine computes {asdict(FeatureSettings())}")
        return cls(load_session(manifest.files["graph"].path, options), spec)

    def graph_spectra(self, log_mel: np.ndarray) -> np.ndarray:
        """(T, n_mels) -> (T, n_fft // 2 + 1) complex STFT frames, as the graph gives them."""
        real, imag = self.session.run(None, {"log_mel": np.asarray(log_mel, np.float32)[None]})
        return real[0].astype(np.float64) + 1j * imag[0].astype(np.float64)

    def silence_magnitude(self) -> np.ndarray:
        """(n_fft // 2 + 1,) the graph's magnitude spectrum for digital silence (every mel bin at the
        features' log floor), where no frame sees the padding at the ends."""
        context = self.spec.receptive_field_frames
        silent = np.full((2 * context + 1, self.spec.features.n_mels), np.log(LOG_FLOOR), np.float32)
        return np.abs(self.graph_spectra(silent)[context])

    def spectra(self, log_mel: np.ndarray) -> np.ndarray:
        """(T, n_mels) -> (T, n_fft // 2 + 1) complex STFT frames: the graph's, denoised where the manifest says."""
        spectra = self.graph_spectra(log_mel)
        if self.noise_floor is None:
            return spectra
        magnitude = np.abs(spectra)
        return spectra * (np.maximum(magnitude - self.noise_floor, 0.0) / np.maximum(magnitude, 1e-12))

    def stream(self, max_wait_seconds: float | None = None) -> VocoderStream:
        """A stream (`max_wait_seconds` is the studio stream's: this one runs on every push and never waits)."""
        return VocoderStream(self)

    def synthesize(self, log_mel: np.ndarray) -> np.ndarray:
        """(T, n_mels) natural-log mel -> (T * hop,) float32 audio at the features' sample rate."""
        stream = self.stream()
        return np.concatenate([stream.push(log_mel), stream.finish()])


class VocoderStream:
    """Feed mel chunks with push(), then finish(); each call returns the audio that became final."""

    def __init__(self, vocoder: Vocoder):
        self.vocoder = vocoder
        settings = vocoder.spec.features
        self.hop, self.n_fft, self.n_mels = settings.hop_length, settings.n_fft, settings.n_mels
        self.context = vocoder.spec.receptive_field_frames
        self.mel = np.zeros((0, self.n_mels), dtype=np.float32)  # received frames from mel_start on
        self.mel_start = 0
        self.frames_received = 0
        self.frames_done = 0  # spectrum frames already overlap-added
        # Overlap-add accumulators of the signal and the squared window, from sample `emitted` on.
        self.signal = np.zeros(0)
        self.envelope = np.zeros(0)
        self.emitted = 0
        self.finished = False

    def push(self, log_mel_chunk: np.ndarray) -> np.ndarray:
        if self.finished:
            raise ValueError("this vocoder stream is finished; start a new one")
        chunk = np.asarray(log_mel_chunk, dtype=np.float32)
        if chunk.ndim != 2 or chunk.shape[1] != self.n_mels:
            raise ValueError(f"expected log-mel frames of shape (frames, {self.n_mels}), got {chunk.shape}")
        self.mel = np.concatenate([self.mel, chunk])
        self.frames_received += chunk.shape[0]
        return self._advance(final=False)

    def finish(self) -> np.ndarray:
        """The rest of the audio: the last frames see the utterance's end, as a whole-utterance call does."""
        if self.finished:
            return np.zeros(0, dtype=np.float32)
        self.finished = True
        return self._advance(final=True)

    def _advance(self, final: bool) -> np.ndarray:
        # Spectrum frames final now: all but the last `context` ones, or all of them at the end.
        ready_frames = self.frames_received if final else max(self.frames_received - self.context, self.frames_done)
        if ready_frames > self.frames_done:
            # Run the graph on [first, frames_received): `context` frames before the new ones (or the
            # utterance start, where the graph pads exactly as in a whole call) and all frames after.
            first = max(0, self.frames_done - self.context)
            spectra = self.vocoder.spectra(self.mel[first - self.mel_start :])
            self._overlap_add(spectra[self.frames_done - first : ready_frames - first], self.frames_done)
            self.frames_done = ready_frames
            keep_from = max(0, self.frames_done - self.context)
            self.mel = self.mel[keep_from - self.mel_start :]
            self.mel_start = keep_from
        # A sample is final once every frame whose window reaches it has been added.
        final_samples = self.frames_received * self.hop if final else max(self.emitted, self.frames_done * self.hop - self.n_fft // 2)
        count = final_samples - self.emitted
        audio = (self.signal[:count] / self.envelope[:count]).astype(np.float32)
        self.signal, self.envelope = self.signal[count:], self.envelope[count:]
        self.emitted = final_samples
        return audio

    def _overlap_add(self, spectra: np.ndarray, first_frame: int) -> None:
        if spectra.shape[0] == 0:
            return
        window = self.vocoder.window
        frames = np.fft.irfft(spectra, n=self.n_fft, axis=-1) * window
        needed = (first_frame + spectra.shape[0] - 1) * self.hop + self.n_fft // 2 - self.emitted
        if needed > self.signal.size:
            self.signal = np.pad(self.signal, (0, needed - self.signal.size))
            self.envelope = np.pad(self.envelope, (0, needed - self.envelope.size))
        # Frame f covers hop-long blocks f .. f + n_fft / hop - 1: add the frames block-column by
        # block-column (a few array operations per call instead of two per frame).
        start = first_frame * self.hop - self.n_fft // 2 - self.emitted
        signal, envelope = overlap_add(frames, self.hop), overlap_add(np.broadcast_to(self.vocoder.window_squared, frames.shape), self.hop)
        skip = max(0, -start)  # the utterance's first frames reach before sample 0
        self.signal[start + skip : start + signal.size] += signal[skip:]
        self.envelope[start + skip : start + envelope.size] += envelope[skip:]


def overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """(F, n) frames, each `hop` samples after the one before (n a multiple of hop) -> their sum, (F - 1) * hop + n samples."""
    count, size = frames.shape
    blocks = np.zeros((count + size // hop - 1, hop))
    for k in range(size // hop):
        blocks[k : k + count] += frames[:, k * hop : (k + 1) * hop]
    return blocks.ravel()
