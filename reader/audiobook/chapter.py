"""Rendering one chapter, segment by segment, reusing the segments an interrupted render saved."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict
from itertools import islice

import numpy as np

from runtime.manifest import sha256_file
from runtime.sinks import write_failure

from .audio_files import write_audio, write_bytes_atomic
from .jobs import ChapterJob, ChapterResult, Progress, Segment, TimedSentence, TimedWord


def _synthesize_segment(synthesizer, requests: list, selections: list) -> Segment:
    from runtime.sinks import to_pcm16

    async def collect():
        pieces, sentences, words = [], [], {}
        async with contextlib.aclosing(synthesizer.stream(requests)) as chunks:
            async for chunk in chunks:
                pieces.append(to_pcm16(chunk.samples))
                sentences.extend(chunk.sentences)
                for word in chunk.words:
                    words.setdefault(chunk.request_index, []).append(word)
        return pieces, sentences, words

    pieces, sentences, words = asyncio.run(collect())
    spans = [
        TimedSentence(
            s.start_char, s.end_char, round(s.start, 4), round(s.end, 4),
            [
                TimedWord(requests[s.sentence_index].tag.words[w.word_index].text, w.start_char, w.end_char, round(w.start, 4), round(w.end, 4))
                for w in words.get(s.sentence_index, [])
            ],
            selection.utterance.id if (selection := selections[s.sentence_index]).utterance else None,
        )
        for s in sentences
    ]  # fmt: skip
    return Segment(np.concatenate(pieces) if pieces else np.zeros(0, np.int16), spans)


def render_chapter(reader, job: ChapterJob, progress: Progress | None = None) -> ChapterResult:
    """Synthesise one chapter segment by segment (reusing saved segments), write its file, save its result."""
    from runtime.stream import StreamingSynthesizer

    try:
        job.work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_failure(job.work_dir, exc) from None
    document = reader.analyzer.split(job.text)
    reading = reader.prosody.reading()
    sentences = reader.analyzer.iter_sentences(document)
    synthesizer = StreamingSynthesizer(reader.acoustic, reader.vocoder)
    segment_paths, sentence_spans, samples, read_up_to = [], [], 0, 0
    try:
        while batch := list(islice(sentences, job.options.segment_sentences)):
            # Selecting every sentence in order, finished or not, rebuilds the long-form memory exactly.
            selections = [reading.select(sentence) for sentence in batch]
            path = job.work_dir / f"segment-{len(segment_paths):05d}.npz"
            if path.exists():
                segment = Segment.load(path)
            else:
                segment = _synthesize_segment(synthesizer, [reader.request(s, sel) for s, sel in zip(batch, selections)], selections)
                segment.save(path)
            segment_paths.append(path)
            sentence_spans.extend(s.shifted(0, samples / reader.sample_rate) for s in segment.sentences)
            samples += len(segment.samples)
            if progress is not None:
                progress(batch[-1].end - read_up_to, len(segment.samples) / reader.sample_rate)
            read_up_to = batch[-1].end
    finally:
        synthesizer.close()
    if samples:
        write_audio(job.audio_path, job.format, reader.sample_rate, (Segment.load(p).samples for p in segment_paths))
    result = ChapterResult(
        job.index, job.title, job.key, job.audio_path.name if samples else None, sha256_file(job.audio_path) if samples else None,
        samples, reader.sample_rate, sentence_spans,
    )  # fmt: skip
    write_bytes_atomic(job.work_dir / "chapter.json", json.dumps(asdict(result), ensure_ascii=False).encode())
    for path in segment_paths:  # the chapter file holds them now
        path.unlink(missing_ok=True)
    if progress is not None:
        progress(len(job.text) - read_up_to, 0.0)
    return result


def finished_result(job: ChapterJob) -> ChapterResult | None:
    """The saved result of a finished chapter whose file is still there, unchanged."""
    try:
        result = ChapterResult.load(job.work_dir / "chapter.json")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if result.key != job.key:
        return None
    if result.file is not None and not (job.audio_path.is_file() and sha256_file(job.audio_path) == result.sha256):
        return None
    return result
