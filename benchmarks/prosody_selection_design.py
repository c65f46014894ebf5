"""Part 1 of benchmarks/prosody_selection.py: the selector's design by leave-one-out over each
speaker's training bank (train split only): how well the neighbour a variant picks predicts a clip's
own embedding and recorded F0 (docs/prosody.md#choices-the-paper-leaves-open).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from reader.paths import data_dir
from reader.prosody_selection import (
    AVOID_RECENT,
    ProsodyBank,
    SentenceEncoder,
    SyntacticFeatures,
    unit,
)
from common import semitones  # benchmarks/ is on sys.path when run as a script
from prosody_measures import F0Track


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
