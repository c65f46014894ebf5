"""Prosody transfer (CopyCat, Karlapati et al. 2020): a recording's prosody, phoneme by phoneme, in another voice.

    source file -> SourceRecording (reader.transfer_source: checked, mono, at the model's rate)
    -> log-mel and the transcript's tokens -> forced alignment (durations)
    -> transcript check (reader_runtime.phone_check, or the aligner's cost for a model without a recogniser)
    -> source speaker (named, or the known voice that reconstructs the recording best)
    -> per-token CopyCat codes given the SOURCE speaker (what is left after its own habits)
    -> a plan: the target voice with the source's durations, codes (and F0, in the target's register),
       whose request() the engine renders as any other (Reader.stream_requests).

Only numpy, soundfile, soxr, Praat (praat-parselmouth) and onnxruntime: no torch. The measurements
behind each choice: docs/transfer.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import ModelError, ReaderError
from .model_inputs import BREAK_IDS, ModelInputs, token_inputs, transcript_to_inputs
from .transfer_source import SourceRecording, load_source, source_doubts, source_token_log_f0, speech_only

if TYPE_CHECKING:  # runtime.* loads onnxruntime: imported where used, so `reader --help` stays quick
    from reader_runtime.acoustic import AcousticOutput, Speaker, TokenInputs
    from reader_runtime.stream import SynthesisRequest

# A recording the decoder reconstructs this well (mean |log-mel error|) is in one of its own voices.
KNOWN_VOICE_RECONSTRUCTION_ERROR = 0.85
# codes: CopyCat's codes and durations; codes+f0 adds the source's F0 in the target's register (the
# default: it measured better, docs/transfer.md#modes).
MODES = ("codes", "codes+f0")
# For a voice the decoder does not know, each phoneme gets at least 1/this of the target's own reading
# at the source's pace (accented sources squeeze some to a frame or two; docs/transfer.md#squeezed-phonemes).
SQUEEZED_PHONEME_FACTOR = 2.0
# A source pause this long at a boundary with no or a minor break is planned as a major break
# (docs/transfer.md#source-pauses).
SOURCE_PAUSE_SECONDS = 0.2
SOURCE_PAUSE_LEVEL = 2  # model_inputs.BREAK_LEVEL_NAMES: major
DEFAULT_MODE = "codes+f0"


def voice_label(speaker: Speaker) -> str:
    return f"{speaker.name} (synthetic)" if speaker.synthetic else speaker.name


def transcript_tokens(text: str, analyzer) -> ModelInputs:
    """The transcript as the acoustic model's tokens (the reader's normalisation, parser, lexicon, G2P);
    several sentences make one sequence, as a training clip does."""
    if not text or not text.strip():
        raise ReaderError("the transcript is empty: give what is said in the recording with --text")
    inputs = transcript_to_inputs(text, analyzer)
    if not np.any(~inputs.boundary_mask[1:]):
        raise ReaderError(f"nothing speakable in the transcript {text[:60]!r}")
    return inputs


def without_squeezed_phonemes(durations: np.ndarray, target_durations: np.ndarray, phonemes: np.ndarray) -> np.ndarray:
    """(tokens,) int64 `durations` with each phoneme lengthened, where shorter, to the pace of the source
    (its median ratio to `target_durations`, the target's own reading) / SQUEEZED_PHONEME_FACTOR times its
    target duration; other tokens, and longer phonemes, kept."""
    if not phonemes.any():
        return durations
    reference = np.maximum(target_durations, 1).astype(np.float64)
    pace = np.median(durations[phonemes] / reference[phonemes])
    floor = np.round(pace / SQUEEZED_PHONEME_FACTOR * reference).astype(np.int64)
    return np.where(phonemes, np.maximum(durations, floor), durations).astype(np.int64)


def with_source_pauses(inputs: ModelInputs, durations: np.ndarray, pause_frames: float) -> ModelInputs:
    """`inputs` with every word boundary held `pause_frames` or longer raised to SOURCE_PAUSE_LEVEL (the
    boundary token's symbol and the break level of its word's tokens); stronger breaks kept."""
    raised = inputs.boundary_mask & (durations >= pause_frames) & (inputs.break_ids - 1 < SOURCE_PAUSE_LEVEL)
    raised[-1] = False  # the sentence's own end
    if not raised.any():
        return inputs
    words = inputs.word_indices[np.flatnonzero(raised) - 1]  # the word each raised boundary follows
    break_ids = np.where(raised | np.isin(inputs.word_indices, words), SOURCE_PAUSE_LEVEL + 1, inputs.break_ids)
    symbol_ids = np.where(raised, BREAK_IDS[SOURCE_PAUSE_LEVEL], inputs.symbol_ids)
    return replace(inputs, symbol_ids=symbol_ids.astype(np.int64), break_ids=break_ids.astype(np.int64))


def in_target_register(source_log_f0: np.ndarray, target_f0_hz: np.ndarray, vowels: np.ndarray) -> np.ndarray:
    """Source token F0 (Hz) shifted in log frequency so that its mean over the vowels equals the mean
    of `target_f0_hz` (the target voice reading this utterance from text alone): the source's
    intervals at the target's pitch."""
    shift = np.mean(np.log(np.maximum(target_f0_hz[vowels], 1.0))) - np.mean(source_log_f0[vowels])
    return np.exp(source_log_f0 + shift).astype(np.float32)


@dataclass(frozen=True)
class TranscriptFit:
    """The transcript check's verdict on (recording, transcript): a score, higher = worse fit, and its calibrated limit."""

    measure: str  # what the score is, for messages ("phone check ctc_gap", "alignment cost")
    score: float
    threshold: float
    speech_frames: tuple[int, int] | None = None  # log-mel frames from the first phone heard to the last (phone check only)

    @property
    def matches(self) -> bool:
        return self.score <= self.threshold

    def describe(self) -> str:
        return f"{self.measure} {self.score:.2f} {'<=' if self.matches else '>'} {self.threshold:.2f}"


@dataclass(frozen=True)
class SourceProsody:
    """What is taken from the source: per-token durations (frames), CopyCat codes and log F0."""

    inputs: ModelInputs
    durations: np.ndarray  # (tokens,) int64
    codes: np.ndarray  # (tokens, code_dim) float32
    log_f0: np.ndarray  # (tokens,) float32, all NaN when Praat heard no voicing
    source_speaker: Speaker  # whose identity the codes were computed with
    source_speaker_chosen: bool  # True: nearest known voice (not named by the user)
    transcript_fit: TranscriptFit  # how well the transcript fits the recording (refused above its threshold unless forced)
    known_voice: bool = True  # the decoder reconstructs the recording as one of its own voices (decoder_fit)
    doubts: tuple[str, ...] = ()  # source_doubts(): transferred, but worth a warning


@dataclass(frozen=True)
class TransferPlan:
    """One decodable utterance: the target voice and every override for text_to_mel."""

    prosody: SourceProsody
    target: Speaker
    mode: str
    inputs: ModelInputs  # the transcript's tokens, with the source's pauses as major breaks
    durations: np.ndarray  # (tokens,) int64 frames: the source's (squeezed phonemes lengthened for a voice the decoder does not know)
    f0_override: np.ndarray  # (tokens,) Hz, 0 = predict
    prosody_codes: np.ndarray | None  # (tokens, code_dim), or None: the decoder predicts its own

    def notes(self) -> list[str]:
        """What the user should know about this transfer (the command line prints them on stderr)."""
        prosody, notes = self.prosody, []
        if prosody.source_speaker_chosen:
            notes.append(f"source voice taken as {voice_label(prosody.source_speaker)}, the nearest known voice (name it with --source-voice)")
        if not prosody.transcript_fit.matches:
            notes.append(f"warning: the transcript does not seem to match the recording ({prosody.transcript_fit.describe()}); transferred anyway")
        notes += [f"warning: {doubt}" for doubt in prosody.doubts]
        if self.prosody_codes is None and self.mode != "codes":
            notes.append("the source voice is unlike the model's voices: its timing and melody are transferred, the finer prosody is the target voice's own")
        if self.target.synthetic:
            notes.append(f"target voice {voice_label(self.target)} is a synthetic training voice")
        return notes

    def request(self) -> SynthesisRequest:
        """The reader_runtime.stream request (one utterance: it is aligned and decoded as one)."""
        from reader_runtime.stream import SynthesisRequest

        inputs = self.inputs
        levels = np.where(inputs.boundary_mask, inputs.break_ids - 1, -1)  # break level at boundary tokens
        return SynthesisRequest(
            token_inputs(inputs), inputs.word_indices, levels, self.durations.astype(np.float32), self.target, self.target.centroid, 1.0, self,
            prosody_codes=self.prosody_codes, f0_override=self.f0_override,
        )  # fmt: skip


class ProsodyTransfer:
    """The transfer stages over an acoustic model (with its aligner and CopyCat encoder) and the front
    end's analyzer (Reader.prosody_transfer())."""

    def __init__(self, acoustic, analyzer) -> None:
        from reader_runtime.aligner import RuntimeAligner
        from reader_runtime.errors import RuntimeModelError
        from reader_runtime.phone_check import RuntimePhoneCheck

        self.acoustic = acoustic
        self.analyzer = analyzer
        if "copycat_encoder" not in acoustic.manifest["files"]:
            raise ModelError(f"acoustic model {acoustic.folder} has no CopyCat encoder: re-export it")
        try:
            # The fine-tuned aligner gives the durations (and its cost where the score kind adds it); the
            # joint aligner, trained with the decoder, reads a known voice in its own convention (decoder_fit).
            self.aligner = RuntimeAligner(acoustic)
            self.joint_aligner = RuntimeAligner(acoustic, "joint_aligner") if "joint_aligner" in acoustic.manifest.get("files", {}) else None
            # The phone recogniser decides whether the transcript matches (docs/phone-check.md); a model
            # exported before it (the transfer baseline) keeps the aligner's cost.
            has_phone_check = "phone_check" in acoustic.manifest or "phone_recognizer" in acoustic.manifest.get("files", {})
            self.phone_check = RuntimePhoneCheck(acoustic) if has_phone_check else None
            acoustic.encoder("copycat_encoder")
        except RuntimeModelError as exc:
            raise ModelError(str(exc)) from None

    # -- stages ---------------------------------------------------------------------------------

    def transcript_fit(self, tokens: TokenInputs, log_mel: np.ndarray) -> TranscriptFit:
        """How well the transcript's tokens fit the recording's log-mel: the phone check's score, or the
        aligner's cost of them for a model without a phone recogniser."""
        needs_cost = self.phone_check is None or self.phone_check.needs_alignment_cost
        alignment_cost = self.aligner.align(tokens, log_mel).cost if needs_cost else None
        if self.phone_check is None:
            return TranscriptFit("alignment cost", alignment_cost, self.aligner.cost_threshold)
        check = self.phone_check.check(tokens, log_mel, alignment_cost)
        return TranscriptFit(f"phone check {check.score_kind}", check.score, check.score_threshold, check.speech_frames)

    def read_source(self, source: str | Path, text: str) -> tuple[SourceRecording, ModelInputs, TranscriptFit]:
        """The source recording, cut to its speech where the recogniser heard phones, its transcript's
        tokens, and the transcript check's verdict (on the whole recording, as it was calibrated)."""
        from reader_runtime.features import FeatureSettings, log_mel_spectrogram

        recording = load_source(source, self.acoustic.sample_rate)
        inputs = transcript_tokens(text, self.analyzer)
        settings = FeatureSettings(sample_rate=self.acoustic.sample_rate, hop_length=self.acoustic.hop_length)
        fit = self.transcript_fit(token_inputs(inputs), log_mel_spectrogram(recording.samples, settings))
        if fit.speech_frames is not None:
            recording = speech_only(recording, fit.speech_frames, self.acoustic.hop_length)
        return recording, inputs, fit

    def speaker(self, name: str) -> Speaker:
        from reader_runtime.errors import UnknownVoiceError

        try:
            return self.acoustic.speaker(name)
        except UnknownVoiceError as exc:
            raise ReaderError(str(exc)) from None

    def codes(self, log_mel: np.ndarray, inputs: ModelInputs, speaker: Speaker, durations: np.ndarray) -> np.ndarray:
        """(tokens, code_dim) CopyCat codes of the recording, computed as if spoken by `speaker`."""
        feeds = {
            "log_mel": np.asarray(log_mel, np.float32)[None],
            **token_inputs(inputs).feeds(),
            "speaker_id": np.asarray([speaker.id], np.int64),
            "durations": np.asarray(durations, np.int64)[None],
        }
        session = self.acoustic.encoder("copycat_encoder")
        # A reference encoder without speaker input (the transfer baseline) exports without speaker_id.
        (codes,) = session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})
        return codes[0]

    def reconstruction_error(self, log_mel: np.ndarray, inputs: ModelInputs, speaker: Speaker, durations: np.ndarray) -> float:
        """Mean |log-mel error| of decoding the recording's own codes and durations in `speaker`'s voice
        (the decoder's mel: the post-net adds detail that need not match the recording frame for frame)."""
        output = self.acoustic.synthesize(
            token_inputs(inputs), speaker, duration_override=durations.astype(np.float32), prosody_codes=self.codes(log_mel, inputs, speaker, durations), postnet=False
        )
        return float(np.mean(np.abs(output.mel - log_mel)))

    def decoder_fit(self, log_mel: np.ndarray, inputs: ModelInputs, speaker: Speaker, durations: np.ndarray) -> tuple[np.ndarray, bool]:
        """(the durations to decode with, whether the recording is in a voice the decoder knows).

        Known: the decoder reconstructs the recording, from its own codes, about as well as its own
        voices' clips (mean |log-mel error| <= KNOWN_VOICE_RECONSTRUCTION_ERROR). The durations are the
        joint aligner's for a known voice that it reconstructs better with, else the fine-tuned
        aligner's (each where it measured better: docs/transfer.md#which-aligner)."""
        error = self.reconstruction_error(log_mel, inputs, speaker, durations)
        if self.joint_aligner is not None:
            joint = self.joint_aligner.align(token_inputs(inputs), log_mel).durations
            joint_error = self.reconstruction_error(log_mel, inputs, speaker, joint)
            if joint_error <= KNOWN_VOICE_RECONSTRUCTION_ERROR and joint_error < error:
                return joint, True
        return durations, error <= KNOWN_VOICE_RECONSTRUCTION_ERROR

    def nearest_speaker(self, log_mel: np.ndarray, inputs: ModelInputs, durations: np.ndarray) -> Speaker:
        """For a recording of someone the model does not know: the known real voice whose decoder, fed
        the recording's codes and durations, reconstructs its mel best (the model's own measure of whose
        voice it is closest to; synthetic training voices are not candidates)."""
        candidates = [s for s in self.acoustic.speakers if not s.synthetic] or self.acoustic.speakers
        return min(candidates, key=lambda s: self.reconstruction_error(log_mel, inputs, s, durations))

    def analyse_source(self, source: str | Path, text: str, source_voice: str | None = None, force: bool = False) -> SourceProsody:
        """Load, align and encode the source recording (every check that can fail happens here, before
        any audio is written)."""
        from reader_runtime.features import FeatureSettings, log_mel_spectrogram

        recording, inputs, fit = self.read_source(source, text)
        settings = FeatureSettings(sample_rate=self.acoustic.sample_rate, hop_length=self.acoustic.hop_length)
        log_mel = log_mel_spectrogram(recording.samples, settings)
        alignment = self.aligner.align(token_inputs(inputs), log_mel)
        if not np.isfinite(alignment.cost):
            raise ReaderError(f"{recording.name} is too short ({recording.samples.size / recording.sample_rate:.2f} s of speech) for its transcript of {len(inputs)} sounds")
        doubts = source_doubts(recording)
        if not fit.matches and not force:
            if doubts:  # the likelier cause, said first
                raise ReaderError(f"{doubts[0]}; it does not match its transcript ({fit.describe()}): use a full-band recording, or --force to transfer anyway")
            raise ReaderError(
                f"the transcript does not match {recording.name} ({fit.describe()}): check the text; music, noise or speech in another language "
                "do not match either. Use --force to transfer anyway"
            )
        speaker = self.speaker(source_voice) if source_voice else self.nearest_speaker(log_mel, inputs, alignment.durations)
        durations, known_voice = self.decoder_fit(log_mel, inputs, speaker, alignment.durations)
        return SourceProsody(
            inputs=inputs,
            durations=durations,
            codes=self.codes(log_mel, inputs, speaker, durations),
            log_f0=source_token_log_f0(recording, durations, self.acoustic.hop_length),
            source_speaker=speaker,
            source_speaker_chosen=source_voice is None,
            transcript_fit=fit,
            known_voice=known_voice,
            doubts=doubts,
        )

    def plan(self, prosody: SourceProsody, target_voice: str, mode: str = DEFAULT_MODE) -> TransferPlan:
        """How to decode the source's prosody in `target_voice`."""
        if mode not in MODES:
            raise ReaderError(f"unknown prosody mode {mode!r}: use one of {', '.join(MODES)}")
        target = self.speaker(target_voice)
        inputs = prosody.inputs
        durations = prosody.durations
        if not prosody.known_voice:
            own_reading = self.acoustic.synthesize(token_inputs(inputs), target, postnet=False).durations
            durations = without_squeezed_phonemes(durations, own_reading, inputs.phoneme_mask)
        inputs = with_source_pauses(inputs, durations, SOURCE_PAUSE_SECONDS * self.acoustic.sample_rate / self.acoustic.hop_length)
        plan = TransferPlan(prosody, target, mode, inputs, durations, np.zeros(len(inputs), np.float32), prosody.codes)
        if mode == "codes":
            return plan
        vowels = inputs.stress_ids > 0
        if np.isnan(prosody.log_f0).any() or not vowels.any():
            return plan  # Praat heard no voicing: the codes alone carry the melody
        # The target's register from its own reading of the text: decoding with the source's codes
        # would carry the source's register into it (a male source pulled kathleen down to 132 Hz).
        register = self.acoustic.synthesize(token_inputs(inputs), target, duration_override=durations.astype(np.float32)).f0
        # Codes of a voice the decoder does not know carry its sound more than its prosody: only its
        # timing and melody are transferred (docs/transfer.md#unknown-voices).
        codes = prosody.codes if prosody.known_voice else None
        return replace(plan, f0_override=in_target_register(prosody.log_f0, register, vowels), prosody_codes=codes)

    def prepare(
        self, source: str | Path, text: str, target_voice: str, source_voice: str | None = None, mode: str | None = None, force: bool = False
    ) -> TransferPlan:
        """analyse_source + plan: every check that can fail, before any audio is made."""
        mode = mode or DEFAULT_MODE
        self.speaker(target_voice)  # an unknown target fails before the source is analysed
        return self.plan(self.analyse_source(source, text, source_voice, force), target_voice, mode)

    def decode(self, plan: TransferPlan) -> AcousticOutput:
        """The acoustic model's output for the plan (no vocoder): its request decoded as any other."""
        from reader_runtime.stream import decode

        return decode(self.acoustic, plan.request())
