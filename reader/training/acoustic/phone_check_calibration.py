"""The phone check's calibration: every score kind of the exported phone recogniser on the development
evidence (valid clips, the holdout speakers' clips, generated non-speech), the threshold of the kind
shipped, and the report that chose it (docs/phone-check.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from reader_runtime.features import FeatureSettings
from reader_runtime.phone_check import ctc_frames_needed

from ..manifests import load_manifest
from .clips import Clip, ClipCache, feature_settings, load_clips, mismatch_pairs
from .export import calibration_record, mismatch_threshold
from .phone_recognizer import PHONES, RecognizerConfig, phone_targets


class Scorer:
    """Every score kind of reader_runtime.phone_check (and the aligner's cost) of a log-mel and a transcript's
    tokens, with the exported graphs as the runtime runs them."""

    def __init__(self, graph: Path, acoustic: Path):
        from reader_runtime.session import SessionOptions, load_session

        options = SessionOptions(intra_op_threads=1, inter_op_threads=1)
        self.recogniser = load_session(graph, options)
        manifest = load_manifest(acoustic)
        self.aligner = load_session(acoustic / manifest["files"]["aligner"]["file"], options)
        self.token_names = [i.name for i in self.aligner.get_inputs() if i.name != "log_mel"]

    def log_probs(self, log_mel: np.ndarray) -> np.ndarray:
        (log_probs,) = self.recogniser.run(None, {"log_mel": np.asarray(log_mel, np.float32)[None]})
        return log_probs[0]

    def scores(self, log_probs: np.ndarray, log_mel: np.ndarray, tokens: dict[str, np.ndarray]) -> dict[str, float]:
        from reader_runtime.aligner import alignment_of
        from reader_runtime.phone_check import score_kinds

        aligner_cost = float("inf")  # no monotonic path: fewer frames than tokens
        if log_mel.shape[0] >= len(tokens["symbol_ids"]):
            (aligner_log_probs,) = self.aligner.run(None, {name: tokens[name][None] for name in self.token_names} | {"log_mel": np.asarray(log_mel, np.float32)[None]})
            aligner_cost = alignment_of(aligner_log_probs[0], float("nan")).cost
        return score_kinds(log_probs, phone_targets(tokens["symbol_ids"]), aligner_cost) | {"aligner_cost": aligner_cost}


def development_scores(scorer: Scorer, pairs: list[tuple[Clip, Clip]]) -> dict[str, np.ndarray]:
    """(clips, 2) scores of each clip with its own transcript and with the other clip's, per score kind."""
    scores: dict[str, list] = {}
    for clip, other in pairs:
        log_probs = scorer.log_probs(clip.log_mel)
        for column, tokens in enumerate((clip.tokens, other.tokens)):
            for kind, value in scorer.scores(log_probs, clip.log_mel, tokens).items():
                scores.setdefault(kind, [[], []])[column].append(value)
    return {kind: np.asarray(values).T for kind, values in scores.items()}


def fits(tokens: dict[str, np.ndarray], n_frames: int) -> bool:
    """Whether a recording of n_frames can hold the transcript at all (the aligner's token per frame, CTC's
    phone per recogniser frame and blank between repeats): otherwise every score is infinite."""
    return len(tokens["symbol_ids"]) <= n_frames and ctc_frames_needed(phone_targets(tokens["symbol_ids"])) <= (n_frames + 1) // 2


def nonspeech_scores(scorer: Scorer, transcripts: list[dict[str, np.ndarray]], settings: FeatureSettings) -> tuple[dict[str, np.ndarray], list[str]]:
    """(clips,) scores per score kind of the fixed non-speech development set (nonspeech.development_set),
    each clip with a real transcript: the next of `transcripts` that its length can hold (a clip that
    holds none is left out). Also the clips' kinds, in order."""
    from .nonspeech import development_set

    scores: dict[str, list] = {}
    kinds, next_transcript = [], 0
    for clip in development_set(settings):
        for offset in range(len(transcripts)):
            tokens = transcripts[(next_transcript + offset) % len(transcripts)]
            if fits(tokens, clip.log_mel.shape[0]):
                next_transcript += offset + 1
                break
        else:
            continue
        for kind, value in scorer.scores(scorer.log_probs(clip.log_mel), clip.log_mel, tokens).items():
            scores.setdefault(kind, []).append(value)
        kinds.append(f"{clip.kind} {clip.seconds:g} s")
    return {kind: np.asarray(values) for kind, values in scores.items()}, kinds


HOLDOUT_GROUP = "speechocean762_adults (unheard train speakers)"
# score kinds from the simplest (one number of the recogniser) to the sum with the aligner's cost
SIMPLEST_FIRST = ("ctc_gap_per_phone", "ctc_gap", "phone_error_rate", "ctc_gap_per_phone+alignment_cost")


@dataclass
class Evidence:
    """The development evidence that chooses the score and calibrates its threshold: per group of clips
    (each corpus's valid clips; the holdout speakers' train clips) every kind's (clips, 2) scores of the
    own and another clip's transcript, and every kind's scores of the non-speech clips with real transcripts."""

    groups: dict[str, dict[str, np.ndarray]]
    nonspeech: dict[str, np.ndarray]
    nonspeech_kinds: list[str]

    def threshold(self, score: str) -> float:
        """The limit that misclassifies the fewest clips: right transcripts against wrong ones and non-speech."""
        matched = np.concatenate([g[score][:, 0] for g in self.groups.values()])
        refused = np.concatenate([g[score][:, 1] for g in self.groups.values()] + [self.nonspeech[score]])
        return mismatch_threshold(matched, refused)

    def report(self, score: str) -> dict:
        """At the kind's threshold: right transcripts accepted, wrong ones and non-speech refused on the
        unheard speakers (the development set proper), and right transcripts accepted per group (the
        training voices' valid clips too); with the separation of the unheard speakers' scores."""
        threshold = self.threshold(score)
        dev = self.groups.get(HOLDOUT_GROUP) or next(iter(self.groups.values()))
        nonspeech = self.nonspeech[score]
        return {
            "threshold": round(threshold, 4),
            "accepted_correct": round(float(np.mean(dev[score][:, 0] <= threshold)), 4),
            "refused_wrong": round(float(np.mean(dev[score][:, 1] > threshold)), 4),
            "refused_nonspeech": round(float(np.mean(nonspeech > threshold)), 4),
            "nonspeech_min": round(float(np.min(nonspeech)), 4),
            "accepted_correct_per_group": {group: round(float(np.mean(s[score][:, 0] <= threshold)), 4) for group, s in self.groups.items()},
            **separation(dev[score]),
        }

    def nonspeech_record(self, score: str, threshold: float) -> dict:
        values = self.nonspeech[score]
        lowest: dict[str, float] = {}
        for kind, value in zip(self.nonspeech_kinds, values, strict=True):
            name = kind.split()[0]
            lowest[name] = round(min(lowest.get(name, np.inf), float(value)), 4)
        return {
            "clips": int(values.size),
            "what": "generated non-speech (reader/training/acoustic/nonspeech.py development_set: noises, hum, tones, music, clicks, near-silence, sirens; never trained on: mixtures, bells, bursts of noise; 1.5-10 s), each with a real transcript",
            "refused": round(float(np.mean(values > threshold)), 4),
            "min_score_per_kind": lowest,
        }


def development_evidence(graph: Path, acoustic: Path, config: RecognizerConfig) -> Evidence:
    cache = ClipCache(feature_settings(acoustic))
    scorer = Scorer(graph, acoustic)
    valid = load_clips(config, "valid", cache)
    pairs = _by_corpus(mismatch_pairs(valid))
    transcripts = [c.tokens for c in valid]
    if config.holdout_speakers:
        holdout = load_clips(config, "train", cache, holdout=True)
        pairs[HOLDOUT_GROUP] = mismatch_pairs(holdout, by="speaker")
        transcripts = [c.tokens for c in holdout]  # the unheard speakers' sentences
    groups = {group: development_scores(scorer, group_pairs) for group, group_pairs in pairs.items()}
    nonspeech, kinds = nonspeech_scores(scorer, transcripts, cache.settings)
    return Evidence(groups, nonspeech, kinds)


def separation(scores: np.ndarray) -> dict:
    """ROC AUC (a wrong transcript scores higher than a right one; ties count half) and the share of
    right transcripts accepted at the highest threshold that still refuses at least 95% of the wrong ones."""
    matched, mismatched = scores[:, 0], np.sort(scores[:, 1])
    let_through = int(np.floor(0.05 * mismatched.size))  # wrong transcripts that may score at or below it
    limit = mismatched[let_through]  # accepted: strictly below the first wrong one that must be refused
    return {
        "auc": round(float(np.mean(mismatched[None, :] > matched[:, None]) + 0.5 * np.mean(mismatched[None, :] == matched[:, None])), 4),
        "accepted_at_95_refused": round(float(np.mean(matched < limit)), 4),
        "matched_median": round(float(np.median(matched)), 4),
        "mismatched_median": round(float(np.median(mismatched)), 4),
    }


def calibrate(evidence: Evidence, config: RecognizerConfig, score: str) -> dict:
    """The manifest's `phone_check` block: the threshold on `score`, calibrated as export.calibrate_aligner
    does (valid clips of every corpus against the next clip's transcript with other words, and the
    holdout speakers' train clips as a group of their own, against the same speaker's next clip), with
    the generated non-speech development clips among those to refuse."""
    from reader_runtime.phone_check import SCORE_DESCRIPTIONS

    threshold = evidence.threshold(score)
    scored = {group: (s[score][:, 0], s[score][:, 1]) for group, s in evidence.groups.items()}
    return {
        "score": score,
        "score_threshold": round(threshold, 4),
        "description": SCORE_DESCRIPTIONS[score] + "; above the threshold the transcript is taken not to match",
        "phones": list(PHONES),
        "calibration": calibration_record(scored, threshold, config.corpora, config.holdout_speakers, "score") | {"nonspeech": evidence.nonspeech_record(score, threshold)},
    }


def _by_corpus(pairs: list[tuple[Clip, Clip]]) -> dict[str, list[tuple[Clip, Clip]]]:
    grouped: dict[str, list] = {}
    for pair in pairs:
        grouped.setdefault(pair[0].utterance.corpus, []).append(pair)
    return grouped


def evaluate(evidence: Evidence, log=print) -> dict:
    """Every score kind (and the aligner's cost) at its own calibrated threshold: right transcripts accepted,
    wrong ones and non-speech refused on the unheard speakers, and right transcripts of every group accepted."""
    report = {kind: evidence.report(kind) for kind in evidence.nonspeech}
    log(f"{'score':34} {'threshold':>9} {'accepted':>8} {'refused':>8} {'refused':>10} {'AUC':>6}  accepted per group")
    log(f"{'':34} {'':9} {'correct':>8} {'wrong':>8} {'non-speech':>10}")
    for kind, values in report.items():
        groups = " ".join(f"{group.split('_')[0]}{'(unheard)' if group == HOLDOUT_GROUP else ''} {share:.3f}" for group, share in values["accepted_correct_per_group"].items())
        log(f"{kind:34} {values['threshold']:9.4f} {values['accepted_correct']:8.3f} {values['refused_wrong']:8.3f} {values['refused_nonspeech']:10.3f} {values['auc']:6.4f}  {groups}")
    good = [k for k in SIMPLEST_FIRST if k in report and report[k]["accepted_correct"] >= 0.95 and report[k]["refused_wrong"] >= 0.95 and report[k]["refused_nonspeech"] == 1.0]
    log(f"simplest score meeting >= 95% accepted, >= 95% refused and all non-speech refused: {good[0] if good else 'none'}")
    return report
