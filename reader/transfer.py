"""Prosody transfer (CopyCat, Karlapati et al. 2020): a recording's prosody, phoneme by phoneme, in another voice.

    source file -> SourceRecording (checked, mono, resampled to the model's rate)
    -> log-mel (runtime.features, as in training) -> tokens of the transcript (the reader's front end)
    -> forced alignment (runtime.aligner: token durations)
    -> transcript check (runtime.phone_check: a phone recogniser's score of the transcript's phones,
       the manifest's score kind; the aligner's cost for a model exported without a recogniser)
    -> source speaker (the voice named, or the known voice that reconstructs the recording best)
    -> per-token prosody codes from the CopyCat reference encoder, given the SOURCE speaker (so the
       codes hold what is left after that speaker's own habits: the speaker-independent prosody)
    -> a plan: the target voice with the source's durations (for a voice the decoder does not know,
       phonemes squeezed far below the source's pace lengthened) and codes (optionally its F0, moved to the target's
       register), whose request() the engine renders as any other (Reader.stream_requests).

Only numpy, soundfile, soxr, Praat (praat-parselmouth, for the source's F0) and onnxruntime: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import ModelError, ReaderError
from .model_inputs import BREAK_IDS, ModelInputs, transcript_to_inputs

if TYPE_CHECKING:  # runtime.* loads onnxruntime: imported where used, so `reader --help` stays quick
    from reader_runtime.acoustic import AcousticOutput, Speaker, TokenInputs
    from reader_runtime.stream import SynthesisRequest

# Longer sources are refused: one alignment over the whole clip is quadratic in memory (frames x
# tokens) and a reading of that length has sentence breaks at which to split it.
MAX_SOURCE_SECONDS = 30.0
# Peak below this (-50 dBFS) is silence or room noise, not speech to take prosody from.
SILENT_PEAK = 10 ** (-50 / 20)
# The source is cut to its speech before it is aligned: from SPEECH_LEAD_SECONDS before the first phone
# the transcript check's recogniser hears to SPEECH_TAIL_SECONDS after its last. The training clips
# start within 0.1 s of speech, so the aligner never learned to give a long lead-in to <bos>: it held
# the first and last phonemes of speechocean762 clips (0.3-0.6 s of room tone, breaths and clicks either
# side) 9 and 3 times as long as the target voice's own reading (medians over the 8 speakers held out of
# training, 40 clips); cut here, 1.3 and 1.1 times. An energy threshold cut too little: breaths and
# clicks are as loud as a soft onset. The recogniser's phone frames fall inside their phones, hence
# the margins (0 and 0.1 s cut into the first and last phonemes: 0.7 and 0.6 times). On those speakers'
# codes+f0 transfers (48 clips into both voices; male -> LJ / male -> kathleen / female -> LJ / female ->
# kathleen) Whisper WER went from 0.09 / 0.10 / 0.10 / 0.06 to 0.07 / 0.05 / 0.05 / 0.09 and leakage
# towards the source (similarity to it above plain TTS's) from 0.02 / 0.02 / 0.04 / 0.03 to -0.01 / 0.01 /
# 0.01 / 0.01; NISQA-TTS moved 2.98 / 4.06 / 2.85 / 3.96 to 2.92 / 3.92 / 3.09 / 3.85. The two voices'
# own clips are cut too (their aligner held the silence on the same phonemes): on 20 valid clips of
# each, transferred into the other voice with the pause rule below, NISQA-TTS 3.88 / 3.32 (LJ -> kathleen
# / kathleen -> LJ) became 3.80 / 3.41 and WER 0.11 / 0.12 became 0.14 / 0.10.
SPEECH_LEAD_SECONDS = 0.05
SPEECH_TAIL_SECONDS = 0.2
# Source F0 in two passes (Hirst 2011; De Looze & Hirst 2008): a first Praat pass over a range wide
# enough for any adult voice, then a second inside this speaker's own range, from the first pass's
# quartiles: floor 0.75 x Q1, ceiling 1.5 x Q3. A fixed range that spans low male to high female lets
# Praat jump an octave in either direction; the speaker's own range leaves no room for that.
F0_WIDE_FLOOR_HZ = 50.0
F0_WIDE_CEILING_HZ = 700.0
F0_FLOOR_FROM_Q1 = 0.75
F0_CEILING_FROM_Q3 = 1.5
# A voiced frame this far (in octaves) from the median of the voiced frames around it is an octave
# error left after the second pass (a halving in creak, a doubling at a voice break): moved by one
# octave towards that median. The neighbourhood: this many frames either side (0.15 s at 86 frames/s).
OCTAVE_JUMP = 0.7
OCTAVE_NEIGHBOURHOOD_FRAMES = 13
# Speech keeps energy above 4 kHz (fricatives, breath): 20 to 40 dB under the band below it in the
# training voices and speechocean762 (30 clips each); audio that passed through an 8 kHz telephone
# path has none (80 to 90 dB under). Such a source still aligns, but the encoder's view of it is not
# what it learned from: transferred with a warning.
UPPER_BAND_HZ = 4000.0
NARROW_BAND_DB = -55.0
# A recording the decoder reconstructs (its own codes and the joint aligner's durations, mean |log-mel
# error|) this well is in one of its voices: 90% of the two voices' held-out clips are below 0.73, 90%
# of the unheard speechocean762 test clips above 0.96.
KNOWN_VOICE_RECONSTRUCTION_ERROR = 0.85
# How the source's prosody is applied: the codes and durations (CopyCat), or those plus the source's
# own F0 contour shifted to the target voice's register. codes+f0 is the default because it measured
# better (benchmarks/prosody_transfer.py, 40 held-out real clips): log-F0 correlation with the source
# 0.96 against 0.87 from the codes alone, at the same speaker similarity, leakage and WER; and 0.89
# against 0.07 on espeak-ng sources, a voice unlike the training speakers whose melody the codes miss.
MODES = ("codes", "codes+f0")
# The aligner squeezes some phonemes of a voice the decoder does not know (accented speech: a sound
# slurred or a boundary misplaced) to a frame or two, and the target voice then swallows them. Each
# phoneme is given at least 1/SQUEEZED_PHONEME_FACTOR of what the target voice's own reading of the text
# gives it, at the source's pace (the median ratio of the two over the phonemes); longer ones and pauses
# are kept. Chosen on the 8 speechocean762 speakers held out of every fine-tune (64 clips into both
# voices, benchmarks/prosody_transfer.py's measures): Whisper WER of codes+f0 transfers 0.190 / 0.116 /
# 0.170 / 0.110 (male -> LJ / male -> kathleen / female -> LJ / female -> kathleen) became 0.171 / 0.087 /
# 0.137 / 0.096 at the same duration correlation with the source (0.61-0.66), log-F0 correlation and
# similarity to the target. Clipping long phonemes as well (to within 1.7-2.5 x the pace) lowered WER
# further but took the duration correlation down to 0.38-0.60: held sounds are the source's timing.
SQUEEZED_PHONEME_FACTOR = 2.0
# A pause the source makes at a word boundary where the text has no break (or a minor one) is a phrase
# break of its reading: the decoder learned pauses at major breaks, and fills a <break:none> token held
# that long with sound (a smeared "was... more"). Such a boundary is planned as a major break. On the 8
# development speakers (48 clips into both voices, as above) NISQA-TTS of codes+f0 transfers moved
# 2.92 / 3.92 / 3.09 / 3.85 to 2.93 / 4.01 / 3.08 / 3.86, Whisper WER and the correlations unchanged
# (0.3 s: 2.94 / 3.92 / 3.11 / 3.85).
SOURCE_PAUSE_SECONDS = 0.2
SOURCE_PAUSE_LEVEL = 2  # model_inputs.BREAK_LEVEL_NAMES: major
DEFAULT_MODE = "codes+f0"


@dataclass(frozen=True)
class SourceRecording:
    samples: np.ndarray  # float32 mono at `sample_rate` (the model's)
    sample_rate: int
    name: str  # the file, for messages
    original_sample_rate: int


def load_source(path: str | Path, sample_rate: int) -> SourceRecording:
    """Read and check a source recording: audio, not silent, at most MAX_SOURCE_SECONDS; mono (channels
    averaged) and resampled to `sample_rate` (soxr)."""
    import soundfile
    import soxr

    path = Path(path)
    if path.is_dir():
        raise ReaderError(f"{path} is a folder, not a recording")
    if not path.is_file():
        raise ReaderError(f"source recording not found: {path}")
    try:
        audio, original_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception:  # soundfile raises LibsndfileError / RuntimeError / TypeError for non-audio
        raise ReaderError(f"{path} is not an audio file that can be read (use WAV, FLAC or OGG)") from None
    audio = audio.mean(axis=1)
    if audio.size == 0:
        raise ReaderError(f"{path} holds no audio")
    seconds = audio.size / original_rate
    if seconds > MAX_SOURCE_SECONDS:
        raise ReaderError(f"{path} is {seconds:.1f} s long; transfer takes at most {MAX_SOURCE_SECONDS:.0f} s: split it into sentences")
    if not np.all(np.isfinite(audio)) or np.max(np.abs(audio)) < SILENT_PEAK:
        raise ReaderError(f"{path} is silent (no sound above -50 dBFS)")
    if original_rate != sample_rate:
        audio = soxr.resample(audio, original_rate, sample_rate).astype(np.float32)
    return SourceRecording(audio, sample_rate, str(path), int(original_rate))


def speech_only(recording: SourceRecording, frames: tuple[int, int], hop_length: int) -> SourceRecording:
    """The recording from SPEECH_LEAD_SECONDS before log-mel frame frames[0] to SPEECH_TAIL_SECONDS
    after frame frames[1] (frame i centred on sample i * hop_length)."""
    rate = recording.sample_rate
    start = max(0, frames[0] * hop_length - round(SPEECH_LEAD_SECONDS * rate))
    end = min(recording.samples.size, frames[1] * hop_length + round(SPEECH_TAIL_SECONDS * rate))
    return replace(recording, samples=recording.samples[start:end])


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


def token_inputs(inputs: ModelInputs) -> TokenInputs:
    from reader_runtime.acoustic import TokenInputs

    return TokenInputs(inputs.symbol_ids, inputs.stress_ids, inputs.word_position_ids, inputs.break_ids)


def upper_band_db(samples: np.ndarray, sample_rate: int, n_fft: int = 1024) -> float:
    """Power at UPPER_BAND_HZ-8 kHz relative to 0-UPPER_BAND_HZ (dB), over the frames within 30 dB of the loudest."""
    if samples.size < n_fft:
        samples = np.pad(samples, (0, n_fft - samples.size))
    frames = np.lib.stride_tricks.sliding_window_view(samples, n_fft)[:: n_fft // 2] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    energy = power.sum(1)
    loud = power[energy >= energy.max() * 1e-3]
    frequencies = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    upper = loud[:, (frequencies >= UPPER_BAND_HZ) & (frequencies < 8000.0)].sum()
    lower = loud[:, frequencies < UPPER_BAND_HZ].sum()
    return float(10 * np.log10(max(upper, 1e-20) / max(lower, 1e-20)))


def source_doubts(recording: SourceRecording) -> tuple[str, ...]:
    """What makes a source doubtful though it can be transferred (said as warnings)."""
    if recording.original_sample_rate <= 2 * UPPER_BAND_HZ or upper_band_db(recording.samples, recording.sample_rate) < NARROW_BAND_DB:
        return (f"{recording.name} has no sound above {UPPER_BAND_HZ / 1000:.0f} kHz (telephone-band audio, or not speech), and the models learned from full-band speech",)
    return ()


def praat_f0(samples: np.ndarray, sample_rate: int, frame_rate: float, floor_hz: float, ceiling_hz: float):
    """Praat's autocorrelation pitch: (times in s, F0 in Hz with 0 where unvoiced)."""
    import parselmouth

    pitch = parselmouth.Sound(np.asarray(samples, np.float64), sample_rate).to_pitch_ac(
        time_step=1.0 / frame_rate, pitch_floor=floor_hz, pitch_ceiling=ceiling_hz
    )
    return pitch.xs(), pitch.selected_array["frequency"]


def speaker_pitch_range(f0_hz: np.ndarray) -> tuple[float, float]:
    """(floor, ceiling) Hz for the second pass, from the first pass's voiced quartiles."""
    q1, q3 = np.percentile(f0_hz[f0_hz > 0], [25, 75])
    return max(F0_WIDE_FLOOR_HZ, F0_FLOOR_FROM_Q1 * q1), min(F0_WIDE_CEILING_HZ, F0_CEILING_FROM_Q3 * q3)


def without_octave_jumps(f0_hz: np.ndarray) -> np.ndarray:
    """Voiced frames more than OCTAVE_JUMP octaves from the median of the voiced frames around them
    moved one octave towards it (0 = unvoiced, kept)."""
    voiced = np.flatnonzero(f0_hz > 0)
    octaves = np.log2(f0_hz[voiced])
    corrected = f0_hz.copy()
    half = OCTAVE_NEIGHBOURHOOD_FRAMES
    for k, frame in enumerate(voiced):
        # the voiced frames within `half` frames of this one, in time (not in index: pauses separate)
        near = octaves[np.searchsorted(voiced, frame - half) : np.searchsorted(voiced, frame + half, side="right")]
        offset = octaves[k] - np.median(near)
        if abs(offset) > OCTAVE_JUMP:
            corrected[frame] = f0_hz[frame] * 2.0 ** (-np.sign(offset))
    return corrected


def frame_f0(samples: np.ndarray, sample_rate: int, hop_length: int, n_frames: int) -> np.ndarray:
    """(n_frames,) F0 in Hz on the model's frame grid (runtime.features), 0 where unvoiced: Praat in
    two passes, the second within the speaker's own range, then octave jumps corrected."""
    from reader_runtime.features import FeatureSettings, f0_on_frame_grid

    settings = FeatureSettings(sample_rate=sample_rate, hop_length=hop_length)
    times, f0 = praat_f0(samples, sample_rate, settings.frame_rate, F0_WIDE_FLOOR_HZ, F0_WIDE_CEILING_HZ)
    if np.count_nonzero(f0) >= 4:  # enough voicing to estimate a range from
        times, f0 = praat_f0(samples, sample_rate, settings.frame_rate, *speaker_pitch_range(f0))
    return without_octave_jumps(f0_on_frame_grid(times, f0, n_frames, settings))


def source_token_log_f0(recording: SourceRecording, durations: np.ndarray, hop_length: int) -> np.ndarray:
    """(tokens,) mean log F0 (Hz) over each token's frames, unvoiced frames interpolated (as the
    model's pitch targets are built); all NaN if Praat finds no voicing in the clip."""
    return token_mean_log_f0(frame_f0(recording.samples, recording.sample_rate, hop_length, int(durations.sum())), durations)


def token_mean_log_f0(f0: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """(tokens,) mean log F0 over each token's frames of a (frames,) Hz track (0 = unvoiced, which is
    interpolated); all NaN when no frame is voiced."""
    from reader_runtime.features import continuous_log_f0

    if not np.any(f0 > 0):
        return np.full(durations.size, np.nan, np.float32)
    token_of_frame = np.repeat(np.arange(durations.size), durations)
    return (np.bincount(token_of_frame, continuous_log_f0(f0), minlength=durations.size) / np.maximum(durations, 1)).astype(np.float32)


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
        """The runtime.stream request (one utterance: it is aligned and decoded as one)."""
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
            # The aligner gives the durations (fine-tuned on three corpora for voices it never heard),
            # and its cost where the transcript check's score kind adds it; the joint aligner, where the model has one,
            # was trained with the decoder, whose durations it then reads in its own convention (see
            # decoder_fit).
            self.aligner = RuntimeAligner(acoustic)
            self.joint_aligner = RuntimeAligner(acoustic, "joint_aligner") if "joint_aligner" in acoustic.manifest.get("files", {}) else None
            # The phone recogniser decides whether the transcript matches where the model has one (a
            # softmax over every phoneme and blank, not only the sentence's own tokens; see
            # runtime/phone_check.py); a model exported before it (the transfer baseline) keeps the
            # aligner's cost.
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
        joint aligner's for a known voice that it reconstructs better with, else the aligner's.
        Measured: on 100 held-out clips of the two voices the fine-tuned aligner's durations raise the
        reconstruction error from 0.662 to 0.686 (worse on 81) and transfer WER from 0.096 to 0.135,
        while on unheard speakers they make transfers clearer (Whisper WER 0.49-0.68 -> 0.22-0.39) than
        the joint aligner's; this keeps each where it serves."""
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
        # Codes of a voice the decoder does not know carry that voice's sound more than its prosody
        # (an encoder trained on two voices): its timing and melody, measured directly, are
        # transferred, and the decoder predicts the finer prosody in the target voice. On the 8
        # speechocean762 speakers held out of the aligner's fine-tune (24 clips into both voices)
        # Whisper WER fell from 0.10-0.19 to 0.09-0.15 and similarity to the target rose 0.005-0.013,
        # at about the same log-F0 correlation with the source (0.89-0.92 before, 0.86-0.93 after).
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
