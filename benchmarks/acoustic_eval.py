"""Acoustic model on the held-out test clips of both real speakers: spectra, pitch, durations, speed.

    python benchmarks/acoustic_eval.py [--models DIR] [--limit N] [--jobs 2]
        -> benchmarks/results/acoustic_eval.{json,md}

Only what ships, through the runtime (no torch). Each test clip's transcript is rendered in its own
voice from text, with the recording's aligned durations, and from the recording's own embedding and
codes; measured against the recording: mel L1, MCD (dB), log-F0 RMSE and r, duration errors, the
aligner's acceptance of right and wrong transcripts, and the decoder's speed. How each is computed:
docs/benchmark-methods.md#acoustic-model-on-the-test-clips.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
from scipy.fft import dct

from reader.frontend.analysis import Analyzer
from reader.model_inputs import BOS_ID, BREAK_IDS, token_inputs, transcript_to_inputs
from reader.paths import data_dir, models_dir
from reader_runtime.acoustic import AcousticModel, AcousticOutput, Speaker, TokenInputs
from reader_runtime.aligner import Alignment, RuntimeAligner
from reader_runtime.errors import RuntimeModelError
from reader_runtime.features import FeatureSettings, f0_on_frame_grid, log_mel_spectrogram
from reader_runtime.session import SessionOptions
from reader_runtime.vocoder import Vocoder

from common import CORPORA, praat_pitch, held_out_clips, write_results

RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = FeatureSettings()
MS_PER_FRAME = 1000.0 / SETTINGS.frame_rate
MCD_COEFFICIENTS = 13
MCD_DB = 10.0 / np.log(10.0) * np.sqrt(2.0)
CONDITIONS = ("text", "aligned_durations", "reference")
TOKEN_KINDS = ("phonemes", "word_boundaries", "edges")
SPEED_THREADS = 2
SPEED_RUNS = 3


@dataclass(frozen=True)
class Clip:
    corpus: str
    clip_id: str
    speaker: str
    audio_path: Path
    tokens: TokenInputs
    mismatched_tokens: TokenInputs  # the next test clip's transcript (same speaker)


@dataclass(frozen=True)
class Recording:
    log_mel: np.ndarray  # (T, n_mels)
    f0: np.ndarray  # (T,) Hz, 0 = unvoiced


def frame_f0(audio: np.ndarray, n_frames: int) -> np.ndarray:
    """(n_frames,) Praat F0 on the log-mel's frame grid, 0 where unvoiced."""
    return f0_on_frame_grid(*praat_pitch(audio, SETTINGS.sample_rate, 1.0 / SETTINGS.frame_rate), n_frames)


def mel_cepstra(log_mel: np.ndarray) -> np.ndarray:
    """(T, 13) c1..c13 in the convention log|X| = c0 + 2 sum c_d cos(d w): scipy's unnormalised DCT-II is 2 sum x cos."""
    return dct(log_mel.astype(np.float64), type=2, axis=1)[:, 1 : MCD_COEFFICIENTS + 1] / (2 * log_mel.shape[1])


def frame_pairs(reference: np.ndarray, synthesis: np.ndarray, one_to_one: bool) -> tuple[np.ndarray, np.ndarray]:
    """Indices of paired frames of two mel-cepstra sequences: identity, or the DTW path."""
    if one_to_one:
        assert len(reference) == len(synthesis)
        return np.arange(len(reference)), np.arange(len(synthesis))
    _, path = librosa.sequence.dtw(X=reference.T, Y=synthesis.T, metric="euclidean")
    return path[::-1, 0], path[::-1, 1]


def f0_agreement(reference_hz: np.ndarray, synthesis_hz: np.ndarray) -> dict:
    """RMSE (cents) and Pearson r of log F0 over paired frames voiced in both (None if too few)."""
    voiced = (reference_hz > 0) & (synthesis_hz > 0)
    if voiced.sum() < 10:
        return {"rmse_cents": None, "correlation": None}
    reference, synthesis = np.log2(reference_hz[voiced]), np.log2(synthesis_hz[voiced])
    return {"rmse_cents": float(1200 * np.sqrt(np.mean((synthesis - reference) ** 2))), "correlation": float(np.corrcoef(reference, synthesis)[0, 1])}


def compare(recording: Recording, output: AcousticOutput, vocoder: Vocoder, one_to_one: bool) -> dict:
    reference_cepstra, synthesis_cepstra = mel_cepstra(recording.log_mel), mel_cepstra(output.mel)
    ref, syn = frame_pairs(reference_cepstra, synthesis_cepstra, one_to_one)
    model_f0 = np.repeat(output.f0, output.durations)
    audio_f0 = frame_f0(vocoder.synthesize(output.mel), len(output.mel))
    model, audio = f0_agreement(recording.f0[ref], model_f0[syn]), f0_agreement(recording.f0[ref], audio_f0[syn])
    return {
        "frames": int(len(output.mel)),
        "mel_l1": float(np.abs(recording.log_mel[ref] - output.mel[syn]).mean()),
        "mcd_db": float(MCD_DB * np.linalg.norm(reference_cepstra[ref] - synthesis_cepstra[syn], axis=1).mean()),
        "f0_rmse_cents": model["rmse_cents"],
        "f0_correlation": model["correlation"],
        "audio_f0_rmse_cents": audio["rmse_cents"],
        "audio_f0_correlation": audio["correlation"],
    }


def token_kinds(symbol_ids: np.ndarray) -> np.ndarray:
    """Each token's TOKEN_KINDS label."""
    kinds = np.where(np.isin(symbol_ids, BREAK_IDS), "word_boundaries", "phonemes").astype(object)
    kinds[(symbol_ids == BOS_ID) | (np.arange(symbol_ids.size) == symbol_ids.size - 1)] = "edges"
    return kinds


def duration_errors(tokens: TokenInputs, predicted: np.ndarray, aligned: np.ndarray) -> dict:
    """Per token kind: sum of |predicted - aligned| in ms and the token count (pooled over clips later)."""
    errors = np.abs(predicted - aligned) * MS_PER_FRAME
    kinds = token_kinds(tokens.symbol_ids)
    return {kind: {"abs_error_ms_sum": float(errors[kinds == kind].sum()), "tokens": int((kinds == kind).sum())} for kind in TOKEN_KINDS}


class Models:
    """What each worker loads once: the acoustic model (one thread), its aligner, the vocoder."""

    def __init__(self, folder: Path):
        options = SessionOptions(intra_op_threads=1, inter_op_threads=1)
        self.acoustic = AcousticModel.load(folder / "acoustic", options)
        self.aligner = RuntimeAligner(self.acoustic)
        self.vocoder = Vocoder.load(folder / "vocoder", options)

    def reference_prosody(self, recording: Recording, tokens: TokenInputs, speaker: Speaker, alignment: Alignment) -> tuple[np.ndarray, np.ndarray]:
        """(utterance embedding (E,), CopyCat codes (N, C)) of the recording."""
        log_mel = recording.log_mel[None]
        (embedding,) = self.acoustic.encoder("utterance_encoder").run(None, {"log_mel": log_mel})
        feeds = {"log_mel": log_mel, **tokens.feeds(), "speaker_id": np.array([speaker.id], np.int64), "durations": alignment.durations[None]}
        (codes,) = self.acoustic.encoder("copycat_encoder").run(None, feeds)
        return embedding[0], codes[0]


_models: Models | None = None


def load_models(folder: Path) -> None:
    global _models
    _models = Models(folder)


def evaluate_clip(clip: Clip) -> dict:
    models = _models
    audio, sample_rate = sf.read(str(clip.audio_path), dtype="float32")
    if sample_rate != SETTINGS.sample_rate:
        raise ValueError(f"{clip.audio_path}: {sample_rate} Hz, expected {SETTINGS.sample_rate}")
    log_mel = log_mel_spectrogram(audio, SETTINGS)
    recording = Recording(log_mel, frame_f0(audio, len(log_mel)))
    alignment = models.aligner.align(clip.tokens, log_mel)
    mismatched = models.aligner.align(clip.mismatched_tokens, log_mel)
    row = {
        "corpus": clip.corpus,
        "clip_id": clip.clip_id,
        "seconds": round(audio.size / SETTINGS.sample_rate, 3),
        "tokens": len(clip.tokens),
        "alignment_cost": alignment.cost,
        "transcript_accepted": alignment.matches_transcript,
        "mismatched_cost": mismatched.cost,
        "mismatched_rejected": not mismatched.matches_transcript,
    }
    if alignment.cost == float("inf"):  # fewer frames than tokens: nothing to compare against
        return row
    speaker = models.acoustic.speaker(clip.speaker)
    embedding, codes = models.reference_prosody(recording, clip.tokens, speaker, alignment)
    outputs = {
        "text": models.acoustic.synthesize(clip.tokens, speaker),
        "aligned_durations": models.acoustic.synthesize(clip.tokens, speaker, duration_override=alignment.durations),
        "reference": models.acoustic.synthesize(clip.tokens, speaker, embedding, duration_override=alignment.durations, prosody_codes=codes),
    }
    row["conditions"] = {name: compare(recording, output, models.vocoder, one_to_one=name != "text") for name, output in outputs.items()}
    row["durations"] = duration_errors(clip.tokens, outputs["text"].durations, alignment.durations)
    row["length_ratio"] = float(outputs["text"].durations.sum() / alignment.durations.sum())
    return row


def decoder_speed(folder: Path, clips: list[Clip]) -> dict:
    acoustic = AcousticModel.load(folder / "acoustic", SessionOptions(intra_op_threads=SPEED_THREADS, inter_op_threads=1))
    per_second = []
    for clip in clips:
        speaker = acoustic.speaker(clip.speaker)
        output = acoustic.synthesize(clip.tokens, speaker)  # warm-up
        runs = []
        for _ in range(SPEED_RUNS):
            start = time.perf_counter()
            acoustic.synthesize(clip.tokens, speaker)
            runs.append(time.perf_counter() - start)
        per_second.append(1000 * float(np.median(runs)) / (len(output.mel) / SETTINGS.frame_rate))
    return {"intra_op_threads": SPEED_THREADS, "clips": len(per_second), "ms_per_second_of_speech_median": round(float(np.median(per_second)), 2), "ms_per_second_of_speech_max": round(float(np.max(per_second)), 2)}


def mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 4) if values else None


def summarise(rows: list[dict]) -> dict:
    compared = [r for r in rows if "conditions" in r]
    summary = {
        "clips": len(rows),
        "transcript_accepted": mean([float(r["transcript_accepted"]) for r in rows]),
        "mismatched_rejected": mean([float(r["mismatched_rejected"]) for r in rows]),
        "alignment_cost": mean([r["alignment_cost"] for r in compared]),
        "length_ratio": mean([r["length_ratio"] for r in compared]),
    }
    for condition in CONDITIONS:
        measures = compared[0]["conditions"][condition].keys() - {"frames"} if compared else ()
        summary[condition] = {measure: mean([r["conditions"][condition][measure] for r in compared]) for measure in sorted(measures)}
    summary["duration_mae_ms"] = {
        kind: round(sum(r["durations"][kind]["abs_error_ms_sum"] for r in compared) / max(sum(r["durations"][kind]["tokens"] for r in compared), 1), 2)
        for kind in TOKEN_KINDS
    }
    return summary


def markdown(result: dict) -> str:
    groups = list(result["summary"])
    lines = [
        "# Acoustic model on the held-out test clips",
        "",
        f"Models: {result['models']['folder']} (acoustic step {result['models']['acoustic_steps']}). Generated by benchmarks/acoustic_eval.py.",
        "",
        "| measure | " + " | ".join(groups) + " |",
        "|---|" + "---|" * len(groups),
    ]

    def row(label: str, get) -> None:
        lines.append(f"| {label} | " + " | ".join(str(get(result["summary"][g])) for g in groups) + " |")

    row("clips", lambda s: s["clips"])
    for condition in CONDITIONS:
        for measure, label in (("mel_l1", "mel L1"), ("mcd_db", "MCD (dB)"), ("f0_rmse_cents", "log-F0 RMSE (cents)"), ("f0_correlation", "log-F0 r"),
                               ("audio_f0_rmse_cents", "vocoded log-F0 RMSE (cents)"), ("audio_f0_correlation", "vocoded log-F0 r")):  # fmt: skip
            row(f"{condition.replace('_', ' ')}: {label}", lambda s, c=condition, m=measure: s[c][m])
    for kind in TOKEN_KINDS:
        row(f"duration MAE, {kind.replace('_', ' ')} (ms)", lambda s, k=kind: s["duration_mae_ms"][k])
    row("predicted / recorded length", lambda s: s["length_ratio"])
    row("aligner: own transcript accepted", lambda s: s["transcript_accepted"])
    row("aligner: other transcript rejected", lambda s: s["mismatched_rejected"])
    speed = result["decoder_speed"]
    lines += ["", f"Decoder (text_to_mel, {speed['intra_op_threads']} threads): {speed['ms_per_second_of_speech_median']} ms per second of speech (median over {speed['clips']} clips; max {speed['ms_per_second_of_speech_max']})."]
    return "\n".join(lines) + "\n"


def build_clips(limit: int | None) -> list[Clip]:
    """The test clips (first `limit` per corpus), their tokens, and a mismatched transcript for each."""
    analyzer = Analyzer()
    all_clips = held_out_clips(data_dir())
    speakers = {}
    for corpus in CORPORA:
        for line in (data_dir() / corpus / "metadata.csv").read_text(encoding="utf-8").splitlines():
            if line.strip():
                clip_id, speaker, _ = line.split("|", 2)
                speakers[clip_id] = speaker

    def tokens(text: str) -> TokenInputs:
        return token_inputs(transcript_to_inputs(text, analyzer))

    clips = []
    for corpus in CORPORA:
        own = [c for c in all_clips if c[0] == corpus]
        for index, (_, clip_id, text, path) in enumerate(own[:limit]):
            clips.append(Clip(corpus, clip_id, speakers[clip_id], path, tokens(text), tokens(own[(index + 1) % len(own)][2])))
    return clips


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", help="models folder with acoustic/ and vocoder/ (default: reader.paths.models_dir())")
    parser.add_argument("--limit", type=int, help="first N test clips per corpus only (a quick look; not for reporting)")
    parser.add_argument("--jobs", type=int, default=1, help="clips evaluated in parallel worker processes")
    parser.add_argument("--out", default=str(RESULTS / "acoustic_eval.json"))
    parser.add_argument("--record", action="store_true", help="also write the summary into the model's manifest (`evaluation`); full runs only")
    args = parser.parse_args(argv)
    if args.record and args.limit:
        raise SystemExit("acoustic_eval: --record is for full runs (no --limit)")
    folder = Path(args.models) if args.models else models_dir()
    try:
        load_models(folder)  # here too, so that a missing or stale model stops with one line, before any work
    except RuntimeModelError as error:
        raise SystemExit(f"acoustic_eval: {error}") from None
    clips = build_clips(args.limit)
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"), initializer=load_models, initargs=(folder,)) as pool:
            rows = list(pool.map(evaluate_clip, clips))
    else:
        rows = [evaluate_clip(clip) for clip in clips]
    summary = {corpus: summarise([r for r in rows if r["corpus"] == corpus]) for corpus in CORPORA}
    summary["all"] = summarise(rows)
    manifest = json.loads((folder / "acoustic" / "manifest.json").read_text(encoding="utf-8"))
    result = {
        "models": {
            "folder": str(folder),
            "acoustic_steps": manifest["training"]["steps"],
            "text_to_mel_sha256": manifest["files"]["text_to_mel"]["sha256"],
            "aligner_cost_threshold": manifest["aligner"]["cost_threshold"],
        },
        "limit_per_corpus": args.limit,
        "summary": summary,
        "decoder_speed": decoder_speed(folder, clips),
        "clips": rows,
    }
    write_results(Path(args.out), result, markdown(result))
    if args.record:
        record_in_manifest(folder / "acoustic" / "manifest.json", manifest, result)


def record_in_manifest(path: Path, manifest: dict, result: dict) -> None:
    """The shipped model carries its own figures (the manifest is not among the hashed files)."""
    manifest["evaluation"] = {
        "command": "python benchmarks/acoustic_eval.py --jobs 2 --record",
        "summary": result["summary"],
        "decoder_speed": result["decoder_speed"],
    }
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


if __name__ == "__main__":
    main()
