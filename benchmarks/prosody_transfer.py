"""CopyCat prosody transfer (issues 6, 17): speaker similarity, leakage, prosody kept, intelligibility.

    python benchmarks/prosody_transfer.py [--models DIR] [--baseline-models DIR] [--limit N] [--espeak N] [--unseen N]
        -> benchmarks/results/prosody_transfer.{json,md}

Sources: each real speaker's held-out test clips (and with --espeak espeak-ng readings, with --unseen
speechocean762's unheard speakers); targets: every other voice. Systems: plain TTS, transfer (codes),
transfer + F0. Columns: similarity to target and source, leakage, F0 and duration correlation, WER,
NISQA-TTS, false refusals; the goals of issues 6 and 17 (prosody_transfer_report.py). Needs
`pip install -e '.[eval]'`. Details: docs/benchmark-methods.md#prosody-transfer.
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

from prosody_measures import measure  # benchmarks/ is on sys.path when run as a script
from reader.frontend.analysis import Analyzer
from reader.paths import data_dir, models_dir
from reader.model_inputs import token_inputs
from reader.transfer import ProsodyTransfer, transcript_tokens
from reader.transfer_source import frame_f0
from reader_runtime.acoustic import AcousticModel
from reader_runtime.features import FeatureSettings, log_mel_spectrogram
from reader_runtime.session import SessionOptions
from reader_runtime.vocoder import Vocoder
from common import write_results  # benchmarks/ is on sys.path when run as a script
from prosody_transfer_report import SYSTEMS, TARGET_REFERENCE_CLIPS, goals, markdown, mean_rows, summarise, unseen_goals, unseen_summary
from speech_quality import nisqa_scores, write_wav  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CORPORA = ("ljspeech_longform", "kathleen_arctic")
UNSEEN_CORPUS = "speechocean762_adults"  # test speakers: no model trains on them
ESPEAK_VOICE = "en-us"
ESPEAK_SPEAKER = "espeak-ng"


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
