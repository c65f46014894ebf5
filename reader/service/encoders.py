"""Streaming audio encoders for the speech endpoint: float samples in, bytes of the chosen format out.

Every format is 16-bit mono at 24 kHz, as OpenAI's speech API sends it (soxr's streaming resampler
from the model's rate). pcm is the raw samples, wav a RIFF header of unknown length before them, and
mp3, opus (in Ogg), aac (ADTS) and flac are encoded in process by PyAV (FFmpeg's codecs), chunk by
chunk, so each phrase leaves the server as soon as it is made.
"""

from __future__ import annotations

import struct

import numpy as np
import soxr

from ..io.sinks import to_pcm16

OUTPUT_RATE = 24_000
MEDIA_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
RESPONSE_FORMATS = tuple(MEDIA_TYPES)
# format -> (PyAV container, codec, bit rate, muxer options): Ogg pages are flushed every 20 ms, not every second.
_CODECS = {
    "mp3": ("mp3", "libmp3lame", 64_000, {}),
    "opus": ("ogg", "libopus", 32_000, {"page_duration": "20000"}),
    "aac": ("adts", "aac", 64_000, {}),
    "flac": ("flac", "flac", None, {}),
}


class _Buffer:
    """A write-only file object that PyAV muxes into; take() hands over what was written since."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data) -> int:
        self.data += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self.data)
        self.data.clear()
        return out


class StreamEncoder:
    """Encodes one stream: encode(samples) -> bytes ready to send (may be b""), finish() -> the rest."""

    def __init__(self, response_format: str, input_rate: int) -> None:
        if response_format not in MEDIA_TYPES:
            raise ValueError(f"unknown response_format {response_format!r}")
        self.format = response_format
        self.media_type = MEDIA_TYPES[response_format]
        self._resampler = soxr.ResampleStream(input_rate, OUTPUT_RATE, 1, dtype="float32") if input_rate != OUTPUT_RATE else None
        self._header = response_format == "wav"
        self._container = self._stream = self._buffer = None
        if response_format in _CODECS:
            import av

            container_format, codec, bit_rate, options = _CODECS[response_format]
            self._buffer = _Buffer()
            self._container = av.open(self._buffer, mode="w", format=container_format, options=options)
            self._stream = self._container.add_stream(codec, rate=OUTPUT_RATE, layout="mono")
            if bit_rate:
                self._stream.bit_rate = bit_rate

    def encode(self, samples: np.ndarray) -> bytes:
        return self._encode(self._resample(samples, last=False))

    def finish(self) -> bytes:
        pcm = self._encode(self._resample(np.zeros(0, np.float32), last=True))
        if self._container is None:
            return pcm
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return pcm + self._buffer.take()

    def close(self) -> None:
        """Release the codec without finishing (the client went away)."""
        if self._container is not None:
            self._container.close()

    def _resample(self, samples: np.ndarray, last: bool) -> np.ndarray:
        samples = np.asarray(samples, np.float32)
        return self._resampler.resample_chunk(samples, last=last) if self._resampler is not None else samples

    def _encode(self, samples: np.ndarray) -> bytes:
        pcm = to_pcm16(samples)
        if self._container is None:
            header = wav_header(OUTPUT_RATE) if self._header else b""
            self._header = False
            return header + pcm.tobytes()
        if len(pcm):
            import av

            frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
            frame.sample_rate = OUTPUT_RATE
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._buffer.take()


def wav_header(sample_rate: int) -> bytes:
    """A 16-bit mono RIFF/WAVE header for a stream of unknown length (sizes 0xFFFFFFFF, as streaming servers send)."""
    unknown = 0xFFFFFFFF
    return b"RIFF" + struct.pack("<I", unknown) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16) + b"data" + struct.pack("<I", unknown)
