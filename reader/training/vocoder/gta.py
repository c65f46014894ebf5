"""Ground-truth-aligned (teacher-forced) mels of the shipped acoustic model, for fine-tuning the vocoder.

    python -m reader.training.vocoder.gta [--models DIR] [--corpora ...]

Each training clip is rendered as the model transfers a speaker onto itself (the recording's
durations, embedding, codes and F0), so its mel lines up with the recording frame for frame. Cached
under cache_dir()/vocoder/gta/<model key>/<corpus>/<id>.npy, so a new model gets new mels; taken after
the post-net, or before it with `--without-postnet` (the post-net's training data).
Details: docs/training.md#teacher-forced-mels.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from reader.errors import ReaderError
from reader.paths import cache_dir, models_dir
from reader.training.acoustic.data import DataConfig as CorpusConfig
from reader.training.acoustic.data import Utterance, read_manifest

from ..manifests import load_manifest


def gta_folder(models: Path, postnet: bool = True) -> Path:
    """Where the mels of an acoustic model are cached: keyed by its decoder and, where it has one and
    it is used, its post-net and the post-net's residual gain (the post-net's own training data are the
    mels without it)."""
    manifest = load_manifest(models / "acoustic")
    files = manifest["files"]
    key = files["text_to_mel"]["sha256"][:16]
    if postnet and "postnet" in files:
        key += f"-postnet-{files['postnet']['sha256'][:8]}"
        gains = manifest["postnet"].get("residual_gain", {})
        key += "".join(f"-{name}-{gain:g}" for name, gain in sorted(gains.items()) if gain != 1.0)
    return cache_dir() / "vocoder" / "gta" / key


def gta_path(folder: Path, utterance: Utterance) -> Path:
    return folder / utterance.corpus / f"{utterance.utterance_id}.npy"


class TeacherForcedMels:
    """The acoustic model's mel of a recording, rendered with the recording's own prosody and timing."""

    def __init__(self, models: Path, postnet: bool = True) -> None:
        from reader_runtime.acoustic import AcousticModel
        from reader_runtime.session import SessionOptions

        from reader.frontend.analysis import Analyzer
        from reader.transfer import ProsodyTransfer

        acoustic = AcousticModel.load(models / "acoustic", SessionOptions(intra_op_threads=2, inter_op_threads=1))
        self.acoustic = acoustic
        self.postnet = postnet
        self.transfer = ProsodyTransfer(acoustic, Analyzer())

    def render(self, utterance: Utterance) -> np.ndarray:
        """(frames, n_mels), frames = reader_runtime.features' frame count of the recording."""
        from reader_runtime.features import FeatureSettings, log_mel_spectrogram

        from reader.model_inputs import token_inputs
        from reader.training.acoustic.data import extract_features
        from reader.transfer import transcript_tokens
        from reader.transfer_source import load_source, token_mean_log_f0

        settings = FeatureSettings(sample_rate=self.acoustic.sample_rate, hop_length=self.acoustic.hop_length)
        recording = load_source(utterance.audio_path, self.acoustic.sample_rate)
        inputs = transcript_tokens(utterance.text, self.transfer.analyzer)
        log_mel = log_mel_spectrogram(recording.samples, settings)
        # the training voices: the aligner trained with the decoder gives the durations it learned from
        alignment = (self.transfer.joint_aligner or self.transfer.aligner).align(token_inputs(inputs), log_mel)
        if not np.isfinite(alignment.cost):
            raise ReaderError(f"{utterance.audio_path}: too short for its transcript")
        speaker = self.acoustic.speaker(utterance.speaker)
        (embedding,) = self.acoustic.encoder("utterance_encoder").run(None, {"log_mel": log_mel[None].astype(np.float32)})
        codes = self.transfer.codes(log_mel, inputs, speaker, alignment.durations)
        log_f0 = token_mean_log_f0(extract_features(recording.samples, recording.sample_rate, settings).f0_hz, alignment.durations)
        f0 = None if np.isnan(log_f0).any() else np.exp(log_f0)
        output = self.acoustic.synthesize(
            token_inputs(inputs), speaker, embedding[0], duration_override=alignment.durations.astype(np.float32), prosody_codes=codes, f0_override=f0,
            postnet=self.postnet,
        )  # fmt: skip
        assert output.mel.shape[0] == log_mel.shape[0], (output.mel.shape, log_mel.shape)
        return output.mel.astype(np.float32)


def render_corpora(models: Path, corpora: list[str], splits: tuple[str, ...] = ("train", "valid"), postnet: bool = True) -> dict[str, int]:
    folder = gta_folder(models, postnet)
    renderer = None
    counts = {"rendered": 0, "cached": 0, "skipped": 0}
    started = time.monotonic()
    for split in splits:
        for utterance in read_manifest(CorpusConfig(corpora=corpora), split):
            path = gta_path(folder, utterance)
            if path.is_file():
                counts["cached"] += 1
                continue
            renderer = renderer or TeacherForcedMels(models, postnet)
            try:
                mel = renderer.render(utterance)
            except ReaderError as exc:
                print(f"skipping {utterance.utterance_id}: {exc}", file=sys.stderr)
                counts["skipped"] += 1
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial.npy")
            np.save(partial, mel)
            partial.replace(path)
            counts["rendered"] += 1
            if counts["rendered"] % 100 == 0:
                print(f"{counts['rendered']} clips rendered in {time.monotonic() - started:.0f} s", flush=True)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=None, help="models folder (default: the shipped one)")
    parser.add_argument("--corpora", nargs="+", default=["ljspeech_longform", "kathleen_arctic"])
    parser.add_argument("--without-postnet", action="store_true", help="the decoder's mels before the post-net (the post-net's training data)")
    args = parser.parse_args(argv)
    models = args.models or models_dir()
    postnet = not args.without_postnet
    print(f"teacher-forced mels of {models / 'acoustic'} -> {gta_folder(models, postnet)}")
    print(render_corpora(models, args.corpora, postnet=postnet))


if __name__ == "__main__":
    main()
