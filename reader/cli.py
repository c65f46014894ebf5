"""The `reader` command line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from asyncio import CancelledError
from typing import Sequence, TextIO

from . import DEFAULT_PROSODY, DEFAULT_TRANSFER_MODE, DEFAULT_VOCODER, PROSODY_MODES, PROSODY_SELECTORS, TRANSFER_MODES, VOCODERS
from .errors import ReaderError, as_reader_error

VOCODER_HELP = f"studio: HiFi-GAN, the better sound; fast: for slow machines and many streams (default: {DEFAULT_VOCODER})"

ANALYSIS_SCHEMA_VERSION = 1

# Marks used in the human-readable plan (documented in the README).
BREAK_MARKS = {0: "", 1: " |", 2: " ||", 3: " ||.", 4: " ||¶"}


def sentence_json(sentence, chapter_title: str | None, prosody=None) -> dict:
    """One sentence of `reader analyze --json` (schema: reader/data/analysis.schema.json); `prosody` is
    the sentence's reader.prosody_selection.Selection when --prosody is given."""
    return {
        "version": ANALYSIS_SCHEMA_VERSION,
        "chapter": sentence.chapter,
        "chapter_title": chapter_title,
        "paragraph": sentence.paragraph,
        "is_heading": sentence.is_heading,
        "text": sentence.text,
        "start": sentence.start,
        "end": sentence.end,
        "distances": sentence.distances,
        "words": [
            {
                "text": w.text,
                "start": w.start,
                "end": w.end,
                "pos": w.pos,
                "phonemes": list(w.phonemes),
                "punct_after": w.punct_after,
                "break": brk.name.lower(),
                "reset": reset,
            }
            for w, brk, reset in zip(sentence.words, sentence.breaks, sentence.resets)
        ],
    } | ({"prosody": prosody.as_json()} if prosody is not None else {}) | ({"ssml": sentence.ssml.as_json()} if sentence.ssml else {})


def format_prosody(selection) -> str:
    if selection.utterance is None:
        return f"  prosody:   {selection.selector}: the voice's centroid"
    return f"  prosody:   {selection.selector}: {selection.utterance.id} (similarity {selection.similarity:.3f}) {selection.utterance.text[:70]}"


def format_sentence(index: int, sentence, prosody=None) -> str:
    """Human-readable analysis of one sentence."""
    from .frontend.document import display_text

    plan = " ".join(
        f"{w.text}{BREAK_MARKS[int(b)]}{'^' if r and b < 3 else ''}"
        for w, b, r in zip(sentence.words, sentence.breaks, sentence.resets)
    )
    text = display_text(sentence.text)
    lines = [
        f"[{index}] chapter {sentence.chapter + 1}, paragraph {sentence.paragraph + 1}, chars {sentence.start}-{sentence.end}"
        + (" (heading)" if sentence.is_heading else ""),
        f"  text:      {text}",
        f"  plan:      {plan}",
        f"  distances: {' '.join(map(str, sentence.distances)) or '-'}",
        f"  phonemes:  {' . '.join(' '.join(w.phonemes) for w in sentence.words)}",
    ]
    if prosody is not None:
        lines.append(format_prosody(prosody))
    if sentence.ssml is not None:
        lines.append(f"  ssml:      {sentence.ssml.describe(sentence.words)}")
    return "\n".join(lines)


def cmd_analyze(args: argparse.Namespace, out: TextIO) -> int:
    from . import Analyzer, Reader, read_document

    text = read_document(args.file)
    if args.prosody:  # the plan `reader play --prosody METHOD` would read with
        reader = Reader(voice=args.voice, parser=args.parser, lexicon=args.lexicon, prosody=args.prosody)
        document = reader.split(text)
        planned = ((p.analysis, p.selection) for p in reader.sentences(document))
    else:  # the front end alone: no acoustic model needed
        analyzer = Analyzer(parser=args.parser, lexicon=args.lexicon)
        document = analyzer.split(text)
        planned = ((sentence, None) for sentence in analyzer.iter_sentences(document))
    count = 0
    for sentence, prosody in planned:
        title = document.chapters[sentence.chapter].title
        if args.json:
            out.write(json.dumps(sentence_json(sentence, title, prosody), ensure_ascii=False) + "\n")
        else:
            out.write(format_sentence(count + 1, sentence, prosody) + "\n\n")
        count += 1
    if count == 0:
        raise ReaderError(f"nothing speakable in {_input_name(args.file)}")
    return 0


def _speak(args: argparse.Namespace, output: str | None, pace_seconds: float | None) -> int:
    from . import Reader, check_output, read_document, require_speakable

    text = read_document(args.file)
    require_speakable(text, args.file)
    check_output(output)
    reader = Reader(
        voice=args.voice, speed=args.speed, device=args.device, parser=args.parser, lexicon=args.lexicon, prosody=args.prosody,
        sentence_pause=args.sentence_pause, paragraph_pause=args.paragraph_pause, vocoder=args.vocoder,
    )  # fmt: skip
    if output is None and reader.keep_real_time():  # playback must never stutter
        print("reader: this machine cannot keep real time with the studio vocoder; playing with the fast vocoder", file=sys.stderr)
    # Playback and piped output start before the parser is ready (README: "Start-up"); files wait for it.
    reader.speak(text, output, pace_seconds=pace_seconds, quick_start=output in (None, "-"), source=_input_name(args.file), marks=args.marks)
    return 0


def _input_name(path: str) -> str:
    return "standard input" if path == "-" else path


def cmd_play(args: argparse.Namespace, out: TextIO) -> int:
    # Synthesis runs at most this many seconds of audio ahead of playback.
    return _speak(args, args.output, pace_seconds=None if args.output else 5.0)


def cmd_render(args: argparse.Namespace, out: TextIO) -> int:
    from .audiobook import is_folder_output

    if args.marks and is_folder_output(args.output):
        raise ReaderError("--marks writes the marks of one audio file; an audiobook's timings are in its manifest")
    if is_folder_output(args.output):
        return _render_book(args, out)
    if args.format or args.jobs != 1 or args.ray or args.overwrite:
        raise ReaderError("--format, --jobs, --ray and --overwrite render an audiobook: give an output folder, e.g. -o book/")
    return _speak(args, args.output, pace_seconds=None)


def _render_book(args: argparse.Namespace, out: TextIO) -> int:
    from .audiobook import RenderOptions, render_book

    options = RenderOptions(
        args.voice, args.speed, args.device, args.parser, args.lexicon and os.path.abspath(args.lexicon), args.prosody,
        sentence_pause=args.sentence_pause, paragraph_pause=args.paragraph_pause, vocoder=args.vocoder,
    )  # fmt: skip
    manifest = render_book(args.file, args.output, options, args.format or "flac", args.jobs, args.ray, args.overwrite)
    minutes = manifest["duration"] / 60
    out.write(f"{len(manifest['chapters'])} chapters, {minutes:.1f} min: {os.path.join(args.output, manifest['book']['file'])}\n")
    return 0


def cmd_transfer(args: argparse.Namespace, out: TextIO) -> int:
    from . import Reader, check_output, require_speakable

    require_speakable(args.text, "--text")
    check_output(args.output)
    reader = Reader(voice=args.voice, device=args.device, lexicon=args.lexicon, prosody="centroid", vocoder=args.vocoder)
    plan = reader.prepare_transfer(args.source, args.text, source_voice=args.source_voice, mode=args.prosody_mode, force=args.force)
    for note in plan.notes():
        print(f"reader: {note}", file=sys.stderr)
    reader.speak(plan, args.output, source="--text")
    return 0


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    """The reading service (reader.service): OpenAI-compatible speech over HTTP, Wyoming beside it."""
    try:
        from .service.app import ServiceSettings
        from .service.server import default_processes, default_workers, run
    except ImportError as exc:
        raise ReaderError(f"`reader serve` needs the serve extra: pip install 'reader-engine[serve]' ({exc.name} is missing)") from None
    if args.no_http and not args.wyoming:
        raise ReaderError("--no-http leaves nothing to serve: give --wyoming URI too")
    if args.processes is not None and (args.ray or args.no_http):
        raise ReaderError("--processes is for HTTP served here: with --ray use --replicas; Wyoming alone runs in one process")
    api_key = args.api_key or os.environ.get("READER_API_KEY") or None
    limit = {"max_streams": args.max_streams} if args.max_streams is not None else {}  # else the settings' own
    processes = args.processes or default_processes()
    workers = args.workers if args.workers is not None else default_workers(processes)
    settings = ServiceSettings(**limit, max_input_chars=args.max_input_chars, api_key=api_key, voice=args.voice, body_timeout=args.request_timeout, workers=workers)
    if args.ray:
        from .service.ray_serve import run as run_on_ray

        return run_on_ray(args.ray, args.replicas, settings, args.host, args.port)
    return run(settings, args.host, None if args.no_http else args.port, wyoming=args.wyoming, grace=args.grace, processes=processes)


def cmd_voices(args: argparse.Namespace, out: TextIO) -> int:
    from . import list_voices

    for voice in list_voices():
        marks = [m for m, on in (("default", voice.default), ("synthetic", voice.synthetic)) if on]
        out.write(f"{voice.name}{'  (' + ', '.join(marks) + ')' if marks else ''}  vocoders: {', '.join(voice.vocoders)}\n")
    return 0


def cmd_models_download(args: argparse.Namespace, out: TextIO) -> int:
    try:
        import stanza
    except ImportError:
        raise ReaderError("stanza is not installed: pip install 'reader-engine[stanza]'") from None
    try:
        stanza.download("en", processors="tokenize,pos,constituency", logging_level="WARN", **({"model_dir": args.dir} if args.dir else {}))
    except Exception as exc:  # network errors come in many types (requests, urllib3, OSError)
        raise ReaderError(f"could not download stanza's English models ({type(exc).__name__}); check the internet connection") from None
    out.write("stanza English models installed\n")
    return 0


def _within(kind: type, low: float, high: float | None = None):
    """An argparse type: a `kind` (int or float) from `low` to `high`; anything else is a usage error."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not (low <= value <= (high if high is not None else value)):  # NaN fails too
            raise argparse.ArgumentTypeError(f"{text} is out of range: use {low} to {high}" if high is not None else f"{text} is out of range: use at least {low}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reader", description="Streaming long-form reading engine.")
    sub = parser.add_subparsers(dest="command", required=True)

    analyze = sub.add_parser("analyze", help="show the linguistic analysis and prosody plan of a document")
    analyze.add_argument("file", help="UTF-8 text, Markdown or EPUB file, or - for standard input")
    analyze.add_argument("--json", action="store_true", help="one JSON object per sentence (JSON Lines)")
    analyze.add_argument("--parser", choices=["spacy", "stanza"], default="spacy", help="syntactic parser backend")
    analyze.add_argument("--lexicon", help="user pronunciation lexicon (default: ~/.config/reader/lexicon.txt if present)")
    analyze.add_argument("--prosody", choices=PROSODY_SELECTORS, help="also show each sentence's selected acoustic embedding (needs the shipped models)")
    analyze.add_argument("--voice", help="voice whose prosody bank --prosody searches (default: the default voice)")
    analyze.set_defaults(run=cmd_analyze)

    for name, help_text in (("play", "read a document aloud"), ("render", "render a document to an audio file")):
        speak = sub.add_parser(name, help=help_text)
        speak.add_argument("file", help="UTF-8 text, Markdown or EPUB file, or - for standard input")
        speak.add_argument(
            "-o", "--output", required=name == "render",
            help="write audio here instead (.wav or .flac; - for raw 16-bit PCM on standard output; a folder/ for an audiobook)",
        )  # fmt: skip
        speak.add_argument("--voice", help="voice name (see `reader voices`)")
        speak.add_argument("--speed", type=float, default=1.0, help="speaking rate, 1.0 = natural")
        speak.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the models run")
        speak.add_argument("--parser", choices=["spacy", "stanza"], default="spacy", help="syntactic parser backend")
        speak.add_argument("--lexicon", help="user pronunciation lexicon")
        speak.add_argument(
            "--prosody", choices=PROSODY_MODES,
            help=f"how each sentence's prosody is chosen: an acoustic-embedding selector, or 'predicted' from syntax and context (default: {DEFAULT_PROSODY})",
        )  # fmt: skip
        speak.add_argument("--vocoder", choices=VOCODERS, help=VOCODER_HELP)
        speak.add_argument("--sentence-pause", type=float, metavar="SECONDS", help="silence after each sentence (default 0.5)")
        speak.add_argument("--paragraph-pause", type=float, metavar="SECONDS", help="silence after each paragraph and heading (default 1.0)")
        speak.add_argument("--marks", metavar="FILE.jsonl", help="also write speech marks (Amazon Polly's JSON lines: sentence, word and SSML <mark> times)")
        if name == "render":
            speak.add_argument("--format", help="audiobook chapter files: flac (default), wav, ogg, opus or mp3")
            speak.add_argument("--jobs", type=int, default=1, help="audiobook chapters rendered in parallel processes")
            speak.add_argument("--ray", metavar="ADDRESS", help="render audiobook chapters as Ray tasks ('local' starts a local Ray)")
            speak.add_argument("--overwrite", action="store_true", help="render an audiobook into a folder that holds other files (same-named ones are replaced)")
        speak.set_defaults(run=cmd_play if name == "play" else cmd_render)

    transfer = sub.add_parser("transfer", help="say a recording's words in another voice with the recording's prosody (CopyCat)")
    transfer.add_argument("source", help="recording to take the prosody from (.wav, .flac or .ogg, at most 30 s)")
    transfer.add_argument("--text", required=True, help="what is said in the recording")
    transfer.add_argument("--voice", help="target voice (see `reader voices`)")
    transfer.add_argument("-o", "--output", required=True, help="output file (.wav or .flac; - for raw 16-bit PCM on standard output)")
    transfer.add_argument("--source-voice", help="the known voice who speaks in the recording (default: the nearest known voice)")
    transfer.add_argument(
        "--prosody-mode", choices=TRANSFER_MODES, default=DEFAULT_TRANSFER_MODE,
        help="codes: the source's durations and CopyCat codes; codes+f0: also its pitch contour, moved to the target's register",
    )  # fmt: skip
    transfer.add_argument("--force", action="store_true", help="transfer even if the transcript does not seem to match the recording")
    transfer.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the models run")
    transfer.add_argument("--lexicon", help="user pronunciation lexicon")
    transfer.add_argument("--vocoder", choices=VOCODERS, help=VOCODER_HELP)
    transfer.set_defaults(run=cmd_transfer)

    serve = sub.add_parser("serve", help="serve speech over HTTP (OpenAI's /v1/audio/speech, with word timings) and Wyoming")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    serve.add_argument("--port", type=_within(int, 0, 65535), default=8880, help="HTTP port")
    serve.add_argument("--max-streams", type=_within(int, 1), help="streams read at once; past it requests get 503 with Retry-After (default: 48)")
    serve.add_argument("--max-input-chars", type=_within(int, 1), default=200_000, help="longest input accepted (413 past it)")
    serve.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (default: $READER_API_KEY; none: open)")
    serve.add_argument("--voice", help="default voice (see `reader voices`)")
    serve.add_argument("--grace", type=_within(float, 0.0), default=30.0, help="seconds streams in flight may take to finish after SIGTERM")
    serve.add_argument("--request-timeout", type=_within(float, 0.1), default=10.0, help="seconds a request body may take to arrive (408 after)")
    serve.add_argument("--processes", type=_within(int, 1), help="HTTP server processes sharing the port, each with its own models (default: one per core, at most 4)")
    serve.add_argument("--workers", type=_within(int, 0), help="threads each process's streams share for synthesis, earliest deadline first (default: cores / processes; 0: threads per stream)")
    serve.add_argument("--wyoming", metavar="URI", help="also serve the Wyoming protocol here, e.g. tcp://127.0.0.1:10200")
    serve.add_argument("--no-http", action="store_true", help="serve Wyoming only")
    serve.add_argument("--ray", metavar="ADDRESS", help="run the HTTP service as a Ray Serve deployment ('local' starts a local Ray)")
    serve.add_argument("--replicas", type=_within(int, 1), default=1, help="with --ray: copies of the service behind Serve's proxy")
    serve.set_defaults(run=cmd_serve)

    voices = sub.add_parser("voices", help="list the shipped voices")
    voices.set_defaults(run=cmd_voices)

    models = sub.add_parser("models", help="manage optional models")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    download = models_sub.add_parser("download", help="download stanza's English parser models (needs internet)")
    download.add_argument("--dir", help="where to put them (default: stanza's own folder)")
    download.set_defaults(run=cmd_models_download)
    return parser


_terminated = threading.Event()


def _terminate(signum, frame) -> None:
    """SIGTERM stops like Ctrl-C: it goes to whatever handles SIGINT now (inside asyncio.run, the
    runner cancels the main task, so sinks cancel and partial files are deleted)."""
    import asyncio

    _terminated.set()
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
        return
    # SIGINT ignored (a background job): asyncio.run has no handler of its own, so cancel its tasks
    # as it would, rather than raise in the middle of the event loop's machinery.
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise KeyboardInterrupt from None
    for task in asyncio.all_tasks(loop):
        task.cancel()
    loop.call_soon_threadsafe(lambda: None)  # wake the loop if it waits in select()


def main(argv: Sequence[str] | None = None) -> int:
    from .frontend.syntax import hide_torch_from_spacy

    hide_torch_from_spacy()  # this process never uses thinc's torch support; it costs 1.5 s of start-up
    args = build_parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()  # where signal handlers can be set
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    _terminated.clear()
    try:
        return args.run(args, sys.stdout)
    except (KeyboardInterrupt, CancelledError) as exc:
        if isinstance(exc, CancelledError) and not _terminated.is_set():
            raise
        print(f"reader: {'terminated' if _terminated.is_set() else 'interrupted'}", file=sys.stderr)
        return 143 if _terminated.is_set() else 130
    except BrokenPipeError:
        # The reader of our output went away (e.g. `| head`); not an error of ours.
        _silence_stdout()
        return 0
    except MemoryError:
        print("reader: error: out of memory; split the document into smaller parts", file=sys.stderr)
        return 1
    except Exception as exc:  # last resort: one line, never a traceback (READER_DEBUG=1 shows it)
        error = as_reader_error(exc)
        if error is not None:
            print(f"reader: error: {error}", file=sys.stderr)
            _silence_stdout()  # e.g. `-o -` into a full device: nothing more to flush at exit
            return error.exit_code
        if os.environ.get("READER_DEBUG"):
            raise
        print(f"reader: internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return 1
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _silence_stdout() -> None:
    """Point standard output at /dev/null if it can no longer be written, so the exit flush is quiet."""
    try:
        sys.stdout.flush()
    except OSError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
