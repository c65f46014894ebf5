"""Prosody by prediction (issue 15): the code predictor's feature sets against the recordings.

    python benchmarks/prosody_prediction.py [--runs DIR] [--limit N] [--listen]
        -> benchmarks/results/prosody_prediction.{json,md}

Systems, all decoded by the shipped acoustic model with the voice's centroid embedding so that only the
prosody codes differ: the acoustic model's own predictor, the code predictor's feature sets, and the
recording's own codes (an upper bound). Measured on the held-out test clips: vowel log-F0 r and RMSE,
F0-std gap, duration correlation, pause F1, and with --listen WER and NISQA-TTS.
Details: docs/benchmark-methods.md#prosody-by-prediction.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from reader.model_inputs import BREAK_IDS
from reader.paths import data_dir, models_dir
from reader.prosody_prediction import FEATURE_SETS, CodePredictor, context_features, predictor_inputs, sentence_word_vectors
from reader.training.acoustic.data import Utterance
from reader.training.code_predictor.data import ClipExample, ExampleBuilder, acoustic_key, clip_contexts, example_from_arrays, training_utterances
from common import CORPORA, semitones, write_results  # benchmarks/ is on sys.path when run as a script

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "prosody_prediction"
SETS = HERE / "prosody_sets"
PAUSE_SECONDS = 0.1
OWN = "acoustic model's predictor"
RECORDED = "recording's codes"


def test_utterances(limit: int) -> list[Utterance]:
    """The test split of each voice, in split (reading) order; read only by benchmarks."""
    root = data_dir()
    splits = json.loads((root / "splits.json").read_text(encoding="utf-8"))
    utterances = []
    for corpus in CORPORA:
        rows = dict(line.split("|", 1) for line in (root / corpus / "metadata.csv").read_text(encoding="utf-8").splitlines() if line.strip())
        for clip_id in splits[corpus]["test"][: limit or None]:
            speaker, text = rows[clip_id].split("|", 1)
            utterances.append(Utterance(corpus, clip_id, speaker, text, root / corpus / "wavs" / f"{clip_id}.flac"))
    return utterances


def test_examples(builder: ExampleBuilder, utterances: list[Utterance]) -> list[tuple[ClipExample, np.ndarray]]:
    """Each clip's example (inputs, recorded codes, durations) and its recording's log-F0 per token (Praat)."""
    from reader.transfer_source import load_source, source_token_log_f0

    contexts = clip_contexts([*training_utterances("train"), *training_utterances("valid"), *utterances])
    context = context_features([contexts[u.utterance_id] for u in utterances], builder.encoder)
    examples = []
    for utterance, unit_context in zip(utterances, context):
        example = example_from_arrays(builder.build(utterance), utterance, unit_context)
        recording = load_source(utterance.audio_path, builder.acoustic.sample_rate)
        examples.append((example, source_token_log_f0(recording, example.durations, builder.acoustic.hop_length)))
    return examples


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 and np.std(a) > 0 and np.std(b) > 0 else np.nan


def clip_scores(example: ClipExample, recorded_log_f0: np.ndarray, output, frames_per_second: float) -> dict:
    tokens = example.inputs["syntax"]  # the acoustic model's own tokens
    vowels = tokens.stress_ids > 0
    boundary = np.isin(tokens.symbol_ids, BREAK_IDS)
    gaps = np.flatnonzero(boundary)[:-1]  # word gaps; the sentence's final boundary is not a gap
    phones = ~boundary & (np.arange(len(tokens)) > 0)
    ours, theirs = semitones(output.f0[vowels]), semitones(np.exp(recorded_log_f0[vowels]))
    valid = np.isfinite(theirs)
    paused_ours = output.durations[gaps] / frames_per_second >= PAUSE_SECONDS
    paused_theirs = example.durations[gaps] / frames_per_second >= PAUSE_SECONDS
    return {
        "log_f0_correlation": pearson(ours[valid], theirs[valid]),
        "log_f0_rmse_st": float(np.sqrt(np.mean((ours[valid] - theirs[valid]) ** 2))) if valid.sum() > 2 else np.nan,
        "f0_std_st": float(np.std(ours)),
        "recorded_f0_std_st": float(np.std(theirs[valid])) if valid.sum() > 2 else np.nan,
        "duration_correlation": pearson(np.log(output.durations[phones] + 1.0), np.log(example.durations[phones] + 1.0)),
        "phone_time_ratio": float(output.durations[phones].sum() / max(example.durations[phones].sum(), 1)),
        "pause_tp": int((paused_ours & paused_theirs).sum()),
        "pause_predicted": int(paused_ours.sum()),
        "pause_actual": int(paused_theirs.sum()),
    }


def summarise(rows: list[dict], baseline: list[dict] | None = None) -> dict:
    """Means over clips; with `baseline` (the same clips, the phonemes-only variant) also the paired
    difference in log-F0 r and its standard error, to tell a feature's gain from the clips' noise."""
    mean = lambda key: round(float(np.nanmean([r[key] for r in rows])), 4)  # noqa: E731
    tp, predicted, actual = (sum(r[k] for r in rows) for k in ("pause_tp", "pause_predicted", "pause_actual"))
    gaps = [abs(r["f0_std_st"] - r["recorded_f0_std_st"]) for r in rows]
    return {
        "clips": len(rows),
        **{key: mean(key) for key in ("log_f0_correlation", "log_f0_rmse_st", "f0_std_st", "recorded_f0_std_st", "duration_correlation", "phone_time_ratio")},
        "f0_std_gap_st": round(float(np.nanmean(gaps)), 4),
        "pause_f1": round(2 * tp / max(predicted + actual, 1), 4),
    } | (paired_gain(rows, baseline) if baseline is not None else {})


def paired_gain(rows: list[dict], baseline: list[dict]) -> dict:
    gains = np.array([r["log_f0_correlation"] - b["log_f0_correlation"] for r, b in zip(rows, baseline, strict=True)])
    gains = gains[np.isfinite(gains)]
    return {"r_gain_over_phonemes": round(float(gains.mean()), 4), "r_gain_standard_error": round(float(gains.std(ddof=1) / np.sqrt(len(gains))), 4)}


class Systems:
    """Per system: the prosody codes of a clip's inputs (None: the acoustic model predicts its own)."""

    def __init__(self, runs: Path, models: Path) -> None:
        self.predictors = {}
        for feature_set in FEATURE_SETS:
            folder = runs / feature_set
            if (folder / "manifest.json").is_file():
                self.predictors[feature_set] = CodePredictor.load(folder, acoustic_key(models))
            else:
                print(f"no {feature_set} variant under {runs}: train it with python -m reader.training.code_predictor.train", file=sys.stderr)
        self.names = [OWN, *self.predictors, RECORDED]

    def codes(self, name: str, example: ClipExample) -> np.ndarray | None:
        if name == OWN:
            return None
        if name == RECORDED:
            return example.codes
        return self.predictors[name].predict(example.inputs[name], example.speaker_id)


def set_dynamics(builder: ExampleBuilder, systems: Systems) -> dict:
    """F0 std and final movement of the model's vowels over each prosody set, per system (no recordings)."""
    from reader.model_inputs import token_inputs

    result = {}
    for path in sorted(SETS.glob("*.txt")):
        sentences = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
        per_system = {name: {"std": [], "final_movement": []} for name in systems.names if name != RECORDED}
        for text in sentences:
            analysed = builder.analyzer.analyze_text(text).sentences
            vectors = sentence_word_vectors(builder.encoder, analysed)
            inputs = {feature_set: predictor_inputs(analysed, feature_set, vectors) for feature_set in FEATURE_SETS}
            tokens = inputs["syntax"]
            speaker = builder.acoustic.speakers[0]
            vowels = tokens.stress_ids > 0
            for name in per_system:
                codes = None if name == OWN else systems.predictors[name].predict(inputs[name], speaker.id)
                output = builder.acoustic.synthesize(token_inputs(tokens), speaker, prosody_codes=codes)
                track = semitones(output.f0[vowels])
                per_system[name]["std"].append(float(np.std(track)))
                per_system[name]["final_movement"].append(float(np.median(track[int(0.8 * len(track)) :]) - np.median(track)))
        result[path.stem] = {name: {key: round(float(np.mean(values)), 3) for key, values in scores.items()} for name, scores in per_system.items()}
    return result


def listen(builder: ExampleBuilder, systems: Systems, examples: list, names: list[str], models: Path, work: Path) -> dict:
    """WER and NISQA-TTS of each named system's audio (the shipped vocoder), per voice."""
    from reader.model_inputs import token_inputs
    from reader_runtime.session import SessionOptions
    from reader_runtime.vocoder import Vocoder
    from speech_quality import Transcriber, nisqa_scores, word_error_rate, write_wav

    vocoder = Vocoder.load(models / "vocoder", SessionOptions(intra_op_threads=1, inter_op_threads=1))
    transcribe = Transcriber()
    result = {}
    for name in names:
        folder = work / name.replace("'", "").replace(" ", "_")
        texts: dict[str, list[tuple[str, str]]] = {}
        for example, _ in examples:
            speaker = builder.acoustic.speakers[example.speaker_id]
            output = builder.acoustic.synthesize(token_inputs(example.inputs["syntax"]), speaker, prosody_codes=systems.codes(name, example))
            audio = vocoder.synthesize(output.mel)
            write_wav(folder / f"{example.utterance.utterance_id}.wav", audio, vocoder.spec.features.sample_rate)
            texts.setdefault(example.utterance.corpus, []).append((example.utterance.text, transcribe(audio, vocoder.spec.features.sample_rate)))
        mos = nisqa_scores(folder)
        result[name] = {
            corpus: {
                "wer": round(word_error_rate([r for r, _ in pairs], [h for _, h in pairs]), 4),
                "nisqa_tts": round(float(np.mean([mos[f"{e.utterance.utterance_id}.wav"] for e, _ in examples if e.utterance.corpus == corpus])), 3),
            }
            for corpus, pairs in texts.items()
        }
    return result


def gain(summary: dict) -> str:
    if "r_gain_over_phonemes" not in summary:
        return "-"
    return f"{summary['r_gain_over_phonemes']:+.3f} ± {summary['r_gain_standard_error']:.3f}"


def markdown(result: dict) -> str:
    lines = ["# Prosody by prediction: the code predictor's feature sets (issue 15)", "", f"Command: `{result['command']}`", ""]
    lines += [
        "All systems decode with the shipped acoustic model and the voice's centroid embedding; only the phoneme-level prosody",
        "codes differ. log-F0 r / RMSE: vowel by vowel against the recording (Praat over the runtime aligner's vowels), mean over",
        "clips. 'closed': share of the acoustic model's own predictor's F0-std gap that a system closes. Durations and pauses",
        "against the aligner's on the recording (pause: a word gap of >= 100 ms).",
        "",
    ]
    for corpus, systems in result["long_form"].items():
        own_gap = systems[OWN]["f0_std_gap_st"]
        lines += [f"## {corpus} test ({next(iter(systems.values()))['clips']} clips)", ""]
        lines += [
            "| system | log-F0 r | r gain over phonemes (± SE) | log-F0 RMSE (st) | F0 std (st) | F0-std gap (st) | closed | duration r | phone time ratio | pause F1 |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        recorded_std = next(iter(systems.values()))["recorded_f0_std_st"]
        for name, s in systems.items():
            closed = (own_gap - s["f0_std_gap_st"]) / own_gap if own_gap else np.nan
            lines.append(
                f"| {name} | {s['log_f0_correlation']:.3f} | {gain(s)} | {s['log_f0_rmse_st']:.2f} | {s['f0_std_st']:.2f} | {s['f0_std_gap_st']:.2f} | {closed:+.2f} | {s['duration_correlation']:.3f} | {s['phone_time_ratio']:.2f} | {s['pause_f1']:.3f} |"
            )
        lines += ["", f"Recordings' vowel F0 std: {recorded_std:.2f} st.", ""]
    if result.get("listening"):
        lines += ["## Clarity and naturalness (shipped vocoder; Whisper tiny.en WER, NISQA-TTS)", "", "| system | voice | WER | NISQA-TTS |", "|---|---|---|---|"]
        for name, voices in result["listening"].items():
            for corpus, s in voices.items():
                lines.append(f"| {name} | {corpus} | {s['wer']:.3f} | {s['nisqa_tts']:.2f} |")
        lines.append("")
    lines += ["## Prosody sets (LJ voice; no recordings): vowel F0 std / final movement (st)", ""]
    names = list(next(iter(result["sets"].values())))
    lines += ["| set | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for set_name, systems in result["sets"].items():
        lines.append(f"| {set_name} | " + " | ".join(f"{systems[n]['std']:.2f} / {systems[n]['final_movement']:+.2f}" for n in names) + " |")
    lines += ["", f"Run time {result['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from reader.training.code_predictor.train import runs_folder

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, default=None, help="folder of the variants' exports (default: the training runs)")
    parser.add_argument("--models", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=0, help="test clips per voice (0: all 50)")
    parser.add_argument("--listen", nargs="*", default=None, help="systems to vocode for WER and NISQA-TTS (no names: the own predictor and every variant)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    models = args.models or models_dir()
    builder = ExampleBuilder(models)
    systems = Systems(args.runs or runs_folder(), models)
    frames_per_second = builder.acoustic.sample_rate / builder.acoustic.hop_length
    from reader.model_inputs import token_inputs

    with tempfile.TemporaryDirectory() as tmp:
        examples = test_examples(builder, test_utterances(args.limit))
        long_form = {}
        for corpus in CORPORA:
            rows = {name: [] for name in systems.names}
            for example, recorded_log_f0 in (e for e in examples if e[0].utterance.corpus == corpus):
                speaker = builder.acoustic.speakers[example.speaker_id]
                for name in systems.names:
                    output = builder.acoustic.synthesize(token_inputs(example.inputs["syntax"]), speaker, prosody_codes=systems.codes(name, example))
                    rows[name].append(clip_scores(example, recorded_log_f0, output, frames_per_second))
            long_form[corpus] = {name: summarise(r, rows.get("phonemes")) for name, r in rows.items()}
        listening = None
        if args.listen is not None:
            listening = listen(builder, systems, examples, args.listen or systems.names[:-1], models, Path(tmp))
    result = {
        "command": "python benchmarks/prosody_prediction.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "long_form": long_form,
        "listening": listening,
        "sets": set_dynamics(builder, systems),
        "variants": {name: p.manifest["training"] for name, p in systems.predictors.items()},
        "seconds": round(time.monotonic() - started, 1),
    }
    write_results(RESULTS, result, markdown(result))


if __name__ == "__main__":
    main()
