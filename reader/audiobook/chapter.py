"""Rendering one chapter, segment by segment, reusing the segments an interrupted render saved."""

from __future__ import annotations

import json
from dataclasses import asdict
from itertools import islice
from typing import TYPE_CHECKING

from ..io.files import sha256_file, write_failure

from .audio_files import write_audio, write_bytes_atomic
from .jobs import ChapterJob, ChapterResult, Progress, Segment, TimedSentence, TimedWord

if TYPE_CHECKING:
    from ..engine import Audio, PlannedSentence, Reader


def _segment(audio: Audio, batch: list[PlannedSentence]) -> Segment:
    """A rendered run of sentences (Reader.render_sentences) as a segment: 16-bit samples, timings
    rounded to 0.1 ms, each word with its spoken form, each sentence with the bank utterance whose
    prosody it took."""
    from ..io.sinks import to_pcm16

    words: dict[int, list] = {}
    for word in audio.words:
        words.setdefault(word.sentence_index, []).append(word)
    spans = []
    for s in audio.sentences:
        planned = batch[s.sentence_index]
        timed_words = [
            TimedWord(planned.analysis.words[w.word_index].text, w.start_char, w.end_char, round(w.start, 4), round(w.end, 4))
            for w in words.get(s.sentence_index, [])
        ]
        utterance = planned.selection.utterance
        spans.append(TimedSentence(s.start_char, s.end_char, round(s.start, 4), round(s.end, 4), timed_words, utterance.id if utterance else None))
    return Segment(to_pcm16(audio.samples), spans)


def render_chapter(reader: Reader, job: ChapterJob, progress: Progress | None = None) -> ChapterResult:
    """Synthesise one chapter segment by segment (reusing saved segments), write its file, save its result."""
    try:
        job.work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_failure(job.work_dir, exc) from None
    # Planning every sentence in order, finished or not, rebuilds the prosody's long-form memory exactly.
    sentences = reader.sentences(job.text)
    segment_paths, sentence_spans, samples, read_up_to = [], [], 0, 0
    while batch := list(islice(sentences, job.options.segment_sentences)):
        path = job.work_dir / f"segment-{len(segment_paths):05d}.npz"
        if path.exists():
            segment = Segment.load(path)
        else:
            segment = _segment(reader.render_sentences(batch), batch)
            segment.save(path)
        segment_paths.append(path)
        sentence_spans.extend(s.shifted(0, samples / reader.sample_rate) for s in segment.sentences)
        samples += len(segment.samples)
        if progress is not None:
            progress(batch[-1].analysis.end - read_up_to, len(segment.samples) / reader.sample_rate)
        read_up_to = batch[-1].analysis.end
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
