"""Copy synthesis on the held-out test clips: recordings' log-mels through the shipped vocoder.

    python benchmarks/vocoder_copy_synthesis.py    # writes benchmarks/results/vocoder_copy_synthesis.{json,md}

For the 50 + 50 test clips of both speakers, vocoded audio against the recording: Whisper WER,
log-spectral distance, F0 RMSE and voicing errors, DNSMOS P.835 (also of the vocoder's magnitudes
with the recording's phase), and the vocoder's real-time factor whole and streaming. When the shipped
vocoder is evaluated, the summary is also stored in its manifest.
Details: docs/benchmark-methods.md#vocoder-copy-synthesis.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reader.paths import data_dir, models_dir  # noqa: E402
from reader_runtime.features import LOG_FLOOR, FeatureSettings, log_mel_from_magnitudes, magnitude_spectrogram, stft  # noqa: E402
from reader_runtime.session import SessionOptions  # noqa: E402
from reader_runtime.vocoder import MANIFEST_NAME, Vocoder  # noqa: E402

from common import CORPORA, praat_pitch, held_out_clips, write_results  # noqa: E402
from speech_quality import Dnsmos, Transcriber, normalise_words, word_error_rate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
STREAM_CHUNK_FRAMES = (10, 43)  # ~0.12 s and ~0.5 s of audio per push
LSD_RANGE_DB = 80.0  # the spectral range compared, below the recording's loudest bin


@dataclass
class ClipScores:
    corpus: str
    clip_id: str
    seconds: float
    transcript_original: str
    transcript_vocoded: str
    log_spectral_distance_db: float
    f0_rmse_cents: float | None
    voicing_disagreement: float
    dnsmos_original: list[float]  # SIG, BAK, OVRL
    dnsmos_vocoded: list[float]
    dnsmos_recording_phase: list[float]


class RecordingPhaseVocoder(Vocoder):
    """The vocoder's magnitudes with a recording's phase, overlap-added as the runtime does (a whole
    utterance is one call of spectra()). Made once per run: its noise floor costs a graph call."""

    phase = np.zeros((0, 0))

    def synthesize_with_phase(self, log_mel: np.ndarray, spectrum: np.ndarray) -> np.ndarray:
        """(T, n_mels) log-mel and the recording's (T, bins) complex STFT -> audio."""
        self.phase = np.angle(spectrum)
        return self.synthesize(log_mel)

    def spectra(self, log_mel: np.ndarray) -> np.ndarray:
        return np.abs(super().spectra(log_mel)) * np.exp(1j * self.phase[: log_mel.shape[0]])


def log_spectral_distance(reference: np.ndarray, degraded: np.ndarray) -> float:
    reference_magnitude, degraded_magnitude = magnitude_spectrogram(reference), magnitude_spectrogram(degraded)
    floor = max(float(reference_magnitude.max()) * 10 ** (-LSD_RANGE_DB / 20), LOG_FLOOR)
    ref_db = 20 * np.log10(np.maximum(reference_magnitude, floor))
    deg_db = 20 * np.log10(np.maximum(degraded_magnitude, floor))
    return float(np.mean(np.sqrt(np.mean((ref_db - deg_db) ** 2, axis=1))))


def f0_track(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    return praat_pitch(audio, sample_rate, time_step=0.01)[1]


def f0_errors(reference: np.ndarray, degraded: np.ndarray, sample_rate: int) -> tuple[float | None, float]:
    """(RMSE in cents on frames voiced in both or None, share of frames with differing voicing)."""
    ref, deg = f0_track(reference, sample_rate), f0_track(degraded, sample_rate)
    n = min(ref.size, deg.size)
    ref, deg = ref[:n], deg[:n]
    both = (ref > 0) & (deg > 0)
    rmse = float(np.sqrt(np.mean((1200 * np.log2(deg[both] / ref[both])) ** 2))) if both.any() else None
    return rmse, float(np.mean((ref > 0) != (deg > 0)))


def summarise(scores: list[ClipScores], transcripts: dict[str, str]) -> dict:
    def mean(values):
        values = [v for v in values if v is not None]
        return round(float(np.mean(values)), 4) if values else None

    references = [normalise_words(transcripts[s.clip_id]) for s in scores]
    return {
        "clips": len(scores),
        "wer_original": round(word_error_rate(references, [normalise_words(s.transcript_original) for s in scores]), 4),
        "wer_vocoded": round(word_error_rate(references, [normalise_words(s.transcript_vocoded) for s in scores]), 4),
        "log_spectral_distance_db": mean(s.log_spectral_distance_db for s in scores),
        "f0_rmse_cents": mean(s.f0_rmse_cents for s in scores),
        "voicing_disagreement": mean(s.voicing_disagreement for s in scores),
        **{f"dnsmos_{name}_original": mean(s.dnsmos_original[i] for s in scores) for i, name in enumerate(("sig", "bak", "ovrl"))},
        **{f"dnsmos_{name}_vocoded": mean(s.dnsmos_vocoded[i] for s in scores) for i, name in enumerate(("sig", "bak", "ovrl"))},
        **{f"dnsmos_{name}_recording_phase": mean(s.dnsmos_recording_phase[i] for s in scores) for i, name in enumerate(("sig", "bak", "ovrl"))},
    }


def real_time_factors(vocoder: Vocoder, mels: list[np.ndarray], seconds: float) -> dict:
    """Seconds of compute per second of audio. "cpu" counts this process's CPU time (one thread, so one
    core's work, unaffected by other jobs on a shared machine); "wall" is elapsed time, which is not."""

    def measure(run) -> dict:
        wall, cpu = time.perf_counter(), time.process_time()
        for mel in mels:
            run(mel)
        return {"cpu": round((time.process_time() - cpu) / seconds, 4), "wall": round((time.perf_counter() - wall) / seconds, 4)}

    def streamed(chunk: int):
        def run(mel: np.ndarray) -> None:
            stream = vocoder.stream()
            for first in range(0, mel.shape[0], chunk):
                stream.push(mel[first : first + chunk])
            stream.finish()

        return run

    factors = {"threads": 1, "whole_utterance": measure(vocoder.synthesize)}
    for chunk in STREAM_CHUNK_FRAMES:
        factors[f"streamed_{chunk}_frame_chunks"] = measure(streamed(chunk))
    return factors


def markdown(result: dict) -> str:
    rows = [
        ("clips", "clips", None),
        ("WER, Whisper tiny.en", "wer_original", "wer_vocoded"),
        ("log-spectral distance (dB)", None, "log_spectral_distance_db"),
        ("F0 RMSE, voiced in both (cents)", None, "f0_rmse_cents"),
        ("voicing disagreement", None, "voicing_disagreement"),
        ("DNSMOS SIG (raw)", "dnsmos_sig_original", "dnsmos_sig_vocoded"),
        ("DNSMOS BAK (raw)", "dnsmos_bak_original", "dnsmos_bak_vocoded"),
        ("DNSMOS OVRL (raw)", "dnsmos_ovrl_original", "dnsmos_ovrl_vocoded"),
        ("DNSMOS SIG, vocoded magnitudes with the recording's phase", None, "dnsmos_sig_recording_phase"),
        ("DNSMOS BAK, vocoded magnitudes with the recording's phase", None, "dnsmos_bak_recording_phase"),
        ("DNSMOS OVRL, vocoded magnitudes with the recording's phase", None, "dnsmos_ovrl_recording_phase"),
    ]
    groups = list(result["summary"])
    lines = [
        "# Vocoder copy synthesis (held-out test clips)",
        "",
        f"Vocoder: {result['vocoder']['folder']} (step {result['vocoder']['steps']}). Generated by benchmarks/vocoder_copy_synthesis.py.",
        "",
        "| measure | " + " | ".join(f"{g} original | {g} vocoded" for g in groups) + " |",
        "|---|" + "---|---|" * len(groups),
    ]
    for label, original_key, vocoded_key in rows:
        cells = []
        for g in groups:
            summary = result["summary"][g]
            if vocoded_key is None:
                cells += [str(summary[original_key]), ""]
            else:
                cells += [str(summary[original_key]) if original_key else "", str(summary[vocoded_key])]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    rtf = result["real_time_factor"]
    lines += ["", "Vocoder real-time factor, one thread (CPU time / audio time; wall-clock on the shared machine in brackets):", ""]
    lines += [f"- {mode.replace('_', ' ')}: {value['cpu']} ({value['wall']})" for mode, value in rtf.items() if mode != "threads"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocoder-dir", help="default: the shipped <models_dir>/vocoder (its manifest gets the summary)")
    parser.add_argument("--limit", type=int, help="first N test clips per corpus only (a quick look; not for reporting)")
    parser.add_argument("--out", default=str(RESULTS / "vocoder_copy_synthesis.json"))
    args = parser.parse_args(argv)
    shipped = args.vocoder_dir is None
    folder = models_dir() / "vocoder" if shipped else Path(args.vocoder_dir)
    vocoder = Vocoder.load(folder, SessionOptions(intra_op_threads=1, inter_op_threads=1))
    with_recording_phase = RecordingPhaseVocoder(vocoder.session, vocoder.spec)
    manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    transcriber = Transcriber(threads=1)
    dnsmos = Dnsmos()
    settings = FeatureSettings()

    def transcribe(audio: np.ndarray) -> str:
        return transcriber(audio, settings.sample_rate)

    clips = held_out_clips(data_dir())
    if args.limit:
        clips = [c for corpus in CORPORA for c in [c for c in clips if c[0] == corpus][: args.limit]]
    scores, mels, transcripts, total_seconds = [], [], {}, 0.0
    for corpus, clip_id, text, path in clips:
        audio, sample_rate = sf.read(path, dtype="float32")
        assert sample_rate == settings.sample_rate, f"{path}: {sample_rate} Hz"
        spectrum = stft(audio, settings)  # the recording's phase too, so one STFT serves both
        mel = log_mel_from_magnitudes(np.abs(spectrum).astype(np.float32), settings)
        vocoded = vocoder.synthesize(mel)[: audio.size]
        recording_phase = with_recording_phase.synthesize_with_phase(mel, spectrum)[: audio.size]
        rmse, voicing = f0_errors(audio, vocoded, sample_rate)
        scores.append(ClipScores(
            corpus, clip_id, audio.size / sample_rate, transcribe(audio), transcribe(vocoded), log_spectral_distance(audio, vocoded), rmse, voicing,
            dnsmos.scores(audio, sample_rate), dnsmos.scores(vocoded, sample_rate), dnsmos.scores(recording_phase, sample_rate),
        ))  # fmt: skip
        mels.append(mel)
        transcripts[clip_id] = text
        total_seconds += audio.size / sample_rate
        print(f"{clip_id}: LSD {scores[-1].log_spectral_distance_db:.2f} dB, F0 {rmse} cents | {scores[-1].transcript_vocoded}", flush=True)

    summary = {corpus: summarise([s for s in scores if s.corpus == corpus], transcripts) for corpus in CORPORA}
    summary["all"] = summarise(scores, transcripts)
    result = {
        "vocoder": {"folder": str(folder), "steps": manifest["training"]["steps"], "graph_sha256": manifest["graph_sha256"]},
        "summary": summary,
        "real_time_factor": real_time_factors(vocoder, mels, total_seconds),
        "audio_seconds": round(total_seconds, 1),
        "clips": [asdict(s) for s in scores],
    }
    write_results(Path(args.out), result, markdown(result))
    if shipped and not args.limit:
        manifest["evaluation"] = {"benchmark": "benchmarks/vocoder_copy_synthesis.py", "test_clips": len(scores), "summary": summary, "real_time_factor": result["real_time_factor"]}
        (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
