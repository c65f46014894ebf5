"""The exported acoustic model: token arrays in, log-mel frames with durations and F0 out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import RuntimeModelError, UnknownVoiceError
from .manifest import read_manifest
from .session import SessionOptions, load_session

ACOUSTIC_FORMAT_VERSION = 1
# A post-net residual scaled further than this is no longer sharpening but a corrupt manifest.
MAX_POSTNET_GAIN = 4.0


@dataclass(frozen=True)
class TokenInputs:
    """One sentence as int64 token arrays of equal length (built by reader.model_inputs)."""

    symbol_ids: np.ndarray
    stress_ids: np.ndarray
    word_position_ids: np.ndarray
    break_ids: np.ndarray

    def __len__(self) -> int:
        return int(self.symbol_ids.shape[0])

    def feeds(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(self, name), dtype=np.int64)[None] for name in ("symbol_ids", "stress_ids", "word_position_ids", "break_ids")}


@dataclass(frozen=True)
class Speaker:
    id: int
    name: str
    synthetic: bool
    centroid: np.ndarray  # mean utterance embedding of the speaker's training clips


@dataclass(frozen=True)
class AcousticOutput:
    mel: np.ndarray  # (frames, n_mels) float32, natural-log mel: the first frames only while `features` is set
    durations: np.ndarray  # (tokens,) int64 frames per token
    f0: np.ndarray  # (tokens,) float32 Hz
    # A sentence decoded in part (AcousticModel.synthesize(first_frames=)): its frame features
    # (1, frames, channels), from which AcousticModel.decode_more decodes the frames after `mel`.
    features: np.ndarray | None = None

    @property
    def frames(self) -> int:
        """The sentence's length in frames, decoded or not."""
        return len(self.mel) if self.features is None else self.features.shape[1]


class AcousticModel:
    """onnxruntime sessions of the text-to-mel decoder (and, on first use, the reference encoders)."""

    def __init__(self, folder: Path, manifest: dict, options: SessionOptions) -> None:
        self.folder = folder
        self.manifest = manifest
        self.options = options
        self.sample_rate = int(manifest["sample_rate"])
        self.hop_length = int(manifest["features"]["hop_length"])
        self.symbols: list[str] = manifest["symbols"]
        self.utterance_embedding_dim = int(manifest["utterance_embedding_dim"])
        self.prosody_code_dim = int(manifest["prosody_code_dim"])
        self.speakers = [
            Speaker(
                id=int(s["id"]),
                name=s["name"],
                synthetic=bool(s["synthetic"]),
                centroid=np.asarray(s["utterance_embedding_centroid"] or np.zeros(self.utterance_embedding_dim), np.float32),
            )
            for s in manifest["speakers"]
        ]
        # The post-net sharpens the decoder's smooth mels (reader/training/acoustic/postnet.py); for the
        # voices the manifest's residual_gain names, its residual (output - input) is scaled, so that the
        # output has the recordings' spectral contrast (1.0 for the others).
        self._postnet = load_session(folder / manifest["files"]["postnet"]["file"], options) if "postnet" in manifest["files"] else None
        gains = manifest.get("postnet", {}).get("residual_gain", {})
        if not isinstance(gains, dict) or not all(isinstance(g, (int, float)) and 0.0 < g <= MAX_POSTNET_GAIN for g in gains.values()):
            raise RuntimeModelError(f"acoustic model {folder}: post-net residual_gain {gains} is not a gain in (0, {MAX_POSTNET_GAIN}] per voice: re-export it")
        self.postnet_gains = {name.lower(): float(gain) for name, gain in gains.items()}
        # Frames of context each side that make a post-net output exact (its convolutions' reach), so
        # that a stream sharpens each piece just before it is voiced rather than a sentence up front.
        self.postnet_context = manifest.get("postnet", {}).get("receptive_field_frames", 0) if self._postnet is not None else 0
        if self._postnet is not None and not (isinstance(self.postnet_context, int) and self.postnet_context > 0):
            raise RuntimeModelError(f"acoustic model {folder}: the manifest gives no post-net receptive_field_frames: re-export it")
        # text_to_mel, or the same graph cut before its frame decoder (reader/training/acoustic/decoder_split.py),
        # where the export made the cut: then a stream's first sentence can be decoded in parts, and the
        # whole graph is not loaded (`decoder_context` frames each side make a decoded frame exact).
        self._text_to_mel = self._text_to_frames = self._mel_decoder = None
        self.decoder_context = 0
        if "mel_decoder" not in manifest["files"]:
            self._text_to_mel = load_session(folder / manifest["files"]["text_to_mel"]["file"], options)
        else:
            decoder = manifest.get("decoder", {})
            if decoder.get("text_to_mel_sha256") != manifest["files"]["text_to_mel"]["sha256"]:
                raise RuntimeModelError(f"acoustic model {folder}: mel_decoder.onnx was not cut from this text_to_mel.onnx: run python -m reader.training.acoustic.decoder_split")
            self.decoder_context = decoder.get("context_frames")
            if not (isinstance(self.decoder_context, int) and self.decoder_context > 0):
                raise RuntimeModelError(f"acoustic model {folder}: the manifest gives no decoder context_frames: run python -m reader.training.acoustic.decoder_split")
            self._text_to_frames = load_session(folder / manifest["files"]["text_to_frames"]["file"], options)
            self._mel_decoder = load_session(folder / manifest["files"]["mel_decoder"]["file"], options)
        self._encoders: dict[str, object] = {}

    @classmethod
    def load(cls, folder: Path, options: SessionOptions = SessionOptions()) -> "AcousticModel":
        return cls(folder, read_manifest(folder, "acoustic", ACOUSTIC_FORMAT_VERSION).data, options)

    def speaker(self, name: str) -> Speaker:
        for s in self.speakers:
            if s.name.lower() == name.lower():  # voice names are not case-sensitive
                return s
        raise UnknownVoiceError(f"unknown voice {name!r}; available: {', '.join(s.name for s in self.speakers)}")

    def synthesize(
        self,
        tokens: TokenInputs,
        speaker: Speaker,
        utterance_embedding: np.ndarray | None = None,
        duration_override: np.ndarray | None = None,
        prosody_codes: np.ndarray | None = None,
        f0_override: np.ndarray | None = None,
        postnet: bool = True,
        first_frames: int | None = None,
    ) -> AcousticOutput:
        """Decode one sentence. Overrides use the manifest's conventions: -1 / 0 mean "predict".
        postnet=False: the decoder's own mel, without the post-net (the post-net's training data, and
        what the decoder's fit to a recording is judged by). `first_frames` (with postnet=False, for a
        model that has the cut graphs): decode only that many frames now (0: only the durations and
        F0), the rest with decode_more()."""
        n = len(tokens)
        embedding = speaker.centroid if utterance_embedding is None else utterance_embedding
        feeds = {
            **tokens.feeds(),
            "speaker_id": np.asarray([speaker.id], np.int64),
            "utterance_embedding": np.asarray(embedding, np.float32).reshape(1, -1),
            "prosody_codes": np.zeros((1, n, self.prosody_code_dim), np.float32) if prosody_codes is None else np.asarray(prosody_codes, np.float32)[None],
            "prosody_code_mask": np.zeros((1, n), np.float32) if prosody_codes is None else np.ones((1, n), np.float32),
            "duration_override": -np.ones((1, n), np.float32) if duration_override is None else np.asarray(duration_override, np.float32)[None],
            "f0_override": np.zeros((1, n), np.float32) if f0_override is None else np.asarray(f0_override, np.float32)[None],
        }
        if self._mel_decoder is not None:
            features, durations, f0 = self._text_to_frames.run(None, feeds)
            empty = np.zeros((0, int(self.manifest["features"]["n_mels"])), np.float32)
            output = self.decode_more(AcousticOutput(empty, durations[0].astype(np.int64), f0[0], features), None if postnet else first_frames)
        else:
            mel, durations, f0 = self._text_to_mel.run(None, feeds)
            output = AcousticOutput(mel=mel[0], durations=durations[0].astype(np.int64), f0=f0[0])
        return AcousticOutput(self.sharpen(output.mel, speaker), output.durations, output.f0) if postnet else output

    def decode_more(self, output: AcousticOutput, end: int | None = None) -> AcousticOutput:
        """A sentence decoded in part, decoded up to frame `end` (default: all of it): the same frames as
        decoding it whole."""
        if output.features is None:
            return output
        total = output.features.shape[1]
        start, end = len(output.mel), total if end is None else min(end, total)
        if end <= start:  # nothing to decode
            return output if end < total else AcousticOutput(output.mel, output.durations, output.f0)
        lo, hi = max(0, start - self.decoder_context), min(total, end + self.decoder_context)
        feeds = {"frame_features": output.features[:, lo:hi], "frame_mask": np.ones((1, hi - lo), np.float32)}
        (mel,) = self._mel_decoder.run(None, feeds)
        decoded = np.concatenate([output.mel, mel[0, start - lo : end - lo]])
        return AcousticOutput(decoded, output.durations, output.f0, output.features if end < total else None)

    def sharpen(self, mel: np.ndarray, speaker: Speaker, start: int = 0, end: int | None = None) -> np.ndarray:
        """Frames [start, end) of a decoded sentence's mel (synthesize(postnet=False)) through the
        post-net, which sees `postnet_context` frames each side: pieces sharpened apart join into the
        whole sentence sharpened at once. Without a post-net, the frames as they are."""
        end = len(mel) if end is None else end
        if self._postnet is None or end <= start:
            return mel[start:end]
        lo, hi = max(0, start - self.postnet_context), min(len(mel), end + self.postnet_context)
        (sharpened,) = self._postnet.run(None, {"log_mel": np.ascontiguousarray(mel[None, lo:hi], np.float32)})
        piece, plain = sharpened[0, start - lo : end - lo], mel[start:end]
        gain = self.postnet_gains.get(speaker.name.lower(), 1.0)
        return piece if gain == 1.0 else plain + gain * (piece - plain)

    def encoder(self, name: str):
        """The session of a reference graph ('utterance_encoder', 'copycat_encoder', 'aligner'), loaded on first use."""
        if name not in self._encoders:
            self._encoders[name] = load_session(self.folder / self.manifest["files"][name]["file"], self.options)
        return self._encoders[name]
