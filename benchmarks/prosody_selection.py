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
log-F0 RMSE (semitones) and correlation after aligning by duration, two ways: both voiced contours
resampled to a common length, and vowel by vowel through the runtime aligner;
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
from reader.prosody_selection import (
    AVOID_RECENT,
    SELECTORS,
    ProsodyBank,
    ProsodySelector,
    Selection,
    SentenceEncoder,
    SyntacticFeatures,
    recording_session,
    unit,
)
from reader.training.pause_labels import (
    energy_track,
    label_audio,
    load_whisper_model,
    pitch_semitones,
    read_audio,
    transcript_words,
    whisper_words,
)
from reader.training.word_alignment import letters, spoken_whisper_words
from common import semitones, write_results  # benchmarks/ is on sys.path when run as a script

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SETS = HERE / "prosody_sets"
CORPUS = "ljspeech_longform"
CONTOUR_POINTS = 100
PAUSE_MS = 100.0
# Systems of part 2: the four selectors; the syntactic one without the long-form rule and on the raw bank
# (session offsets left in); and bounds that are not selectors: `random` (a random bank embedding of
# the voice per sentence: variation without linguistic information) and `oracle` (each clip's own
# embedding, encoded from its recording: what a perfect pick could reach; session-normalised like the
# bank's, or raw).
SYSTEMS = {
    **{name: {"method": name} for name in SELECTORS},
    "syntactic, no avoid_recent": {"method": "syntactic", "avoid_recent": 0},
    "syntactic, raw bank": {"method": "syntactic", "session_normalised": False},
    "random": {"method": "random"},
    "oracle": {"method": "oracle", "session_normalised": False},
    "oracle, session-normalised": {"method": "oracle"},
}


# --- Part 1: design by leave-one-out on the training bank ---------------------------------------------


@dataclass(frozen=True)
class RecordedF0:
    """Each training clip's recorded F0 (from the acoustic feature cache), NaN where it has too little voicing."""

    std: np.ndarray  # (clips,) semitones
    contours: np.ndarray  # (clips, CONTOUR_POINTS) semitones, voiced frames resampled as in part 2

    def contour_rmse(self, predicted: np.ndarray) -> float:
        """Mean log-F0 RMSE (semitones) of `predicted` contours (one per clip, or one for all) against the clips'."""
        errors = np.sqrt(np.mean((np.broadcast_to(predicted, self.contours.shape) - self.contours) ** 2, axis=1))
        return float(np.nanmean(errors))


def recorded_f0(utterance_ids: list[str], corpora: dict[str, str]) -> RecordedF0:
    from reader.training.acoustic.data import FeatureCache, Utterance

    cache = FeatureCache()
    tracks = []
    for utterance_id in utterance_ids:
        corpus = corpora[utterance_id]
        features = cache.load(Utterance(corpus, utterance_id, "", "", data_dir() / corpus / "wavs" / f"{utterance_id}.flac"))
        tracks.append(F0Track.of(semitones(features.f0_hz[features.f0_hz > 0])))
    return RecordedF0(np.array([t.std for t in tracks]), np.stack([t.contour() for t in tracks]))


@dataclass(frozen=True)
class LeaveOneOut:
    embedding_error: float  # vs a random pick (1.0)
    f0_std_correlation: float
    contour_rmse: float  # the neighbour's recorded F0 contour as a prediction of the clip's (semitones)
    consecutive_repeats: float  # share of clips (in reading order) given the same neighbour as the previous one
    same_section: float  # share of neighbours from the clip's own book section (LJ001 / LJ002)


def random_others(n: int) -> np.ndarray:
    """For each of n clips, a different clip chosen at random (seeded)."""
    picks = np.random.default_rng(0).integers(0, n - 1, size=n)
    return picks + (picks >= np.arange(n))


def within_random_pools(similarity: np.ndarray, size: int) -> np.ndarray:
    """`similarity` with each clip's choice limited to `size` random other clips (seeded): a smaller bank."""
    rng = np.random.default_rng(0)
    limited = np.full_like(similarity, -np.inf)
    for i, row in enumerate(similarity):
        pool = rng.choice(np.delete(np.arange(len(row)), i), size, replace=False)
        limited[i, pool] = row[pool]
    return limited


def mean_pairwise_distance(embeddings: np.ndarray) -> float:
    """Expected embedding distance between two different clips: the error of a random pick."""
    return float(np.linalg.norm(embeddings[:, None] - embeddings[None], axis=-1).sum() / (len(embeddings) * (len(embeddings) - 1)))


def leave_one_out(
    similarity: np.ndarray, embeddings: np.ndarray, random_pick: float, recorded: RecordedF0, sections: np.ndarray, avoid_recent: int = 0
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
    f0_std = recorded.std
    known = ~np.isnan(f0_std) & ~np.isnan(f0_std[chosen])
    correlation = np.corrcoef(f0_std[chosen][known], f0_std[known])[0, 1]
    return LeaveOneOut(
        round(float(error), 4),
        round(float(correlation), 4),
        round(recorded.contour_rmse(recorded.contours[chosen]), 3),
        round(float(np.mean(chosen[1:] == chosen[:-1])), 4),
        round(float(np.mean(sections[chosen] == sections)), 4),
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
    raw_embeddings = ProsodyBank.load(models / "prosody_bank", sha, dim, session_normalised=False).acoustic_embeddings
    result: dict = {}
    for speaker in sorted({row["speaker"] for row in rows}):
        index = [i for i, row in enumerate(rows) if row["speaker"] == speaker]
        embeddings, raw = bank.acoustic_embeddings[index], raw_embeddings[index]
        random_pick = mean_pairwise_distance(embeddings)
        recorded = recorded_f0([rows[i]["id"] for i in index], corpora)
        sections = np.array([rows[i]["session"] for i in index])  # LJ001 / LJ002; arctic_a / arctic_b
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
        table = {name: asdict(leave_one_out(s, embeddings, random_pick, recorded, sections)) for name, s in variants.items()}
        if speaker.lower() == "lj":  # long-form: clips are in reading order
            for k in (1, 3, 5):
                table[f"syntactic avoid_recent={k}"] = asdict(leave_one_out(chosen_syntax, embeddings, random_pick, recorded, sections, avoid_recent=k))
            for size in (40, 80, 160):  # would a bigger bank help? (the paper's voice had far more data)
                table[f"syntactic, bank of {size} clips"] = asdict(leave_one_out(within_random_pools(chosen_syntax, size), embeddings, random_pick, recorded, sections, AVOID_RECENT))
            table["syntactic, raw bank (session offsets kept)"] = asdict(leave_one_out(chosen_syntax, raw, mean_pairwise_distance(raw), recorded, sections, AVOID_RECENT))
        centroid_error = np.linalg.norm(embeddings - embeddings.mean(0), axis=1).mean() / random_pick
        result[speaker] = {
            "clips": len(index),
            "between_session_variance_share": round(float(1 - ((embeddings - embeddings.mean(0)) ** 2).sum() / ((raw - raw.mean(0)) ** 2).sum()), 4),
            # How different the clips' embeddings are at all (the VAE prior has std 1 per dimension).
            "embedding_std_per_dimension": round(float(embeddings.std(0).mean()), 6),
            "centroid_embedding_error": round(float(centroid_error), 4),
            # What the neighbour's prosody could do at best (model-free): the mean contour of the voice,
            # the centroid's counterpart, against a random other clip's contour.
            "mean_contour_rmse": round(recorded.contour_rmse(np.nanmean(recorded.contours, axis=0)), 3),
            "random_contour_rmse": round(recorded.contour_rmse(recorded.contours[random_others(len(index))]), 3),
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


@dataclass(frozen=True)
class VowelF0:
    """F0 per vowel token in semitones (re 100 Hz), with the vowels' symbol ids: two renditions of a
    text are compared vowel by vowel when their vowel sequences are the same."""

    symbol_ids: np.ndarray
    semitones: np.ndarray


@dataclass
class Measure:
    audio_f0: F0Track  # Praat on the audio (what a listener hears; needs a decent vocoder)
    model_f0: F0Track | None  # the acoustic model's own F0 over its vowel frames (synthesis only)
    vowel_f0: VowelF0 | None  # synthesis: the model's; recording: Praat over the runtime aligner's vowels
    words_per_second: float  # over the speech, leading and trailing silence excluded
    pauses_ms: np.ndarray  # at each transcript word gap (Whisper times + silence detector)
    wer: float


def measure(audio: np.ndarray, sample_rate: int, text: str, whisper, model_semitones: np.ndarray | None = None, vowel_f0: VowelF0 | None = None) -> Measure:
    start, end = energy_track(audio, sample_rate).speech_span()
    words, _ = transcript_words(text)
    pauses, wer = np.full(max(len(words) - 1, 0), np.nan), np.nan
    if whisper is not None:
        import ctranslate2
        import jiwer

        ctranslate2.set_random_seed(0)  # Whisper's temperature fallback samples: same audio, same words
        heard = whisper_words(audio, sample_rate, whisper)
        hypothesis = " ".join(filter(None, (letters(w.text) for w in spoken_whisper_words(heard))))
        wer = jiwer.wer(" ".join(filter(None, (letters(w) for w in words))), hypothesis) if hypothesis else 1.0
        if hypothesis:
            pauses = np.array([gap.pause_ms for gap in label_audio("", audio, sample_rate, text, heard).gaps])
    return Measure(
        audio_f0=F0Track.of(pitch_semitones(audio, sample_rate)[1]),
        model_f0=None if model_semitones is None else F0Track.of(model_semitones),
        vowel_f0=vowel_f0,
        words_per_second=len(words) / max(end - start, 1e-3),
        pauses_ms=pauses,
        wer=float(wer),
    )


def compare(synthesis: Measure, recording: Measure) -> dict:
    paused_syn, paused_rec = synthesis.pauses_ms >= PAUSE_MS, recording.pauses_ms >= PAUSE_MS
    row = {}
    for source, track in (("model", synthesis.model_f0), ("audio", synthesis.audio_f0)):
        a, b = track.contour(), recording.audio_f0.contour()
        row |= f0_agreement(source, a, b, track.std, recording.audio_f0.std)
    ours, theirs = synthesis.vowel_f0, recording.vowel_f0
    same_vowels = len(ours.symbol_ids) == len(theirs.symbol_ids) and bool(np.all(ours.symbol_ids == theirs.symbol_ids))
    if same_vowels and len(ours.semitones) > 2 and np.all(np.isfinite(theirs.semitones)):
        row |= f0_agreement("aligned", ours.semitones, theirs.semitones, float(np.std(ours.semitones)), float(np.std(theirs.semitones)))
    else:  # the front end read the transcript differently from the text, or Praat heard no voicing
        row |= {key: np.nan for key in F0_KEYS if key.startswith("aligned_")}
    return row | {
        "pause_true_positives": int((paused_syn & paused_rec).sum()),
        "pause_predicted": int(paused_syn.sum()),
        "pause_actual": int(paused_rec.sum()),
        "pause_length_error_ms": float(np.nanmean(np.abs(synthesis.pauses_ms - recording.pauses_ms))) if len(paused_rec) else np.nan,
        "rate_ratio": synthesis.words_per_second / recording.words_per_second,
        "wer": synthesis.wer,
    }


F0_SOURCES = ("model", "audio", "aligned")
F0_KEYS = [f"{source}_{key}" for source in F0_SOURCES for key in ("f0_std_st", "f0_std_gap_st", "log_f0_rmse_st", "log_f0_correlation")]


def f0_agreement(source: str, synthesis: np.ndarray, recording: np.ndarray, synthesis_std: float, recording_std: float) -> dict:
    """Two F0 sequences of equal length (semitones) compared point by point."""
    return {
        f"{source}_f0_std_st": synthesis_std,
        f"{source}_f0_std_gap_st": abs(synthesis_std - recording_std),
        f"{source}_log_f0_rmse_st": float(np.sqrt(np.mean((synthesis - recording) ** 2))),
        f"{source}_log_f0_correlation": float(np.corrcoef(synthesis, recording)[0, 1]),
    }


def summarise_long_form(per_clip: list[dict]) -> dict:
    def mean(key: str) -> float:
        return round(float(np.nanmean([c[key] for c in per_clip])), 4)

    tp, predicted, actual = (sum(c[k] for c in per_clip) for k in ("pause_true_positives", "pause_predicted", "pause_actual"))
    return {
        **{key: mean(key) for key in (*F0_KEYS, "pause_length_error_ms", "wer", "rate_ratio")},
        "pause_f1": round(2 * tp / max(predicted + actual, 1), 4),
        "aligned_clips": int(np.isfinite([c["aligned_log_f0_rmse_st"] for c in per_clip]).sum()),
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


def synthesise(reader, text: str) -> tuple[np.ndarray, np.ndarray, VowelF0]:
    """Audio of `text` (the engine's requests, decoded and vocoded whole), the model's F0 in semitones
    on its vowel frames (NaN elsewhere: the recording's F0 exists on voiced frames only, the model's
    everywhere), and the same per vowel token."""
    from reader_runtime.stream import decode

    mels, frame_semitones, vowel_ids, vowel_semitones = [], [], [], []
    for request in reader.requests(text):
        output = decode(reader.acoustic, request)
        mels.append(output.mel)
        vowels = request.tokens.stress_ids > 0
        frame_semitones.append(np.repeat(np.where(vowels, semitones(output.f0), np.nan), output.durations))
        vowel_ids.append(request.tokens.symbol_ids[vowels])
        vowel_semitones.append(semitones(output.f0[vowels]))
    audio = reader.vocoder.synthesize(np.concatenate(mels)).astype(np.float64)
    return audio, np.concatenate(frame_semitones), VowelF0(np.concatenate(vowel_ids), np.concatenate(vowel_semitones))


def recorded_vowel_f0(transfer, clip_id: str, text: str, voice: str) -> VowelF0:
    """The recording's F0 per vowel of its transcript: the runtime aligner's durations (as `reader
    transfer` finds them) and the mean Praat log F0 over each vowel's frames."""
    source = transfer.analyse_source(data_dir() / CORPUS / "wavs" / f"{clip_id}.flac", text, source_voice=voice, force=True)
    vowels = source.inputs.stress_ids > 0
    return VowelF0(source.inputs.symbol_ids[vowels], semitones(np.exp(source.log_f0[vowels])))


def measure_synthesis(reader, text: str, whisper) -> Measure:
    audio, model_f0, vowel_f0 = synthesise(reader, text)
    return measure(audio, reader.sample_rate, text, whisper, model_f0, vowel_f0)


def set_dynamics(measures: list[Measure]) -> dict:
    return {
        f"{source}_{key}": round(float(np.nanmean([getattr(getattr(m, f"{source}_f0"), key) for m in measures])), 3)
        for source in ("model", "audio")
        for key in ("std", "range", "final_movement")
    }


@dataclass
class RandomEmbedding:
    """A random bank embedding of the voice for every sentence (seeded): variation without information."""

    bank: ProsodyBank
    rows: np.ndarray
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def reading(self) -> RandomEmbedding:
        return self

    def select(self, sentence) -> Selection:
        row = int(self.rng.choice(self.rows))
        return Selection("random", self.bank.acoustic_embeddings[row], self.bank.utterances[row], None, row)


@dataclass
class OracleEmbedding:
    """The current clip's own utterance embedding, from its recording (set `clip_id` before each clip)."""

    embeddings: dict[str, np.ndarray]
    clip_id: str = ""

    def reading(self) -> OracleEmbedding:
        return self

    def select(self, sentence) -> Selection:
        return Selection("oracle", self.embeddings[self.clip_id])


def recording_embeddings(reader, clips: list[tuple[str, str]]) -> dict[str, np.ndarray]:
    """utterance_encoder.onnx on each test recording, read as `reader transfer` reads a source."""
    from reader.transfer import load_source
    from reader_runtime.features import FeatureSettings, log_mel_spectrogram

    acoustic = reader.acoustic
    settings = FeatureSettings(sample_rate=acoustic.sample_rate, hop_length=acoustic.hop_length)
    encoder, embeddings = acoustic.encoder("utterance_encoder"), {}
    for clip_id, _ in clips:
        recording = load_source(data_dir() / CORPUS / "wavs" / f"{clip_id}.flac", acoustic.sample_rate)
        log_mel = log_mel_spectrogram(recording.samples, settings)[None].astype(np.float32)
        embeddings[clip_id] = encoder.run(None, {"log_mel": log_mel})[0][0]
    return embeddings


def system_selector(models: Path, reader, system: str, clips: list[tuple[str, str]]):
    options = dict(SYSTEMS[system])
    method, session_normalised = options.pop("method"), options.pop("session_normalised", True)
    acoustic = reader.acoustic
    sha, dim = acoustic.manifest["files"]["text_to_mel"]["sha256"], acoustic.utterance_embedding_dim
    if method == "oracle":
        own = recording_embeddings(reader, clips)
        if session_normalised:  # the offset the bank's clips of the same session have, taken out as for them
            raw = ProsodyBank.load(models / "prosody_bank", sha, dim, session_normalised=False)
            of_voice = np.array([u.speaker.lower() == reader.speaker.name.lower() for u in raw.utterances])
            for clip_id in own:
                of_session = of_voice & np.array([u.session == recording_session(clip_id) for u in raw.utterances])
                own[clip_id] = own[clip_id] + raw.acoustic_embeddings[of_voice].mean(0) - raw.acoustic_embeddings[of_session].mean(0)
        return OracleEmbedding(own)
    bank = ProsodyBank.load(models / "prosody_bank", sha, dim, session_normalised=session_normalised)
    if method == "random":
        return RandomEmbedding(bank, ProsodySelector("syntactic", bank, reader.speaker.name).rows)
    encoder = SentenceEncoder.load(models / "bert") if "bert" in method else None
    return ProsodySelector(method, bank, reader.speaker.name, encoder, **options)


def evaluate_system(models: Path, system: str, clips: list[tuple[str, str]], set_texts: dict[str, list[str]], recordings: dict[str, Measure]) -> dict:
    """One system on the long-form clips (in reading order) and the test sets (not for the oracle,
    which needs recordings); runs in a worker process."""
    from reader.engine import Reader

    started = time.perf_counter()
    whisper = load_whisper_model()
    reader = Reader(voice=lj_voice(models), models=models, threads=1)
    selector = system_selector(models, reader, system, clips)
    reader.prosody = LongFormReading(selector)
    per_clip = []
    for clip_id, text in clips:
        if isinstance(selector, OracleEmbedding):
            selector.clip_id = clip_id
        per_clip.append(compare(measure_synthesis(reader, text, whisper), recordings[clip_id]))
    picked = [s.utterance.id if s.utterance else None for s in reader.prosody.chosen]
    long_form = summarise_long_form(per_clip) | {
        "distinct_neighbours": len({p for p in picked if p}),
        "consecutive_repeats": int(sum(a == b and a is not None for a, b in zip(picked, picked[1:]))),
    }
    sets = {} if isinstance(selector, OracleEmbedding) else {name: set_dynamics([measure_synthesis(reader, s, None) for s in sentences]) for name, sentences in set_texts.items()}
    print(f"{system}: {long_form} ({time.perf_counter() - started:.0f} s)", flush=True)
    return {"long_form": long_form, "sets": sets, "selections": picked}


def embedding_sensitivity(models: Path, texts: list[str], n_embeddings: int = 20) -> dict:
    """How much the acoustic model's output moves with the utterance embedding at all: each sentence
    decoded with n random bank embeddings of LJ; the spread (std across embeddings) of its F0 std,
    mean F0 and duration, averaged over sentences. Near zero = the decoder ignores the embedding, and
    no selector can change the prosody."""
    from dataclasses import replace

    from reader.engine import Reader
    from reader_runtime.stream import decode

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
                vowel_semitones = np.repeat(semitones(output.f0[vowels]), output.durations[vowels])
                stats.append((vowel_semitones.std(), vowel_semitones.mean(), output.durations.sum() * reader.acoustic.hop_length / reader.sample_rate))
            spreads.append(np.std(stats, axis=0))
    spread = np.mean(spreads, axis=0)
    return {"sentences": len(spreads), "embeddings": n_embeddings, "f0_std_st": round(float(spread[0]), 4), "mean_f0_st": round(float(spread[1]), 4), "duration_s": round(float(spread[2]), 4)}


def evaluate(models: Path, clip_limit: int, set_size: int, jobs: int) -> dict:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from reader.engine import Reader

    whisper = load_whisper_model()
    clips = test_clips(clip_limit)
    reader = Reader(voice=lj_voice(models), models=models, threads=1)
    transfer = reader.prosody_transfer()
    recordings = {}
    for clip_id, text in clips:
        audio, rate = read_audio(data_dir() / CORPUS / "wavs" / f"{clip_id}.flac")
        recordings[clip_id] = measure(audio, rate, text, whisper, vowel_f0=recorded_vowel_f0(transfer, clip_id, text, reader.speaker.name))
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
        "vowel_f0_std_st": round(float(np.nanmean([np.std(m.vowel_f0.semitones) for m in recordings.values()])), 4),
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
                f"(prior: 1); embedding error of the centroid {part['centroid_embedding_error']} (random pick = 1); "
                f"share of the embedding variance between recording sessions {part['between_session_variance_share']} (taken out: "
                "errors are on session-normalised embeddings except in the raw-bank row).",
                "",
                f"The neighbour's recorded F0 contour as a prediction of the clip's (log-F0 RMSE, semitones, as in the long-form "
                f"table): the voice's mean contour {part['mean_contour_rmse']}, a random other clip's {part['random_contour_rmse']}.",
                "",
                "| variant | embedding error (random = 1) | F0-std correlation | neighbour's contour RMSE (st) | consecutive repeats | same section |",
                "|---|---|---|---|---|---|",
                *[
                    f"| {name} | {v['embedding_error']} | {v['f0_std_correlation']} | {v['contour_rmse']} | {v['consecutive_repeats']} | {v['same_section']} |"
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
            f"Recordings: F0 std {recorded['f0_std_st']} st over voiced frames, {recorded['vowel_f0_std_st']} st over vowels (aligned), "
            f"{recorded['words_per_second']} words/s, Whisper WER {recorded['wer']}.",
            "",
            "Embedding sensitivity of the acoustic model (std across {embeddings} random LJ bank embeddings, mean over {sentences} "
            "sentences): F0 std {f0_std_st} st, mean F0 {mean_f0_st} st, duration {duration_s} s.".format(**evaluation["embedding_sensitivity"]),
            "",
            "F0 compared three ways: 'model' = the acoustic model's own F0 on its vowel frames and 'audio' = Praat on the "
            "vocoded audio, both against Praat on the recording's voiced frames, each contour resampled to 100 points; "
            "'aligned' = vowel by vowel, the model's F0 per vowel against the recording's mean Praat F0 over the same vowel "
            f"as the runtime aligner finds it ({evaluation['long_form']['centroid']['aligned_clips']} clips with the same "
            "vowel sequence). 'closed' = share of the centroid's gap to the recordings that a system closes (the issue's "
            "goal: >= 0.20 for syntactic). 'oracle' and 'random' are bounds, not selectors (see SYSTEMS in the script).",
            "",
            "| system | F0 source | F0 std (st) | F0-std gap (st) | closed | log-F0 RMSE (st) | closed | log-F0 corr |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, r in evaluation["long_form"].items():
            for source in F0_SOURCES:
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
        set_names = sorted(evaluation["sets"]["centroid"])
        lines += ["", "## Test sets: F0 dynamics of the synthesis (mean per sentence, semitones; model F0 | audio F0)", ""]
        lines += ["| system | " + " | ".join(f"{s}: std / range / final" for s in set_names) + " |", "|---|" + "---|" * len(set_names)]
        for name, per_set in evaluation["sets"].items():
            if not per_set:
                continue
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
