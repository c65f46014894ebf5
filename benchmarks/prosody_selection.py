"""Linguistics-driven acoustic embedding selection (issue 5): design measurements and evaluation.

    python benchmarks/prosody_selection.py [--models DIR] [--part design|evaluation|all] [--jobs 2]
        [--clips N] [--set-size N]   -> benchmarks/results/prosody_selection.{json,md}

Part 1, design (no synthesis; train split only, never the test split): leave-one-out over each
speaker's bank. Every training clip is treated as a new sentence: the selector picks the most similar
*other* clip, and we measure how well that neighbour predicts the clip's own prosody:
- embedding error: mean |e(neighbour) - e(clip)| divided by the mean distance between two random
  clips of the speaker (1.0 = no better than a random pick; the centroid's ratio is shown for scale,
  it is lower by construction because a mean minimises squared error, and is monotonous);
- F0-std correlation: Pearson r between the recorded F0 standard deviation (semitones) of the
  neighbour and of the clip (0 = the pick says nothing about how lively the clip is);
- same section: share of LJ neighbours from the clip's own book section. LJ001 and LJ002 differ in
  recording conditions, which the embeddings capture strongly, so a selector that matches topic
  (BERT) also matches the section; the held-out test clips are all LJ002.
It compares the variants the paper leaves open (profile bins, summary weight, BERT pooling, the
BERT/syntax weight) and, for LJ in reading order, `avoid_recent`.

Part 2, evaluation on the held-out LJ long-form test clips (a contiguous stretch of LJ002, read in
order, so the long-form history is real): each clip's text synthesised with every selector and
compared with its recording: F0 standard deviation in semitones and its gap to the recording's;
log-F0 RMSE (semitones) and correlation after resampling both voiced contours to a common length;
pauses at word gaps (Whisper word times + the silence detector of reader.training.pause_labels, on
both recording and synthesis: F1 of pauses >= 100 ms, mean |pause length error|); speaking rate
(words per second of speech); Whisper tiny.en WER. And F0 dynamics of the small test sets in
benchmarks/prosody_sets/ (no recordings: dynamics only). Also the acoustic model's sensitivity to
the embedding (output spread over random bank embeddings), which bounds what any selector can do.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from reader.paths import data_dir, models_dir
from reader.prosody_selection import SELECTORS, ProsodyBank, ProsodySelector, SentenceEncoder, SyntacticFeatures, unit
from reader.training.pause_labels import (
    _letters,
    _spoken_whisper_words,
    energy_track,
    label_audio,
    load_whisper_model,
    pitch_semitones,
    read_audio,
    transcript_words,
    whisper_words,
)
from common import write_results  # benchmarks/ is on sys.path when run as a script

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SETS = HERE / "prosody_sets"
CORPUS = "ljspeech_longform"
CONTOUR_POINTS = 100
PAUSE_MS = 100.0
# Systems of part 2: the four selectors, plus the chosen one without the long-form rule.
SYSTEMS = {**{name: {"method": name} for name in SELECTORS}, "syntactic, no avoid_recent": {"method": "syntactic", "avoid_recent": 0}}


# --- Part 1: design by leave-one-out on the training bank ---------------------------------------------


def recorded_f0_std(utterance_ids: list[str], corpora: dict[str, str]) -> np.ndarray:
    """F0 standard deviation (semitones) of each training clip, from the acoustic feature cache."""
    from reader.training.acoustic.data import FeatureCache, Utterance

    cache = FeatureCache()
    values = []
    for utterance_id in utterance_ids:
        corpus = corpora[utterance_id]
        features = cache.load(Utterance(corpus, utterance_id, "", "", data_dir() / corpus / "wavs" / f"{utterance_id}.flac"))
        f0 = features.f0_hz[features.f0_hz > 0]
        values.append(float(np.std(12 * np.log2(f0))) if len(f0) > 10 else np.nan)
    return np.asarray(values)


@dataclass(frozen=True)
class LeaveOneOut:
    embedding_error: float  # vs a random pick (1.0)
    f0_std_correlation: float
    consecutive_repeats: float  # share of clips (in reading order) given the same neighbour as the previous one
    same_section: float  # share of neighbours from the clip's own book section (LJ001 / LJ002)


def mean_pairwise_distance(embeddings: np.ndarray) -> float:
    """Expected embedding distance between two different clips: the error of a random pick."""
    return float(np.linalg.norm(embeddings[:, None] - embeddings[None], axis=-1).sum() / (len(embeddings) * (len(embeddings) - 1)))


def leave_one_out(
    similarity: np.ndarray, embeddings: np.ndarray, random_pick: float, f0_std: np.ndarray, sections: np.ndarray, avoid_recent: int = 0
) -> LeaveOneOut:
    similarity = similarity.copy()
    np.fill_diagonal(similarity, -np.inf)
    chosen, recent = [], []
    for row in similarity:
        order = np.argsort(-row, kind="stable")
        pick = next((j for j in order if j not in recent), order[0])
        chosen.append(pick)
        recent = (recent + [pick])[-avoid_recent:] if avoid_recent else []
    chosen = np.asarray(chosen)
    error = np.linalg.norm(embeddings[chosen] - embeddings, axis=1).mean() / random_pick
    known = ~np.isnan(f0_std) & ~np.isnan(f0_std[chosen])
    correlation = np.corrcoef(f0_std[chosen][known], f0_std[known])[0, 1]
    return LeaveOneOut(
        round(float(error), 4), round(float(correlation), 4), round(float(np.mean(chosen[1:] == chosen[:-1])), 4), round(float(np.mean(sections[chosen] == sections)), 4)
    )


def design(models: Path) -> dict:
    acoustic_manifest = json.loads((models / "acoustic" / "manifest.json").read_text())
    sha = acoustic_manifest["files"]["text_to_mel"]["sha256"]
    dim = acoustic_manifest["utterance_embedding_dim"]
    bank_manifest = json.loads((models / "prosody_bank" / "manifest.json").read_text())
    rows = bank_manifest["utterances"]
    corpora = {row["id"]: row["corpus"] for row in rows}
    encoder = SentenceEncoder.load(models / "bert")
    bank = ProsodyBank.load(models / "prosody_bank", sha, dim)
    result: dict = {}
    for speaker in sorted({row["speaker"] for row in rows}):
        index = [i for i, row in enumerate(rows) if row["speaker"] == speaker]
        embeddings = bank.acoustic_embeddings[index]
        random_pick = mean_pairwise_distance(embeddings)
        f0_std = recorded_f0_std([rows[i]["id"] for i in index], corpora)
        sections = np.array([rows[i]["id"][:5] for i in index])  # LJ001 / LJ002; ARCTIC has one
        bert_mean = bank.bert_vectors[index]
        bert_cls = encoder.encode([rows[i]["text"] for i in index], pooling="cls")

        def syntactic(features: SyntacticFeatures) -> np.ndarray:
            vectors = unit(np.stack([features.vector(rows[i]["distances"], rows[i]["n_words"]) for i in index]))
            return vectors @ vectors.T

        variants = {}
        for bins in (8, 16, 32):
            for weight in (0.0, 0.5, 1.0, 2.0):
                variants[f"syntactic bins={bins} summary={weight}"] = syntactic(SyntacticFeatures(bins, weight))
        chosen_syntax = syntactic(SyntacticFeatures())
        variants["bert mean pooling"] = bert_mean @ bert_mean.T
        variants["bert cls pooling"] = bert_cls @ bert_cls.T
        for weight in (0.25, 0.5, 0.75):
            variants[f"bert+syntactic w_syntax={weight}"] = (1 - weight) * variants["bert mean pooling"] + weight * chosen_syntax
        table = {name: asdict(leave_one_out(s, embeddings, random_pick, f0_std, sections)) for name, s in variants.items()}
        if speaker.lower() == "lj":  # long-form: clips are in reading order
            for k in (1, 3, 5):
                table[f"syntactic avoid_recent={k}"] = asdict(leave_one_out(chosen_syntax, embeddings, random_pick, f0_std, sections, avoid_recent=k))
        centroid_error = np.linalg.norm(embeddings - embeddings.mean(0), axis=1).mean() / random_pick
        result[speaker] = {
            "clips": len(index),
            # How different the clips' embeddings are at all (the VAE prior has std 1 per dimension).
            "embedding_std_per_dimension": round(float(embeddings.std(0).mean()), 6),
            "centroid_embedding_error": round(float(centroid_error), 4),
            "variants": table,
        }
    return result


# --- Part 2: synthesis against the recordings ----------------------------------------------------------


@dataclass(frozen=True)
class F0Track:
    """An utterance's F0 in semitones (re 100 Hz) over its voiced frames, in time order."""

    semitones: np.ndarray

    @classmethod
    def of(cls, semitones: np.ndarray) -> F0Track:
        voiced = semitones[np.isfinite(semitones)]
        return cls(voiced if len(voiced) >= 10 else np.full(10, np.nan))

    @property
    def std(self) -> float:
        return float(np.std(self.semitones))

    @property
    def range(self) -> float:  # 95th - 5th percentile
        return float(np.percentile(self.semitones, 95) - np.percentile(self.semitones, 5))

    @property
    def final_movement(self) -> float:  # median of the last 20 % minus the median of all (a question's rise)
        return float(np.median(self.semitones[int(0.8 * len(self.semitones)) :]) - np.median(self.semitones))

    def contour(self) -> np.ndarray:
        """Resampled to CONTOUR_POINTS: aligns two renditions of a text by relative duration."""
        return np.interp(np.linspace(0, len(self.semitones) - 1, CONTOUR_POINTS), np.arange(len(self.semitones)), self.semitones)


@dataclass
class Measure:
    audio_f0: F0Track  # Praat on the audio (what a listener hears; needs a decent vocoder)
    model_f0: F0Track | None  # the acoustic model's own F0 over its vowel frames (synthesis only)
    words_per_second: float  # over the speech, leading and trailing silence excluded
    pauses_ms: np.ndarray  # at each transcript word gap (Whisper times + silence detector)
    wer: float


def measure(audio: np.ndarray, sample_rate: int, text: str, whisper, model_semitones: np.ndarray | None = None) -> Measure:
    start, end = energy_track(audio, sample_rate).speech_span()
    words, _ = transcript_words(text)
    pauses, wer = np.full(max(len(words) - 1, 0), np.nan), np.nan
    if whisper is not None:
        import ctranslate2
        import jiwer

        ctranslate2.set_random_seed(0)  # Whisper's temperature fallback samples: same audio, same words
        heard = whisper_words(audio, sample_rate, whisper)
        hypothesis = " ".join(filter(None, (_letters(w.text) for w in _spoken_whisper_words(heard))))
        wer = jiwer.wer(" ".join(filter(None, (_letters(w) for w in words))), hypothesis) if hypothesis else 1.0
        if hypothesis:
            pauses = np.array([gap.pause_ms for gap in label_audio("", audio, sample_rate, text, heard).gaps])
    return Measure(
        audio_f0=F0Track.of(pitch_semitones(audio, sample_rate)[1]),
        model_f0=None if model_semitones is None else F0Track.of(model_semitones),
        words_per_second=len(words) / max(end - start, 1e-3),
        pauses_ms=pauses,
        wer=float(wer),
    )


def compare(synthesis: Measure, recording: Measure) -> dict:
    paused_syn, paused_rec = synthesis.pauses_ms >= PAUSE_MS, recording.pauses_ms >= PAUSE_MS
    row = {}
    for source, track in (("model", synthesis.model_f0), ("audio", synthesis.audio_f0)):
        a, b = track.contour(), recording.audio_f0.contour()
        row |= {
            f"{source}_f0_std_st": track.std,
            f"{source}_f0_std_gap_st": abs(track.std - recording.audio_f0.std),
            f"{source}_log_f0_rmse_st": float(np.sqrt(np.mean((a - b) ** 2))),
            f"{source}_log_f0_correlation": float(np.corrcoef(a, b)[0, 1]),
        }
    return row | {
        "pause_true_positives": int((paused_syn & paused_rec).sum()),
        "pause_predicted": int(paused_syn.sum()),
        "pause_actual": int(paused_rec.sum()),
        "pause_length_error_ms": float(np.nanmean(np.abs(synthesis.pauses_ms - recording.pauses_ms))) if len(paused_rec) else np.nan,
        "rate_ratio": synthesis.words_per_second / recording.words_per_second,
        "wer": synthesis.wer,
    }


F0_KEYS = [f"{source}_{key}" for source in ("model", "audio") for key in ("f0_std_st", "f0_std_gap_st", "log_f0_rmse_st", "log_f0_correlation")]


def summarise_long_form(per_clip: list[dict]) -> dict:
    def mean(key: str) -> float:
        return round(float(np.nanmean([c[key] for c in per_clip])), 4)

    tp, predicted, actual = (sum(c[k] for c in per_clip) for k in ("pause_true_positives", "pause_predicted", "pause_actual"))
    return {
        **{key: mean(key) for key in (*F0_KEYS, "pause_length_error_ms", "wer", "rate_ratio")},
        "pause_f1": round(2 * tp / max(predicted + actual, 1), 4),
    }


def lj_voice(models: Path) -> str:
    """The acoustic model's name for the LJ voice."""
    speakers = json.loads((models / "acoustic" / "manifest.json").read_text())["speakers"]
    return next(s["name"] for s in speakers if s["name"].lower() == "lj")


def test_clips(limit: int) -> list[tuple[str, str]]:
    splits = json.loads((data_dir() / "splits.json").read_text())
    texts = dict(line.split("|", 2)[::2] for line in (data_dir() / CORPUS / "metadata.csv").read_text().splitlines() if line)
    ids = splits[CORPUS]["test"][: limit or None]
    return [(clip_id, texts[clip_id]) for clip_id in ids]


@dataclass
class LongFormReading:
    """Stands in for the engine's selector: every clip continues one Reading (the test clips are one
    continuous stretch of text), and what it chose is kept (the engine's requests do not carry it)."""

    selector: ProsodySelector
    chosen: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.shared = self.selector.reading()

    def reading(self) -> LongFormReading:
        return self

    def select(self, sentence):
        selection = self.shared.select(sentence)
        self.chosen.append(selection)
        return selection


def synthesise(reader, text: str) -> tuple[np.ndarray, np.ndarray]:
    """Audio of `text` (the engine's requests, decoded and vocoded whole) and the model's F0 in
    semitones on its vowel frames (NaN elsewhere: the recording's F0 exists on voiced frames only,
    the model's everywhere)."""
    from runtime.stream import decode

    mels, semitones = [], []
    for request in reader.requests(text):
        output = decode(reader.acoustic, request)
        mels.append(output.mel)
        token_f0 = np.where(request.tokens.stress_ids > 0, 12 * np.log2(np.maximum(output.f0, 1e-3) / 100), np.nan)
        semitones.append(np.repeat(token_f0, output.durations))
    audio = reader.vocoder.synthesize(np.concatenate(mels)).astype(np.float64)
    return audio, np.concatenate(semitones)


def measure_synthesis(reader, text: str, whisper) -> Measure:
    audio, model_f0 = synthesise(reader, text)
    return measure(audio, reader.sample_rate, text, whisper, model_f0)


def set_dynamics(measures: list[Measure]) -> dict:
    return {
        f"{source}_{key}": round(float(np.nanmean([getattr(getattr(m, f"{source}_f0"), key) for m in measures])), 3)
        for source in ("model", "audio")
        for key in ("std", "range", "final_movement")
    }


def evaluate_system(models: Path, system: str, clips: list[tuple[str, str]], set_texts: dict[str, list[str]], recordings: dict[str, Measure]) -> dict:
    """One system on the long-form clips (in reading order) and the test sets; runs in a worker process."""
    from reader.engine import Reader

    started = time.perf_counter()
    whisper = load_whisper_model()
    reader = Reader(voice=lj_voice(models), models=models, threads=1)
    options = dict(SYSTEMS[system])
    reader.prosody = LongFormReading(ProsodySelector.load(options.pop("method"), models, reader.acoustic, reader.speaker, **options))
    per_clip = [compare(measure_synthesis(reader, text, whisper), recordings[clip_id]) for clip_id, text in clips]
    picked = [s.utterance.id if s.utterance else None for s in reader.prosody.chosen]
    long_form = summarise_long_form(per_clip) | {
        "distinct_neighbours": len({p for p in picked if p}),
        "consecutive_repeats": int(sum(a == b and a is not None for a, b in zip(picked, picked[1:]))),
    }
    sets = {name: set_dynamics([measure_synthesis(reader, s, None) for s in sentences]) for name, sentences in set_texts.items()}
    print(f"{system}: {long_form} ({time.perf_counter() - started:.0f} s)", flush=True)
    return {"long_form": long_form, "sets": sets, "selections": picked}


def embedding_sensitivity(models: Path, texts: list[str], n_embeddings: int = 20) -> dict:
    """How much the acoustic model's output moves with the utterance embedding at all: each sentence
    decoded with n random bank embeddings of LJ; the spread (std across embeddings) of its F0 std,
    mean F0 and duration, averaged over sentences. Near zero = the decoder ignores the embedding, and
    no selector can change the prosody."""
    from dataclasses import replace

    from reader.engine import Reader
    from runtime.stream import decode

    reader = Reader(voice=lj_voice(models), models=models, threads=1, prosody="syntactic")
    rows = reader.prosody.rows
    embeddings = reader.prosody.bank.acoustic_embeddings[np.random.default_rng(0).choice(rows, n_embeddings, replace=False)]
    spreads = []
    for text in texts:
        for request in reader.requests(text):
            vowels = request.tokens.stress_ids > 0
            stats = []
            for embedding in embeddings:
                output = decode(reader.acoustic, replace(request, utterance_embedding=embedding))
                semitones = np.repeat(12 * np.log2(np.maximum(output.f0[vowels], 1e-3) / 100), output.durations[vowels])
                stats.append((semitones.std(), semitones.mean(), output.durations.sum() * reader.acoustic.hop_length / reader.sample_rate))
            spreads.append(np.std(stats, axis=0))
    spread = np.mean(spreads, axis=0)
    return {"sentences": len(spreads), "embeddings": n_embeddings, "f0_std_st": round(float(spread[0]), 4), "mean_f0_st": round(float(spread[1]), 4), "duration_s": round(float(spread[2]), 4)}


def evaluate(models: Path, clip_limit: int, set_size: int, jobs: int) -> dict:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    whisper = load_whisper_model()
    clips = test_clips(clip_limit)
    recordings = {}
    for clip_id, text in clips:
        audio, rate = read_audio(data_dir() / CORPUS / "wavs" / f"{clip_id}.flac")
        recordings[clip_id] = measure(audio, rate, text, whisper)
    set_texts = {
        path.stem: [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")][: set_size or None]
        for path in sorted(SETS.glob("*.txt"))
    }
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {system: pool.submit(evaluate_system, models, system, clips, set_texts, recordings) for system in SYSTEMS}
        results = {system: future.result() for system, future in futures.items()}
    long_form = {system: r["long_form"] for system, r in results.items()}
    centroid = long_form["centroid"]
    for row in long_form.values():
        for key in F0_KEYS:
            if "gap" in key or "rmse" in key:
                row[f"{key}_closed"] = round(1 - row[key] / centroid[key], 4) if centroid[key] else None
    recorded = {
        "f0_std_st": round(float(np.mean([m.audio_f0.std for m in recordings.values()])), 4),
        "wer": round(float(np.nanmean([m.wer for m in recordings.values()])), 4),
        "words_per_second": round(float(np.mean([m.words_per_second for m in recordings.values()])), 3),
    }
    return {
        "embedding_sensitivity": embedding_sensitivity(models, [text for _, text in clips[:10]]),
        "test_clips": len(clips),
        "set_sentences": {name: len(texts) for name, texts in set_texts.items()},
        "recordings": recorded,
        "long_form": long_form,
        "sets": {system: r["sets"] for system, r in results.items()},
        "selections": {system: r["selections"] for system, r in results.items()},
    }


# --- Report -------------------------------------------------------------------------------------------


def markdown(result: dict) -> str:
    lines = [f"Acoustic model: text_to_mel sha256 {result['acoustic_sha256'][:12]}, {result['acoustic_steps']} training steps.", ""]
    if "design" in result:
        lines += ["## Design: leave-one-out on the training bank (train split only)", ""]
        for speaker, part in result["design"].items():
            lines += [
                f"{speaker}: {part['clips']} clips; embedding std per dimension across clips {part['embedding_std_per_dimension']} "
                f"(prior: 1); embedding error of the centroid {part['centroid_embedding_error']} (random pick = 1).",
                "",
                "| variant | embedding error (random = 1) | F0-std correlation | consecutive repeats | same section |",
                "|---|---|---|---|---|",
                *[
                    f"| {name} | {v['embedding_error']} | {v['f0_std_correlation']} | {v['consecutive_repeats']} | {v['same_section']} |"
                    for name, v in part["variants"].items()
                ],
                "",
            ]
    if "evaluation" in result:
        evaluation = result["evaluation"]
        recorded = evaluation["recordings"]
        lines += [
            f"## Long-form: {evaluation['test_clips']} held-out LJ test clips, in reading order",
            "",
            f"Recordings: F0 std {recorded['f0_std_st']} st, {recorded['words_per_second']} words/s, Whisper WER {recorded['wer']}.",
            "",
            "Embedding sensitivity of the acoustic model (std across {embeddings} random LJ bank embeddings, mean over {sentences} "
            "sentences): F0 std {f0_std_st} st, mean F0 {mean_f0_st} st, duration {duration_s} s.".format(**evaluation["embedding_sensitivity"]),
            "",
            "F0 of the synthesis two ways: 'model' = the acoustic model's own F0 on its vowel frames, 'audio' = Praat on the "
            "vocoded audio; both against Praat on the recording. 'closed' = share of the centroid's gap to the recordings "
            "that a system closes (the issue's goal: >= 0.20 for syntactic).",
            "",
            "| system | F0 source | F0 std (st) | F0-std gap (st) | closed | log-F0 RMSE (st) | closed | log-F0 corr |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, r in evaluation["long_form"].items():
            for source in ("model", "audio"):
                lines.append(
                    f"| {name} | {source} | {r[f'{source}_f0_std_st']} | {r[f'{source}_f0_std_gap_st']} | {r[f'{source}_f0_std_gap_st_closed']} | "
                    f"{r[f'{source}_log_f0_rmse_st']} | {r[f'{source}_log_f0_rmse_st_closed']} | {r[f'{source}_log_f0_correlation']} |"
                )
        lines += [
            "",
            "| system | pause F1 (>= 100 ms) | pause error (ms) | rate ratio (synthesis / recording) | WER | distinct neighbours | consecutive repeats |",
            "|---|---|---|---|---|---|---|",
            *[
                f"| {name} | {r['pause_f1']} | {r['pause_length_error_ms']} | {r['rate_ratio']} | {r['wer']} | {r['distinct_neighbours']} | {r['consecutive_repeats']} |"
                for name, r in evaluation["long_form"].items()
            ],
        ]
        set_names = sorted(next(iter(evaluation["sets"].values())))
        lines += ["", "## Test sets: F0 dynamics of the synthesis (mean per sentence, semitones; model F0 | audio F0)", ""]
        lines += ["| system | " + " | ".join(f"{s}: std / range / final" for s in set_names) + " |", "|---|" + "---|" * len(set_names)]
        for name, per_set in evaluation["sets"].items():
            cells = []
            for s in set_names:
                d = per_set[s]
                cells.append(" \\| ".join(f"{d[f'{src}_std']} / {d[f'{src}_range']} / {d[f'{src}_final_movement']}" for src in ("model", "audio")))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", help="models folder (default: reader.paths.models_dir())")
    parser.add_argument("--clips", type=int, default=0, help="only the first N test clips (0: all 50)")
    parser.add_argument("--set-size", type=int, default=0, help="only the first N sentences of each test set (0: all)")
    parser.add_argument("--part", choices=["design", "evaluation", "all"], default="all")
    parser.add_argument("--jobs", type=int, default=1, help="systems evaluated in parallel worker processes")
    parser.add_argument("--out", default=str(RESULTS / "prosody_selection"), help="output path without suffix")
    args = parser.parse_args(argv)
    models = Path(args.models) if args.models else models_dir()
    acoustic = json.loads((models / "acoustic" / "manifest.json").read_text())
    result = {"acoustic_sha256": acoustic["files"]["text_to_mel"]["sha256"], "acoustic_steps": acoustic["training"]["steps"]}
    if args.part in ("design", "all"):
        result["design"] = design(models)
    if args.part in ("evaluation", "all"):
        result["evaluation"] = evaluate(models, args.clips, args.set_size, args.jobs)
    write_results(Path(args.out), result, markdown(result))


if __name__ == "__main__":
    main()
