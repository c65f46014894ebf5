"""The vocoder choice, named once: "studio" (HiFi-GAN V1 on the fast vocoder's output, for listening)
or "fast" (the shipped ISTFT vocoder, for crowds). Reader(vocoder=...), the CLI's --vocoder, audiobook
RenderOptions and the service (OpenAI tts-1 = fast, tts-1-hd = studio) all take these names.

A studio vocoder that is missing or corrupt: the default falls back to fast with one warning; named
explicitly it is a ModelError. Playback checks at load that the machine keeps real time with studio
(keeps_real_time) and otherwise says so once and reads with fast.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .errors import ModelError, ReaderError
from .models import STUDIO_VOCODER_FOLDER as STUDIO_FOLDER
from .models import check_models, studio_vocoder_model

VOCODERS = ("studio", "fast")
# Not studio yet: on the project's 2-core machine it misses issue 27's speed goals (RTF 0.52 against
# Piper's 0.064, cold start 1.31 s against Piper's 0.96 s: benchmarks/results/streaming_studio.md,
# cold_start_studio.md) and, on kathleen, its WER and DNSMOS-against-Piper goals (naturalness_studio.md).
DEFAULT_VOCODER = "fast"
# Playback uses studio only if one streamed run takes at most this share of its audio's duration: the
# rest is left for the acoustic model, the front end and the machine's other work.
REAL_TIME_SHARE = 0.6

logger = logging.getLogger(__name__)


def available_vocoders(folder: Path) -> list[str]:
    """The vocoders whose models in `folder` pass their manifest check (fast is checked with every reading)."""
    try:
        check_models([studio_vocoder_model(folder)])
    except ModelError:
        return ["fast"]
    return list(VOCODERS)


def load_vocoder(name: str | None, folder: Path, fast, options):
    """(name, vocoder) for `name` (None: DEFAULT_VOCODER) over the loaded fast vocoder `fast`."""
    from reader_runtime.errors import RuntimeModelError
    from reader_runtime.studio_vocoder import StudioVocoder

    if name is not None and name not in VOCODERS:
        raise ReaderError(f"unknown vocoder {name!r}: use one of {', '.join(VOCODERS)}")
    if (name or DEFAULT_VOCODER) == "fast":
        return "fast", fast
    try:
        check_models([studio_vocoder_model(folder)])
        return "studio", StudioVocoder.load(folder / STUDIO_FOLDER, fast, options)
    except (ModelError, RuntimeModelError) as exc:
        if name is not None:
            raise ModelError(" ".join(str(exc).split())) from None
        logger.warning("the studio vocoder cannot be used (%s); reading with the fast vocoder", " ".join(str(exc).split()))
        return "fast", fast


def keeps_real_time(vocoder) -> bool:
    """Whether playback with `vocoder` keeps up on this machine now (the fast vocoder always does)."""
    measure = getattr(vocoder, "real_time_factor", None)
    return measure is None or measure() <= REAL_TIME_SHARE

