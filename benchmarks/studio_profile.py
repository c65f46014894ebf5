"""Where a streamed studio reading spends its time: generator vs fast vocoder vs re-analysis STFT.

    python benchmarks/studio_profile.py [--vocoder studio]   # prints seconds and RTF share per stage

Times every call of each stage (wrapped) while the Reader streams benchmarks/streaming.py's article.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time

from streaming import article_text  # benchmarks/ is on sys.path when run as a script

from reader.engine import Reader
from reader_runtime import acoustic, studio_vocoder, vocoder

SECONDS: collections.Counter = collections.Counter()
CALLS: collections.Counter = collections.Counter()
FRAMES: collections.Counter = collections.Counter()


def timed(cls, name: str, stage: str, counts_frames: bool = False) -> None:
    original = getattr(cls, name)

    def wrapper(self, *args, **kwargs):
        start = time.perf_counter()
        result = original(self, *args, **kwargs)
        SECONDS[stage] += time.perf_counter() - start
        CALLS[stage] += 1
        FRAMES[stage] += len(args[0]) if counts_frames else 0
        return result

    setattr(cls, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocoder", default="studio", choices=["studio", "fast"])
    args = parser.parse_args()
    timed(studio_vocoder.StudioVocoder, "generate", "generator (frames incl. context)", True)
    timed(studio_vocoder.StudioVocoder, "log_mel", "re-analysis STFT")
    timed(vocoder.Vocoder, "spectra", "fast vocoder graph + denoise", True)
    timed(vocoder.VocoderStream, "_overlap_add", "fast vocoder ISTFT + overlap-add")
    timed(acoustic.AcousticModel, "synthesize", "acoustic model")
    reader = Reader(vocoder=args.vocoder)
    reader.synthesize("Warm up.")
    SECONDS.clear(), CALLS.clear(), FRAMES.clear()

    async def run() -> tuple[float, int, float]:
        start, first, samples = time.perf_counter(), None, 0
        async for chunk in reader.stream(article_text()):
            first = first or time.perf_counter() - start
            samples += len(chunk.samples)
        return first, samples, time.perf_counter() - start

    first, samples, elapsed = asyncio.run(run())
    audio = samples / reader.sample_rate
    print(f"first audio {first:.3f} s, {elapsed:.1f} s for {audio:.1f} s of audio ({samples // 256} frames): RTF {elapsed / audio:.4f}")
    for stage, seconds in SECONDS.most_common():
        print(f"{stage:36s} {seconds:7.2f} s  RTF {seconds / audio:.4f}  calls {CALLS[stage]}" + (f"  frames {FRAMES[stage]}" if FRAMES[stage] else ""))


if __name__ == "__main__":
    main()
