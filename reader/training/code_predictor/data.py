"""Training examples of the code predictor: each clip's linguistic inputs and its recorded prosody codes.

    python -m reader.training.code_predictor.data [--models DIR]   (builds the cache; train.py calls it too)

The target of a clip is what the shipped acoustic model's CopyCat encoder reads from its recording (the
posterior means, with the runtime aligner's durations), computed as the speaker transferring onto
itself: the codes the decoder follows closely (log-F0 r 0.83 on LJ). Inputs are built by
reader.prosody_prediction from the front end's analysis of the transcript, exactly as the engine
builds them for a sentence it reads. Cached per acoustic model under
cache_dir()/code_predictor/examples/<text_to_mel sha256 prefix>/<corpus>/<id>.npz. A clip's reading
context (clip_contexts: the text of the clip before it) is encoded when the examples are loaded, not
cached: it depends on which clips are given, and takes seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from reader.errors import ReaderError
from reader.paths import cache_dir, models_dir
from reader.prosody_prediction import (
    CONTEXT_DIM,
    FEATURE_SETS,
    LONE_SENTENCE,
    PredictorInputs,
    ReadingContext,
    context_features,
    predictor_inputs,
    sentence_word_vectors,
)
from reader.training.acoustic.data import DataConfig as CorpusConfig
from reader.training.acoustic.data import Utterance, read_manifest

from ..manifests import load_manifest

CORPORA = ["ljspeech_longform", "kathleen_arctic"]
# ../shared/data/README.md: consecutive LJ ids are consecutive stretches of one reading; ARCTIC's
# clips are isolated prompts.
READ_IN_ORDER = ("ljspeech_longform",)
# The per-token inputs (cached per clip); the unit's context is PredictorInputs.context.
INPUT_FIELDS = ("symbol_ids", "stress_ids", "word_position_ids", "break_ids", "position", "syntax", "bert")


@dataclass(frozen=True)
class ClipExample:
    utterance: Utterance
    speaker_id: int
    inputs: dict[str, PredictorInputs]  # per feature set
    codes: np.ndarray  # (N, code_dim) float32: the recording's CopyCat codes
    durations: np.ndarray  # (N,) int64 frames: the runtime aligner's, of the recording


def acoustic_key(models: Path) -> str:
    manifest = load_manifest(models / "acoustic")
    return manifest["files"]["text_to_mel"]["sha256"]


def examples_folder(models: Path) -> Path:
    return cache_dir() / "code_predictor" / "examples" / acoustic_key(models)[:16]


class ExampleBuilder:
    """Analyses, aligns and encodes clips with the shipped front end and acoustic model (ONNX)."""

    def __init__(self, models: Path, threads: int = 1) -> None:
        from reader_runtime.acoustic import AcousticModel
        from reader_runtime.session import SessionOptions

        from reader.frontend.analysis import Analyzer
        from reader.prosody_selection import SentenceEncoder
        from reader.transfer import ProsodyTransfer

        self.acoustic = AcousticModel.load(models / "acoustic", SessionOptions(intra_op_threads=threads, inter_op_threads=1))
        self.analyzer = Analyzer()
        self.transfer = ProsodyTransfer(self.acoustic, self.analyzer)
        self.encoder = SentenceEncoder.load(models / "bert", threads=threads)

    def build(self, utterance: Utterance) -> dict[str, np.ndarray]:
        """The arrays of one clip's npz (see load_example)."""
        from reader_runtime.features import FeatureSettings, log_mel_spectrogram

        from reader.model_inputs import sentences_to_inputs, token_inputs
        from reader.transfer_source import load_source

        sentences = self.analyzer.analyze_text(utterance.text).sentences
        inputs = sentences_to_inputs(sentences)
        if not np.any(~inputs.boundary_mask[1:]):
            raise ReaderError("nothing speakable in the transcript")
        recording = load_source(utterance.audio_path, self.acoustic.sample_rate)
        log_mel = log_mel_spectrogram(recording.samples, FeatureSettings(sample_rate=self.acoustic.sample_rate, hop_length=self.acoustic.hop_length))
        # the training voices: the aligner trained with the decoder gives the durations it learned from
        alignment = (self.transfer.joint_aligner or self.transfer.aligner).align(token_inputs(inputs), log_mel)
        if not np.isfinite(alignment.cost):
            raise ReaderError("too short for its transcript")
        speaker = self.acoustic.speaker(utterance.speaker)
        arrays = {
            "speaker_id": np.int64(speaker.id),
            "codes": self.transfer.codes(log_mel, inputs, speaker, alignment.durations).astype(np.float32),
            "durations": alignment.durations.astype(np.int64),
        }
        vectors = sentence_word_vectors(self.encoder, sentences)
        for feature_set in ("phonemes", "syntax+bert"):  # the other two sets are these with inputs zeroed
            features = predictor_inputs(sentences, feature_set, vectors)
            arrays |= {f"{feature_set}/{name}": getattr(features, name) for name in INPUT_FIELDS}
        return arrays


def previous_id(utterance_id: str) -> str | None:
    """The id of the clip before in the same book section ("LJ001-0042" -> "LJ001-0041"; None for its first)."""
    section, _, number = utterance_id.rpartition("-")
    return f"{section}-{int(number) - 1:0{len(number)}d}" if section and number.isdigit() and int(number) > 1 else None


def ends_sentence(text: str) -> bool:
    return text.rstrip(" \"')]").endswith((".", "!", "?"))


def clip_contexts(clips: Sequence[Utterance]) -> dict[str, ReadingContext]:
    """Each clip's reading context, looked for among `clips` only (training passes its train and valid
    clips, so no test text reaches it; the benchmark adds the test clips, whose previous clip is text
    it may read). In a corpus read in order the unit before a clip is the clip with the id one lower in
    its book section, if there is one, and it stopped mid-sentence when its text does not end in . ! or ?
    (LJ clips are cut at silences: half end at a comma, semicolon or mid-clause). LJ has no paragraph
    marks, so a clip's only "paragraph start" is its section's (or a gap's) first clip; other corpora's
    clips are lone sentences."""
    texts = {(u.corpus, u.utterance_id): u.text for u in clips}
    contexts = {}
    for clip in clips:
        previous = texts.get((clip.corpus, previous_id(clip.utterance_id))) if clip.corpus in READ_IN_ORDER else None
        contexts[clip.utterance_id] = LONE_SENTENCE if previous is None else ReadingContext(previous, continues=not ends_sentence(previous))
    return contexts


def example_path(folder: Path, utterance: Utterance) -> Path:
    return folder / utterance.corpus / f"{utterance.utterance_id}.npz"


def load_example(path: Path, utterance: Utterance, context: np.ndarray) -> ClipExample:
    with np.load(path) as data:
        return example_from_arrays(dict(data), utterance, context)


def example_from_arrays(arrays: dict[str, np.ndarray], utterance: Utterance, context: np.ndarray) -> ClipExample:
    """The example of ExampleBuilder.build's arrays (as cached in a clip's npz) and the clip's row of
    context_features."""
    full = {name: arrays[f"syntax+bert/{name}"] for name in INPUT_FIELDS}
    plain = {name: arrays[f"phonemes/{name}"] for name in INPUT_FIELDS}
    codes, durations, speaker_id = arrays["codes"], arrays["durations"], int(arrays["speaker_id"])
    zeros = {name: np.zeros_like(full[name]) for name in ("syntax", "bert")}
    no_context = np.zeros(CONTEXT_DIM, np.float32)
    inputs = {
        "phonemes": PredictorInputs(**plain, context=no_context),
        "syntax": PredictorInputs(**(full | {"bert": zeros["bert"]}), context=no_context),
        "bert": PredictorInputs(**(plain | {"bert": full["bert"]}), context=no_context),
        "syntax+bert": PredictorInputs(**full, context=no_context),
    }
    inputs |= {f"{base}+context": replace(inputs[base], context=context) for base in ("syntax", "bert")}
    assert set(inputs) == set(FEATURE_SETS)
    return ClipExample(utterance, speaker_id, inputs, codes, durations)


def build_examples(models: Path, utterances: list[Utterance], context_clips: Sequence[Utterance], builder: ExampleBuilder | None = None) -> list[ClipExample]:
    """The clips' examples, built once and cached; clips the aligner cannot place are skipped. Each
    clip's reading context is looked for among `context_clips` (clip_contexts)."""
    from reader.prosody_selection import SentenceEncoder

    encoder = builder.encoder if builder is not None else SentenceEncoder.load(models / "bert")
    contexts = clip_contexts(context_clips)
    context = dict(zip((u.utterance_id for u in utterances), context_features([contexts[u.utterance_id] for u in utterances], encoder)))
    folder = examples_folder(models)
    examples, started, built = [], time.monotonic(), 0
    for utterance in utterances:
        path = example_path(folder, utterance)
        if not path.is_file():
            builder = builder or ExampleBuilder(models)
            try:
                arrays = builder.build(utterance)
            except ReaderError as exc:
                print(f"skipping {utterance.utterance_id}: {exc}", file=sys.stderr)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.stem + ".partial.npz")
            np.savez(partial, **arrays)
            partial.replace(path)
            built += 1
            if built % 100 == 0:
                print(f"{built} clips analysed in {time.monotonic() - started:.0f} s", flush=True)
        examples.append(load_example(path, utterance, context[utterance.utterance_id]))
    return examples


def training_utterances(split: str, corpora: list[str] = CORPORA) -> list[Utterance]:
    return read_manifest(CorpusConfig(corpora=corpora), split)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=None, help="models folder (default: the shipped one)")
    args = parser.parse_args(argv)
    models = args.models or models_dir()
    clips = {split: training_utterances(split) for split in ("train", "valid")}
    for split, utterances in clips.items():
        print(split, len(build_examples(models, utterances, clips["train"] + clips["valid"])), "examples in", examples_folder(models))


if __name__ == "__main__":
    main()
