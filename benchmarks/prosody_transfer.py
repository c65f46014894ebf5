"""CopyCat prosody transfer (issues 6, 17): speaker similarity, leakage, prosody kept, intelligibility.

    python benchmarks/prosody_transfer.py [--models DIR] [--baseline-models DIR] [--limit N] [--espeak N] [--unseen N]
        -> benchmarks/results/prosody_transfer.{json,md}

Sources: the held-out test clips (splits.json) of each real speaker (the first N of each with
--limit); targets: every other voice of the model. For each model set (--models: the CopyCat model;
--baseline-models: the same training with a reference encoder that is not speaker-independent) and
each (source clip, target) pair, three systems:
- plain TTS: the transcript in the target voice, prosody predicted from text (the reference row);
- transfer: the source's aligned durations and CopyCat codes (reader.transfer, mode "codes");
- transfer + F0: also the source's F0 contour shifted to the target's register ("codes+f0").
Columns (means over pairs):
- sim target / sim source: resemblyzer cosine similarity of the output to the mean embedding of
  TARGET_REFERENCE_CLIPS real training recordings of the target speaker / of the source speaker;
- leakage: sim source minus that of plain TTS in the target voice (same model, same sentence);
- F0 corr: Pearson correlation of the output's log F0 (Praat) with the source recording's, frame by
  frame after mapping output frames onto source frames token by token (output durations from the
  model, source durations from the alignment), over frames voiced in both;
- dur corr: Pearson correlation of phoneme durations: the output's, measured by aligning the output
  audio with the main model's aligner (not the durations the model was told), against the source's;
- WER: Whisper tiny.en (benchmarks/prosody_selection.py's measure);
- NISQA-TTS: predicted naturalness MOS (benchmarks/speech_quality.py; weights read from ../shared/models/nisqa);
- refused: share of sources whose (correct) transcript the model's transcript check refuses (the phone
  check, runtime/phone_check.py, or the aligner's cost for a model without one): false refusals (the
  benchmark transfers every source, with force).
--espeak N adds espeak-ng readings of the first N test texts of each speaker as sources: an unseen,
synthetic voice (labelled so), with their own rows and reference embedding (espeak-ng readings of
training texts). The goals (issue 6): sim target of transfer >= that of plain TTS - 0.05; F0 corr >= 0.7; less
leakage than the baseline.
--unseen N adds real speakers no model has heard (issue 17): the first N clips of each test speaker of
speechocean762 (Zhang et al., "speechocean762: An Open-Source Non-native English Speech Corpus For
Pronunciation Assessment", Interspeech 2021, arXiv 2104.01378, by SpeechOcean and Xiaomi; the adult
subset of ../shared/data/speechocean762_adults), 4 male and 4 female adults reading accented English
at 16 kHz, into both voices, the source voice taken as the nearest known one (as for any user's
recording). Rows per source gender and target: accepted (share of correct transcripts the mismatch
check lets through without --force), wrong refused (share of sources refused when given another
clip's transcript), and the systems' columns as above, sim source being to the mean embedding of all
that speaker's test clips. Goals (issue 17): accepted and wrong refused >= 0.95; F0 corr >= 0.7 with
the default mode for male and female sources alike; sim target >= plain TTS - 0.05; NISQA-TTS of
the default mode >= plain TTS - 0.1 (also checked on the two-voice rows).
Needs `pip install -e '.[eval]'`. A model folder is either a models root (with acoustic/ and
vocoder/) or an acoustic folder (the vocoder then comes from reader.paths.models_dir()).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prosody_selection import measure  # benchmarks/ is on sys.path when run as a script
from reader.frontend.analysis import Analyzer
from reader.paths import data_dir, models_dir
from reader.transfer import DEFAULT_MODE, ProsodyTransfer, frame_f0, token_inputs, transcript_tokens
from reader_runtime.acoustic import AcousticModel
from reader_runtime.features import FeatureSettings, log_mel_spectrogram
from reader_runtime.session import SessionOptions
from reader_runtime.vocoder import Vocoder
from common import write_results  # benchmarks/ is on sys.path when run as a script
from speech_quality import nisqa_scores, write_wav  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CORPORA = ("ljspeech_longform", "kathleen_arctic")
UNSEEN_CORPUS = "speechocean762_adults"  # test speakers: no model trains on them
GOAL_ACCEPTED = GOAL_REFUSED = 0.95
TARGET_REFERENCE_CLIPS = 20
ESPEAK_VOICE = "en-us"
ESPEAK_SPEAKER = "espeak-ng"
SYSTEMS = {"plain TTS": None, "transfer": "codes", "transfer + F0": "codes+f0"}
DEFAULT_SYSTEM = next(name for name, mode in SYSTEMS.items() if mode == DEFAULT_MODE)
GOAL_SIMILARITY_MARGIN = 0.05
GOAL_F0_CORRELATION = 0.7
GOAL_NISQA_MARGIN = 0.1


@dataclass(frozen=True)
class Clip:
    clip_id: str
    speaker: str
    text: str
    path: Path
    synthetic: bool = False  # an espeak-ng rendering: a speaker no model has seen, and not a human
    unseen: bool = False  # a real speaker no model has heard: the source voice is the nearest known one


def corpus_clips(corpus: str, split: str) -> list[Clip]:
    ids = json.loads((data_dir() / "splits.json").read_text())[corpus][split]
    rows = {}
    for line in (data_dir() / corpus / "metadata.csv").read_text(encoding="utf-8").splitlines():
        if line.strip():
            clip_id, speaker, text = line.split("|", 2)
            rows[clip_id] = Clip(clip_id, speaker, text, data_dir() / corpus / "wavs" / f"{clip_id}.flac", unseen=corpus == UNSEEN_CORPUS)
    return [rows[i] for i in ids]


def first_per_speaker(clips: list[Clip], limit: int) -> list[Clip]:
    """The first `limit` clips of each speaker (all with 0), in the split's order."""
    taken: dict[str, int] = {}
    kept = []
    for clip in clips:
        if not limit or taken.get(clip.speaker, 0) < limit:
            taken[clip.speaker] = taken.get(clip.speaker, 0) + 1
            kept.append(clip)
    return kept


def speaker_genders(corpus: str) -> dict[str, str]:
    return {name: info["gender"] for name, info in json.loads((data_dir() / corpus / "speakers.json").read_text()).items()}


def espeak_clips(clips: list[Clip], folder: Path) -> list[Clip]:
    """The clips' texts read by espeak-ng (Debian package espeak-ng; en-us voice)."""
    folder.mkdir(parents=True, exist_ok=True)
    rendered = []
    for clip in clips:
        path = folder / f"espeak_{clip.clip_id}.wav"
        subprocess.run(["espeak-ng", "-v", ESPEAK_VOICE, "-w", str(path), clip.text], check=True)
        rendered.append(Clip(f"espeak_{clip.clip_id}", ESPEAK_SPEAKER, clip.text, path, synthetic=True))
    return rendered


@dataclass
class ModelSet:
    """One exported acoustic model with the engine stages around it."""

    name: str
    folder: Path
    transfer: ProsodyTransfer
    vocoder: Vocoder

    @classmethod
    def load(cls, name: str, folder: Path, analyzer: Analyzer) -> ModelSet:
        acoustic_folder = folder / "acoustic" if (folder / "acoustic" / "manifest.json").is_file() else folder
        vocoder_folder = folder / "vocoder" if (folder / "vocoder").is_dir() else models_dir() / "vocoder"
        options = SessionOptions(intra_op_threads=1, inter_op_threads=1)
        acoustic = AcousticModel.load(acoustic_folder, options)
        return cls(name, acoustic_folder, ProsodyTransfer(acoustic, analyzer), Vocoder.load(vocoder_folder, options))


class SpeakerSimilarity:
    """resemblyzer embeddings; each real speaker's reference is the normalised mean of the embeddings
    of its first TARGET_REFERENCE_CLIPS training recordings."""

    def __init__(self) -> None:
        import warnings

        with warnings.catch_warnings():  # webrtcvad's pkg_resources deprecation notice
            warnings.simplefilter("ignore", UserWarning)
            from resemblyzer import VoiceEncoder

        self.encoder = VoiceEncoder("cpu", verbose=False)
        self.references: dict[str, np.ndarray] = {}
        for corpus in CORPORA:
            self.add_reference(corpus_clips(corpus, "train")[:TARGET_REFERENCE_CLIPS])

    def add_reference(self, clips: list[Clip]) -> None:
        mean = np.mean([self.embed(*read_clip(c)) for c in clips], axis=0)
        self.references[clips[0].speaker.lower()] = mean / np.linalg.norm(mean)

    def embed(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        from resemblyzer import preprocess_wav

        return self.encoder.embed_utterance(preprocess_wav(np.asarray(samples, np.float32), source_sr=sample_rate))

    def to(self, embedding: np.ndarray, speaker: str) -> float:
        reference = self.references.get(speaker.lower())
        return float(embedding @ reference) if reference is not None else float("nan")


def read_clip(clip: Clip) -> tuple[np.ndarray, int]:
    import soundfile

    audio, rate = soundfile.read(str(clip.path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), rate


def warp_to_source(values: np.ndarray, output_durations: np.ndarray, source_durations: np.ndarray) -> np.ndarray:
    """Output frame values on the source's frame grid: each source frame takes the output value at
    the same relative position inside the same token (linear interpolation within the token)."""
    out_starts = np.cumsum(output_durations) - output_durations
    token = np.repeat(np.arange(source_durations.size), source_durations)
    position = np.arange(token.size) - np.repeat(np.cumsum(source_durations) - source_durations, source_durations)
    relative = (position + 0.5) / source_durations[token]
    index = out_starts[token] + relative * output_durations[token] - 0.5
    return np.interp(np.clip(index, 0, values.size - 1), np.arange(values.size), values)


def log_f0_correlation(output_log_f0: np.ndarray, source_f0: np.ndarray) -> float:
    """Pearson r of log F0 over the frames voiced in both (output NaN where unvoiced)."""
    both = np.isfinite(output_log_f0) & (source_f0 > 0)
    if both.sum() < 10:
        return float("nan")
    return float(np.corrcoef(output_log_f0[both], np.log(source_f0[both]))[0, 1])


def duration_correlation(output_durations: np.ndarray, source_durations: np.ndarray, phonemes: np.ndarray) -> float:
    return float(np.corrcoef(output_durations[phonemes], source_durations[phonemes])[0, 1])


@dataclass(frozen=True)
class Source:
    """A source clip, measured once: its audio at the model rate, token durations by the measuring
    aligner, and Praat F0 on its frame grid."""

    clip: Clip
    samples: np.ndarray
    durations: np.ndarray
    f0: np.ndarray
    alignment_cost: float

    @classmethod
    def measure(cls, clip: Clip, measurer: ModelSet) -> Source:
        transfer = measurer.transfer
        recording, inputs, _ = transfer.read_source(clip.path, clip.text)  # cut to its speech, as analyse_source reads it
        inputs = token_inputs(inputs)
        log_mel = log_mel_spectrogram(recording.samples, feature_settings(transfer.acoustic))
        # the reference durations come from the aligner trained with the decoder where there is one, so
        # that duration correlations stay comparable when the transcript-checking aligner changes
        alignment = (transfer.joint_aligner or transfer.aligner).align(inputs, log_mel)
        f0 = frame_f0(recording.samples, recording.sample_rate, transfer.acoustic.hop_length, len(log_mel))
        return cls(clip, recording.samples, alignment.durations, f0, alignment.cost)


def wrong_transcripts(clips: list[Clip]) -> dict[str, str]:
    """For each clip, the transcript of the next clip (in order, wrapping) whose text differs."""
    texts = [c.text for c in clips]
    return {c.clip_id: next((t for t in texts[i + 1 :] + texts[:i] if t != c.text), "") for i, c in enumerate(clips)}


def refuses(transfer: ProsodyTransfer, source: Source, text: str) -> bool:
    """Whether the mismatch check refuses `text` as the source's transcript (analyse_source without --force)."""
    return not transfer.read_source(source.clip.path, text)[2].matches


def transcript_check(transfer: ProsodyTransfer) -> str:
    """What decides whether a transcript matches, with its threshold (for the report)."""
    if transfer.phone_check is None:
        return f"alignment cost, threshold {transfer.aligner.cost_threshold}"
    return f"phone check {transfer.phone_check.score_kind}, threshold {transfer.phone_check.score_threshold}"


def feature_settings(acoustic: AcousticModel) -> FeatureSettings:
    return FeatureSettings(sample_rate=acoustic.sample_rate, hop_length=acoustic.hop_length)


def evaluate_pair(models: ModelSet, measurer: ModelSet, source: Source, target: str, similarity: SpeakerSimilarity, whisper, audio_dir: Path) -> dict[str, dict]:
    """Every system of one model set on one (source clip, target voice) pair; each output is written
    to `audio_dir` (its file name in the row's "wav", for NISQA-TTS afterwards)."""
    transfer = models.transfer
    acoustic = transfer.acoustic
    rate, hop = acoustic.sample_rate, acoustic.hop_length
    clip = source.clip
    # Every transcript here is right, so the mismatch check is overridden and its refusals counted
    # (false refusals); an espeak-ng voice is no known voice: the nearest is taken.
    known = None if clip.synthetic or clip.unseen else clip.speaker
    prosody = transfer.analyse_source(clip.path, clip.text, source_voice=known, force=True)
    refused = float(not prosody.transcript_fit.matches)
    rows = {}
    for system, mode in SYSTEMS.items():
        if mode is None:
            output = acoustic.synthesize(token_inputs(prosody.inputs), transfer.speaker(target))
        else:
            output = transfer.decode(transfer.plan(prosody, target, mode))
        audio = models.vocoder.synthesize(output.mel).astype(np.float32)
        embedding = similarity.embed(audio, rate)
        f0 = frame_f0(audio, rate, hop, len(output.mel))
        # this model's alignment of the source maps its output onto the source's frames
        warped = warp_to_source(np.where(f0 > 0, np.log(np.maximum(f0, 1e-3)), np.nan), output.durations, prosody.durations)
        heard = measurer.transfer.aligner.align(token_inputs(prosody.inputs), log_mel_spectrogram(audio, feature_settings(acoustic)))
        wav = f"{clip.clip_id}__{target}__{models.name}__{system.replace(' ', '_').replace('+', 'and')}.wav"
        write_wav(audio_dir / wav, audio, rate)
        rows[system] = {
            "sim_target": similarity.to(embedding, target),
            "sim_source": similarity.to(embedding, clip.speaker),
            "f0_corr": log_f0_correlation(warped, source.f0),
            "dur_corr": duration_correlation(heard.durations, source.durations, prosody.inputs.phoneme_mask),
            "wer": measure(audio.astype(np.float64), rate, clip.text, whisper).wer,
            "refused": refused,
            "wav": wav,
        }
    for row in rows.values():
        row["leakage"] = row["sim_source"] - rows["plain TTS"]["sim_source"]
    return rows


METRICS = ("sim_target", "sim_source", "leakage", "f0_corr", "dur_corr", "wer", "nisqa", "refused")


def mean_rows(rows: list[dict]) -> dict:
    return {key: round(float(np.nanmean([r[key] for r in rows])), 4) for key in METRICS if any(key in r for r in rows)} | {"pairs": len(rows)}


def summarise(pairs: list[dict], model_names: list[str]) -> dict:
    """Means per model set and system, over all pairs and per direction (source speaker -> target)."""
    summary: dict = {}
    for name in model_names:
        for system in SYSTEMS:
            rows = [p["systems"][name][system] | {"direction": f"{p['source_speaker']} -> {p['target']}"} for p in pairs if name in p["systems"]]
            entry = mean_rows(rows)
            entry["by_direction"] = {d: mean_rows([r for r in rows if r["direction"] == d]) for d in sorted({r["direction"] for r in rows})}
            summary.setdefault(name, {})[system] = entry
    return summary


def bootstrap_interval(values: np.ndarray, resamples: int = 2000) -> list[float]:
    """95 % bootstrap interval of the mean (pairs resampled with replacement)."""
    means = np.random.default_rng(0).choice(values, (resamples, values.size)).mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def nisqa_minus_plain_tts(pairs: list[dict], system: str) -> dict:
    """The CopyCat system's NISQA-TTS minus plain TTS's, per pair (same text, same target voice): mean and
    bootstrap interval. A clip's score swings by half a point or more with its text, so a margin of 0.1
    between group means of a few dozen pairs is within the noise: the interval says how far."""
    differences = np.array([p["systems"]["copycat"][system]["nisqa"] - p["systems"]["copycat"]["plain TTS"]["nisqa"] for p in pairs])
    return {"mean": round(float(differences.mean()), 4), "ci95": bootstrap_interval(differences)}


def goals(summary: dict, pairs: list[dict]) -> dict:
    """The issue's three goals, for each transfer system of the CopyCat model, the NISQA-TTS one with its
    paired difference; the leakage comparison with the paired difference per sentence and its bootstrap
    interval (the two models hear the same sources), since the leakage figures are small."""
    copycat, result = summary["copycat"], {}
    for system in (name for name, mode in SYSTEMS.items() if mode):
        row = copycat[system]
        result[system] = {
            "sim_target_within_0.05_of_plain_tts": row["sim_target"] >= copycat["plain TTS"]["sim_target"] - GOAL_SIMILARITY_MARGIN,
            "f0_corr_at_least_0.7": row["f0_corr"] >= GOAL_F0_CORRELATION,
            "nisqa_within_0.1_of_plain_tts": row["nisqa"] >= copycat["plain TTS"]["nisqa"] - GOAL_NISQA_MARGIN,
            "nisqa_minus_plain_tts": nisqa_minus_plain_tts(pairs, system),
        }
        if "baseline" in summary:
            differences = np.array([p["systems"]["copycat"][system]["leakage"] - p["systems"]["baseline"][system]["leakage"] for p in pairs])
            result[system]["less_leakage_than_baseline"] = row["leakage"] < summary["baseline"][system]["leakage"]
            result[system]["leakage_minus_baseline"] = {"mean": round(float(differences.mean()), 4), "ci95": bootstrap_interval(differences)}
    return result


def markdown(result: dict) -> str:
    lines = [
        (
            f"Sources: {result['sources']} held-out test clips ({', '.join(f'{k}: {v}' for k, v in result['sources_per_speaker'].items())}); "
            f"targets: every other voice; speaker references: mean resemblyzer embedding of {TARGET_REFERENCE_CLIPS} training clips per speaker."
        ),
        "",
        "| model | system | pairs | sim target | sim source | leakage | F0 corr | dur corr | WER | NISQA-TTS | refused |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    recordings = result["recordings"]
    lines.append(
        f"| (source recordings) | real speech | {recordings['pairs']} | {recordings['sim_target']} | {recordings['sim_source']} | | 1 | 1 | {recordings['wer']} | {recordings['nisqa']} | |"
    )
    for name, systems in result["summary"].items():
        for system, r in systems.items():
            lines.append(
                f"| {name} | {system} | {r['pairs']} | {r['sim_target']} | {r['sim_source']} | {r['leakage']} | {r['f0_corr']} | {r['dur_corr']} | {r['wer']} | {r['nisqa']} | {r['refused']} |"
            )
    lines += ["", "By direction (transfer, codes only):", "", "| model | direction | sim target | sim source | leakage | F0 corr | WER |", "|---|---|---|---|---|---|---|"]
    for name, systems in result["summary"].items():
        for direction, r in systems["transfer"]["by_direction"].items():
            lines.append(f"| {name} | {direction} | {r['sim_target']} | {r['sim_source']} | {r['leakage']} | {r['f0_corr']} | {r['wer']} |")
    lines += ["", f"Nearest known voice picked for the source (as for an unseen speaker): {result['nearest_voice_correct']} correct.", ""]
    if "synthetic_sources" in result:
        synthetic = result["synthetic_sources"]
        r = synthetic["recordings"]
        lines += [
            "",
            (
                f"Sources the model never heard, of a voice it does not know: {synthetic['sources']} readings by {synthetic['voice']}, "
                f"transferred with force (mean alignment cost {synthetic['alignment_cost_mean']}; {synthetic['summary']['copycat']['transfer']['refused']:.0%} "
                f"of them refused by the transcript check ({synthetic['transcript_check']}, calibrated on human speech) without --force); "
                "sim source is to the mean of espeak-ng readings of training texts."
            ),
            "",
            "| system | pairs | sim target | sim source | leakage | F0 corr | dur corr | WER | NISQA-TTS |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| (espeak-ng recordings) | {r['pairs']} | {r['sim_target']} | {r['sim_source']} | | 1 | 1 | {r['wer']} | {r['nisqa']} |",
            *[
                f"| {system} | {r['pairs']} | {r['sim_target']} | {r['sim_source']} | {r['leakage']} | {r['f0_corr']} | {r['dur_corr']} | {r['wer']} | {r['nisqa']} |"
                for system, r in synthetic["summary"]["copycat"].items()
            ],
            "",
        ]
    for system, checks in result["goals"].items():
        verdicts = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items() if isinstance(v, bool))
        lines.append(f"Goals (issues 6 and 17), copycat {system}: {verdicts}{paired_differences(checks)}")
    if "unseen_sources" in result:
        lines += unseen_markdown(result["unseen_sources"])
    return "\n".join(lines) + "\n"


def evaluate_sources(
    clips: list[Clip], model_sets: list[ModelSet], voices: list[str], similarity: SpeakerSimilarity, whisper, wrong_texts: dict[str, str] | None = None
) -> dict:
    """Every model set on every (source clip, other voice) pair, and the source recordings themselves;
    with `wrong_texts`, whether the main model refuses each source given another clip's transcript.
    NISQA-TTS scores every output and recording once all are made (one run of its predictor)."""
    with tempfile.TemporaryDirectory() as folder:
        result = render_sources(clips, model_sets, voices, similarity, whisper, wrong_texts, Path(folder))
        naturalness = nisqa_scores(Path(folder))
    for row in result["recordings"] + [r for p in result["pairs"] for rows in p["systems"].values() for r in rows.values()]:
        row["nisqa"] = naturalness[row.pop("wav")]
    return result


def render_sources(
    clips: list[Clip], model_sets: list[ModelSet], voices: list[str], similarity: SpeakerSimilarity, whisper, wrong_texts: dict[str, str] | None, audio_dir: Path
) -> dict:
    """evaluate_sources without NISQA-TTS: every output and recording written to `audio_dir`, its file in the row's "wav"."""
    main_models = model_sets[0].transfer
    pairs, recordings, costs, nearest_correct = [], [], [], 0
    for clip in clips:
        source = Source.measure(clip, model_sets[0])
        costs.append(source.alignment_cost)
        extra = {"wrong_refused": float(refuses(main_models, source, wrong_texts[clip.clip_id]))} if wrong_texts else {}
        recording = similarity.embed(source.samples, main_models.acoustic.sample_rate)
        log_mel = log_mel_spectrogram(source.samples, feature_settings(main_models.acoustic))
        nearest = main_models.nearest_speaker(log_mel, transcript_tokens(clip.text, main_models.analyzer), source.durations)
        nearest_correct += nearest.name.lower() == clip.speaker.lower()
        wer = measure(source.samples.astype(np.float64), main_models.acoustic.sample_rate, clip.text, whisper).wer
        write_wav(audio_dir / f"{clip.clip_id}.wav", source.samples, main_models.acoustic.sample_rate)
        for target in (v for v in voices if v.lower() != clip.speaker.lower()):
            recordings.append({"sim_target": similarity.to(recording, target), "sim_source": similarity.to(recording, clip.speaker), "wer": wer, "wav": f"{clip.clip_id}.wav"})
            systems = {models.name: evaluate_pair(models, model_sets[0], source, target, similarity, whisper, audio_dir) for models in model_sets}
            pairs.append({"clip": clip.clip_id, "source_speaker": clip.speaker, "target": target, "systems": systems} | extra)
            print(f"{clip.clip_id} -> {target}: " + "; ".join(
                f"{name} {system}: sim {r['sim_target']:.3f}/{r['sim_source']:.3f} f0 {r['f0_corr']:.2f}"
                for name, rows in systems.items() for system, r in rows.items()
            ), flush=True)  # fmt: skip
    return {"pairs": pairs, "recordings": recordings, "alignment_costs": costs, "nearest_correct": nearest_correct}


def unseen_summary(pairs: list[dict], genders: dict[str, str], model_names: list[str]) -> dict:
    """Per source gender (male, female) and target voice: acceptance of the correct transcripts, refusal
    of wrong ones, and each model set's systems (means over pairs)."""
    groups = {}
    for gender, label in (("m", "male"), ("f", "female")):
        for target in sorted({p["target"] for p in pairs}):
            chosen = [p for p in pairs if genders[p["source_speaker"]] == gender and p["target"] == target]
            for pair in chosen:
                pair["group"] = f"{label} -> {target}"
            if chosen:
                groups[f"{label} -> {target}"] = {
                    "pairs": len(chosen),
                    "speakers": len({p["source_speaker"] for p in chosen}),
                    "accepted": round(1 - float(np.mean([p["systems"][model_names[0]]["transfer"]["refused"] for p in chosen])), 4),
                    "wrong_refused": round(float(np.mean([p["wrong_refused"] for p in chosen])), 4),
                    "systems": summarise(chosen, model_names),
                }
    return groups


def paired_differences(checks: dict) -> str:
    """The goals' paired differences (mean and 95 % interval), for the markdown."""
    labels = {"nisqa_minus_plain_tts": "NISQA-TTS minus plain TTS's", "leakage_minus_baseline": "leakage minus baseline's"}
    parts = [f"{label} per sentence: {checks[key]['mean']}, 95 % interval {checks[key]['ci95']}" for key, label in labels.items() if key in checks]
    return f" ({'; '.join(parts)})" if parts else ""


def unseen_goals(groups: dict, pairs: list[dict]) -> dict:
    """Issue 17's goals, per group, for the CopyCat model's default mode (transfer + F0); the NISQA-TTS
    one also over all unseen pairs together (every group's interval is wide)."""
    result = {}
    for name, group in groups.items():
        systems = group["systems"]["copycat"]
        chosen = [p for p in pairs if p["group"] == name]
        result[name] = {
            f"accepted_at_least_{GOAL_ACCEPTED}": group["accepted"] >= GOAL_ACCEPTED,
            f"wrong_refused_at_least_{GOAL_REFUSED}": group["wrong_refused"] >= GOAL_REFUSED,
            "f0_corr_at_least_0.7": systems[DEFAULT_SYSTEM]["f0_corr"] >= GOAL_F0_CORRELATION,
            "sim_target_within_0.05_of_plain_tts": systems[DEFAULT_SYSTEM]["sim_target"] >= systems["plain TTS"]["sim_target"] - GOAL_SIMILARITY_MARGIN,
            "nisqa_within_0.1_of_plain_tts": systems[DEFAULT_SYSTEM]["nisqa"] >= systems["plain TTS"]["nisqa"] - GOAL_NISQA_MARGIN,
            "nisqa_minus_plain_tts": nisqa_minus_plain_tts(chosen, DEFAULT_SYSTEM),
        }
    result["all unseen pairs"] = {"nisqa_minus_plain_tts": nisqa_minus_plain_tts(pairs, DEFAULT_SYSTEM)}
    return result


def unseen_markdown(unseen: dict) -> list[str]:
    lines = [
        "",
        (
            f"Real speakers no model has heard: {unseen['sources']} speechocean762 test clips ({unseen['speakers']} speakers; Zhang et al. 2021), "
            f"source voice the nearest known one; accepted: correct transcripts let through without --force ({unseen['transcript_check']}); "
            "wrong refused: sources refused when given another clip's transcript."
        ),
        "",
        "| source -> target | model | system | pairs | accepted | wrong refused | sim target | sim source | leakage | F0 corr | dur corr | WER | NISQA-TTS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for group_name, group in unseen["groups"].items():
        for name, systems in group["systems"].items():
            for system, r in systems.items():
                lines.append(
                    f"| {group_name} | {name} | {system} | {r['pairs']} | {group['accepted']} | {group['wrong_refused']} | {r['sim_target']} | "
                    f"{r['sim_source']} | {r['leakage']} | {r['f0_corr']} | {r['dur_corr']} | {r['wer']} | {r['nisqa']} |"
                )
    lines.append("")
    for group_name, checks in unseen["goals"].items():
        verdicts = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items() if isinstance(v, bool))
        lines.append(" ".join(filter(None, [f"Goals (issue 17), {group_name}, copycat {DEFAULT_SYSTEM}:", verdicts])) + paired_differences(checks))
    return lines


def model_description(models: ModelSet) -> dict:
    manifest = models.transfer.acoustic.manifest
    return {
        "folder": str(models.folder),
        "text_to_mel_sha256": manifest["files"]["text_to_mel"]["sha256"][:12],
        "steps": manifest["training"]["steps"],
        "prosody_code_dim": manifest["prosody_code_dim"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="the CopyCat model: a models folder or an acoustic folder (default: reader.paths.models_dir())")
    parser.add_argument("--baseline-models", help="the baseline (not speaker-independent reference encoder), same forms")
    parser.add_argument("--limit", type=int, default=0, help="only the first N test clips of each speaker (0: all 50)")
    parser.add_argument("--espeak", type=int, default=0, help="also N espeak-ng readings of each speaker's test texts as sources (synthetic, unseen voice)")
    parser.add_argument("--unseen", type=int, help="also the first N clips of each speechocean762 test speaker as sources (real, unseen voices; 0: all)")
    parser.add_argument("--out", default=str(RESULTS / "prosody_transfer"), help="output path without suffix")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started = time.perf_counter()

    from reader.training.pause_labels import load_whisper_model

    analyzer = Analyzer()
    model_sets = [ModelSet.load("copycat", Path(args.models) if args.models else models_dir(), analyzer)]
    if args.baseline_models:
        model_sets.append(ModelSet.load("baseline", Path(args.baseline_models), analyzer))
    main_models = model_sets[0]
    similarity = SpeakerSimilarity()
    whisper = load_whisper_model()
    voices = [s.name for s in main_models.transfer.acoustic.speakers]

    clips = [c for corpus in CORPORA for c in corpus_clips(corpus, "test")[: args.limit or None]]
    real = evaluate_sources(clips, model_sets, voices, similarity, whisper)
    summary = summarise(real["pairs"], [m.name for m in model_sets])
    result = {
        "models": {m.name: model_description(m) for m in model_sets},
        "sources": len(clips),
        "sources_per_speaker": {s: sum(c.speaker == s for c in clips) for s in sorted({c.speaker for c in clips})},
        "nearest_voice_correct": f"{real['nearest_correct']}/{len(clips)}",
        "recordings": mean_rows(real["recordings"]),
        "summary": summary,
        "goals": goals(summary, real["pairs"]),
        "pairs": real["pairs"],
    }
    if args.espeak:
        with tempfile.TemporaryDirectory() as folder:
            references = [c for corpus in CORPORA for c in corpus_clips(corpus, "train")[: TARGET_REFERENCE_CLIPS // len(CORPORA)]]
            similarity.add_reference(espeak_clips(references, Path(folder) / "reference"))
            sources = espeak_clips([c for corpus in CORPORA for c in corpus_clips(corpus, "test")[: args.espeak]], Path(folder) / "sources")
            synthetic = evaluate_sources(sources, model_sets[:1], voices, similarity, whisper)
        result["synthetic_sources"] = {
            "sources": len(sources),
            "voice": f"espeak-ng {ESPEAK_VOICE} (synthetic)",
            "recordings": mean_rows(synthetic["recordings"]),
            "alignment_cost_mean": round(float(np.mean(synthetic["alignment_costs"])), 3),
            "cost_threshold": model_sets[0].transfer.aligner.cost_threshold,
            "transcript_check": transcript_check(model_sets[0].transfer),
            "summary": summarise(synthetic["pairs"], ["copycat"]),
            "pairs": synthetic["pairs"],
        }
    if args.unseen is not None:
        unseen_clips = first_per_speaker(corpus_clips(UNSEEN_CORPUS, "test"), args.unseen)
        for speaker in sorted({c.speaker for c in unseen_clips}):
            similarity.add_reference([c for c in corpus_clips(UNSEEN_CORPUS, "test") if c.speaker == speaker])
        unseen = evaluate_sources(unseen_clips, model_sets, voices, similarity, whisper, wrong_transcripts(unseen_clips))
        groups = unseen_summary(unseen["pairs"], speaker_genders(UNSEEN_CORPUS), [m.name for m in model_sets])
        result["unseen_sources"] = {
            "sources": len(unseen_clips),
            "speakers": len({c.speaker for c in unseen_clips}),
            "cost_threshold": main_models.transfer.aligner.cost_threshold,
            "transcript_check": transcript_check(main_models.transfer),
            "alignment_cost_mean": round(float(np.mean(unseen["alignment_costs"])), 3),
            "groups": groups,
            "goals": unseen_goals(groups, unseen["pairs"]),
            "pairs": unseen["pairs"],
        }
    result["seconds"] = round(time.perf_counter() - started, 1)
    write_results(Path(args.out), result, markdown(result))


if __name__ == "__main__":
    sys.exit(main())
