"""Studio vocoder: HiFi-GAN V1 on the fast vocoder's audio, re-analysed into a mel (the cascade).

The fast vocoder (runtime/vocoder.py) turns the engine's mel into audio; that audio is analysed again
into a log-mel in HiFi-GAN's own framing (reflect pad 384 samples, not centred, hop 256, n_fft 1024) and
the HiFi-GAN generator renders it. This cascade input measured better than the post-net's mel itself
(issue 27: the post-net's stationary streaks become steady tones; the fast vocoder's denoiser removes
them). Output sample p lines up with the fast vocoder's sample p, so both give the same length.

StudioStream has VocoderStream's push()/finish(). The generator is a stack of convolutions: an output
frame depends on `context` input frames on each side (less than its full receptive field, measured in
tests to keep streamed audio within -60 dB of a whole-utterance call), so each run takes `context`
frames before the new ones and holds back the last `context` frames until more mel (or the end) comes;
runs wait for enough new frames that the context stays a small share of their cost (MIN_RUN_FRAMES).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import RuntimeModelError
from .features import LOG_FLOOR, FeatureSettings, mel_filterbank
from .manifest import read_manifest
from .session import SessionOptions, load_openvino_session, load_session
from .vocoder import Vocoder

FORMAT_VERSION = 1
GRAPH_NAME = "generator.onnx"
PAD_SAMPLES = 384  # (n_fft - hop) / 2: HiFi-GAN's uncentred framing
# Mel frames of context on each side of a streamed run: the generator's measured receptive field is
# larger, but its outer taps are too weak to matter (tests/test_studio_vocoder.py: joined chunks stay
# within -60 dB of whole-utterance synthesis); each frame of context costs compute on every chunk.
CONTEXT_FRAMES = 12
# Chunks of the stream's first phrase after the first one (reader_runtime.stream.first_cuts): 20, 30, 45, 68 and
# 102 frames, each ready before the audio before it has played when runs take under 0.385 s per second.
RAMP_CHUNKS = 5
# Each run costs 2 * CONTEXT_FRAMES frames of context and a call, so the stream waits for at least half
# as many new frames as it has emitted (the ramp above passes) up to this many (4.6 s: context is then 6 %
# of the compute) before it runs. A caller that keeps little audio ahead (paced playback) waits less.
MIN_RUN_FRAMES = 400
# The generator's runtime: onnxruntime; READER_STUDIO_RUNTIME=openvino (the `studio` extra) opts in to
# OpenVINO's CPU runtime: RTF 0.37 against 0.47 alone, but a 3 s cold start and 5 GB peak memory in the
# whole engine (a compiled shape per run length), docs/vocoders.md. Without openvino: onnxruntime.
RUNTIME = os.environ.get("READER_STUDIO_RUNTIME", "onnxruntime")


@dataclass(frozen=True)
class StudioSpec:
    graph_file: str
    features: FeatureSettings
    receptive_field_frames: int  # the generator's, as the exporter measured it


class StudioVocoder:
    """Loads the generator beside an already loaded fast vocoder (its first stage)."""

    def __init__(self, session, spec: StudioSpec, fast: Vocoder, context_frames: int = CONTEXT_FRAMES):
        self._session = session  # an InferenceSession, or a Future of one still loading (load())
        self.spec = spec
        self.fast = fast
        self.context_frames = min(context_frames, spec.receptive_field_frames)
        settings = spec.features
        self.window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(settings.win_length) / settings.win_length)).astype(np.float32)
        self.filterbank = mel_filterbank(settings).T.copy()
        # Audio lags the mel by the fast vocoder's look-ahead, the analysis window's reach past its
        # frame (640 samples: 3 frames) and the generator's right context.
        self.lookahead_frames = fast.lookahead_frames + -(-(settings.n_fft - PAD_SAMPLES) // settings.hop_length) + self.context_frames
        self.ramp_chunks = RAMP_CHUNKS  # reader_runtime.stream: small chunks growing after the first, for playback

    @classmethod
    def load(cls, folder: str | Path, fast: Vocoder, options: SessionOptions = SessionOptions()) -> StudioVocoder:
        """The studio vocoder in `folder` on top of `fast`; bad files raise RuntimeModelError."""
        manifest = read_manifest(folder, "studio vocoder", FORMAT_VERSION)
        try:
            spec = StudioSpec(manifest.file("graph").name, FeatureSettings(**manifest.data["features"]), int(manifest.data["receptive_field_frames"]))
            pad = int(manifest.data["framing"]["pad_samples"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RuntimeModelError(f"studio vocoder manifest is unreadable: {manifest.path} ({exc})") from None
        if spec.features != fast.spec.features or pad != PAD_SAMPLES:
            raise RuntimeModelError(f"studio vocoder {manifest.path} expects other features or framing than the fast vocoder gives")
        vocoder = cls(Future(), spec, fast)
        # The session loads and runs once (first-run allocations) in a thread while the acoustic model and
        # the fast vocoder make the first chunk (onnxruntime releases the GIL): cold start. The manifest
        # check above has read every byte, so a corrupt file has failed already; a later error raises on use.
        threading.Thread(target=vocoder._load_and_warm, args=(manifest.file("graph"), options), name="studio-vocoder-load", daemon=True).start()
        return vocoder

    def _load_and_warm(self, path: Path, options: SessionOptions) -> None:
        try:
            session = (load_openvino_session(path, options) if RUNTIME == "openvino" else None) or load_session(path, options)
            silent = np.full((1, 2 * self.context_frames + 1, self.spec.features.n_mels), np.log(LOG_FLOOR), np.float32)
            session.run(None, {"log_mel": silent})
            self._session.set_result(session)
        except BaseException as exc:  # RuntimeModelError above all: raised again where the session is used
            self._session.set_exception(exc)

    @property
    def session(self):
        """The generator's onnxruntime session (waits for it while it loads)."""
        if isinstance(self._session, Future):
            self._session = self._session.result()
        return self._session

    def log_mel(self, padded_audio: np.ndarray) -> np.ndarray:
        """(frames, n_mels) of already padded audio: frame j is samples [j * hop, j * hop + n_fft)."""
        settings = self.spec.features
        frames = np.lib.stride_tricks.sliding_window_view(padded_audio, settings.n_fft)[:: settings.hop_length]
        spectra = np.fft.rfft(frames * self.window, axis=-1)
        magnitude = np.sqrt(spectra.real**2 + spectra.imag**2 + 1e-9).astype(np.float32)
        return np.log(np.maximum(magnitude @ self.filterbank, LOG_FLOOR))

    def generate(self, log_mel: np.ndarray) -> np.ndarray:
        """(T, n_mels) in HiFi-GAN's framing -> (T * hop,) float32 audio."""
        return self.session.run(None, {"log_mel": np.ascontiguousarray(log_mel, np.float32)[None]})[0][0]

    def stream(self, max_wait_seconds: float | None = None) -> StudioStream:
        """A stream whose steady-state runs wait for at most `max_wait_seconds` of new audio (None: MIN_RUN_FRAMES)."""
        frames = MIN_RUN_FRAMES if max_wait_seconds is None else int(max_wait_seconds * self.spec.features.sample_rate / self.spec.features.hop_length)
        return StudioStream(self, max(1, min(MIN_RUN_FRAMES, frames)))

    def synthesize(self, log_mel: np.ndarray) -> np.ndarray:
        """(T, n_mels) engine log-mel -> (T * hop,) float32 audio in one generator run (what streams equal)."""
        audio = self.fast.synthesize(log_mel)
        mode = "reflect" if audio.size > PAD_SAMPLES else "constant"
        return self.generate(self.log_mel(np.pad(audio, PAD_SAMPLES, mode=mode))) if audio.size else audio

    def real_time_factor(self, audio_frames: int = 43) -> float:
        """Seconds per second of audio for one streamed run of `audio_frames` new frames (with context
        on both sides), on this machine now: a warm-up that says whether playback can keep up."""
        silent = np.full((audio_frames + 2 * self.context_frames, self.spec.features.n_mels), np.log(LOG_FLOOR), np.float32)
        self.generate(silent[: 2 * self.context_frames + 1])  # first-run allocations are not the speed
        start = time.perf_counter()
        self.generate(silent)
        return (time.perf_counter() - start) / (audio_frames * self.spec.features.hop_length / self.spec.features.sample_rate)


class StudioStream:
    """Feed engine mel chunks with push(), then finish(); each call returns the audio that became final."""

    def __init__(self, vocoder: StudioVocoder, min_run_frames: int = MIN_RUN_FRAMES):
        self.vocoder = vocoder
        self.min_run_frames = min_run_frames
        self.fast = vocoder.fast.stream()
        self.hop, self.n_fft = vocoder.spec.features.hop_length, vocoder.spec.features.n_fft
        self.context = vocoder.context_frames
        self.padded = np.zeros(0, np.float32)  # fast audio with its start padding, from padded index padded_start on
        self.padded_start = 0
        self.started = False  # start padding added
        self.mel = np.zeros((0, vocoder.spec.features.n_mels), np.float32)  # analysed frames from mel_start on
        self.mel_start = 0
        self.frames_done = 0  # generator frames emitted
        self.finished = False

    @property
    def mel_frames(self) -> int:
        return self.mel_start + len(self.mel)

    def push(self, log_mel_chunk: np.ndarray) -> np.ndarray:
        if self.finished:
            raise ValueError("this vocoder stream is finished; start a new one")
        return self._advance(self.fast.push(log_mel_chunk), final=False)

    def finish(self) -> np.ndarray:
        """The rest of the audio: the last frames see the utterance's end, as a whole-utterance call does."""
        if self.finished:
            return np.zeros(0, np.float32)
        self.finished = True
        return self._advance(self.fast.finish(), final=True)

    def _advance(self, audio: np.ndarray, final: bool) -> np.ndarray:
        self._analyse(audio, final)
        ready = self.mel_frames if final else max(self.mel_frames - self.context, self.frames_done)
        if ready <= self.frames_done or (not final and ready - self.frames_done < min(self.min_run_frames, self.frames_done // 2)):
            return np.zeros(0, np.float32)
        first = max(0, self.frames_done - self.context)
        out = self.vocoder.generate(self.mel[first - self.mel_start :])
        samples = out[(self.frames_done - first) * self.hop : (ready - first) * self.hop]
        self.frames_done = ready
        keep_from = max(0, ready - self.context)
        self.mel = self.mel[keep_from - self.mel_start :]
        self.mel_start = keep_from
        return samples

    def _analyse(self, audio: np.ndarray, final: bool) -> None:
        """Append the fast audio and turn every frame whose window it now covers into a log-mel frame."""
        self.padded = np.concatenate([self.padded, np.asarray(audio, np.float32)])
        if not self.started and (self.padded.size > PAD_SAMPLES or (final and self.padded.size)):
            mode = "reflect" if self.padded.size > PAD_SAMPLES else "constant"
            self.padded = np.pad(self.padded, (PAD_SAMPLES, 0), mode=mode)
            self.started = True
        if not self.started:
            return
        if final:
            mode = "reflect" if self.padded.size + self.padded_start > 2 * PAD_SAMPLES else "constant"
            self.padded = np.pad(self.padded, (0, PAD_SAMPLES), mode=mode)
        first = self.mel_frames * self.hop - self.padded_start  # padded index of the next frame, in the buffer
        count = (self.padded.size - first - self.n_fft) // self.hop + 1
        if count > 0:
            self.mel = np.concatenate([self.mel, self.vocoder.log_mel(self.padded[first : first + (count - 1) * self.hop + self.n_fft])])
        drop = self.mel_frames * self.hop - self.padded_start
        self.padded = self.padded[drop:]
        self.padded_start += drop
