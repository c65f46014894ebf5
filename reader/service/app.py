"""The HTTP reading service: OpenAI's speech API (plus word timings) over Readers, as a FastAPI app.

    POST /v1/audio/speech   audio streamed phrase by phrase, or SSE with word and sentence events
    GET  /v1/audio/voices   GET /v1/models   GET /health   GET /metrics   GET / (the read-along page)

Each request is its own Reader.stream(), paced a few seconds ahead of real time and pumped by a task
of its own: a client that goes away cancels it at once, and one request's failure stays its own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from ..engine import Reader
from ..errors import ReaderError, as_reader_error
from .api import MODELS, APIError, SpeechRequest, check_markup, error_response, parse_speech_request
from .encoders import MEDIA_TYPES, OUTPUT_RATE, StreamEncoder
from .metrics import CONTENT_TYPE_LATEST, ServiceMetrics
from .readers import ReaderFactory, ReaderPool, default_factory
from .scheduler import CURRENT_STREAM, DeadlinePool, ListenerClock

logger = logging.getLogger("reader.service")
STATIC = Path(__file__).parent / "static"
# Read once at start-up, so that the first listeners do not wait for what a reading loads on first use:
# the parser, the letter-to-sound model (a name no dictionary lists) and onnxruntime's memory arenas
# (a sentence of ordinary length, several phrases).
WARM_UP_TEXT = "Ready. Before its first listener arrives, the service reads a sentence of ordinary length, with a pause or two, by Chimamanda Ngozi Adichie."
ROUTES = ("/", "/health", "/metrics", "/v1/models", "/v1/audio/voices", "/v1/audio/speech")


@dataclass(frozen=True)
class ServiceSettings:
    # Streams synthesised at once; past it 503 with Retry-After. Two cores hold 48 listeners arriving
    # within one second, with little to spare on a busy machine (benchmarks/serve_load.py).
    max_streams: int = 48
    max_input_chars: int = 200_000  # a long chapter; OpenAI's 4,096 is not ours
    api_key: str | None = None  # Bearer key required on /v1/ when set
    voice: str | None = None  # the default voice (else the engine's)
    pace_seconds: float = 3.0  # how far each stream's synthesis may run ahead of real time
    body_timeout: float = 10.0  # seconds for a request body to arrive in full (else 408)
    retry_after: int = 1  # seconds, in a 503's Retry-After
    warm_up: bool = True  # read WARM_UP_TEXT at start-up, so the first request does not load the parser
    workers: int = 2  # threads of the deadline-ordered pool this process's streams share (0: threads per stream)

    @property
    def max_body_bytes(self) -> int:
        return self.max_input_chars * 6 + 65_536  # a JSON-escaped character takes up to 6 bytes


class StreamCount:
    """Streams being read, held to max_streams: this process's own, or (`slots`, a shared
    multiprocessing Array, and this process's `slot` in it) those of every server process, each
    counting its own streams in its slot, so that the supervisor can clear a dead process's count."""

    def __init__(self, slots=None, slot: int = 0) -> None:
        self._slots = slots if slots is not None else [0]
        self._slot = slot
        self._lock = slots.get_lock() if slots is not None else contextlib.nullcontext()

    def total(self) -> int:
        with self._lock:
            return sum(self._slots)

    def acquire(self, limit: int) -> bool:
        """Count one more stream, unless `limit` are being read already."""
        with self._lock:
            if sum(self._slots) >= limit:
                return False
            self._slots[self._slot] += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._slots[self._slot] -= 1

    def least(self) -> bool:
        """Whether this process reads no more streams than any other (always, alone)."""
        with self._lock:
            return self._slots[self._slot] <= min(self._slots)


def create_app(readers: ReaderFactory | Reader | None = None, settings: ServiceSettings | None = None, streams: StreamCount | None = None) -> FastAPI:
    """The service's ASGI app. `readers`: a factory (voice, vocoder) -> Reader (default: the shipped
    models, one onnxruntime thread per model), or one Reader that serves its own voice; `streams`: the
    count max_streams holds (default: this app's own; reader.service.server shares one among processes)."""
    settings = settings or ServiceSettings()
    pool = ReaderPool(readers if readers is not None else default_factory(), settings.voice)
    metrics = ServiceMetrics()
    streams = streams or StreamCount()
    workers = DeadlinePool(settings.workers) if settings.workers > 0 else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        reader = await pool.get(pool.default_voice)
        if settings.warm_up:
            await asyncio.to_thread(reader.synthesize, WARM_UP_TEXT)
            metrics.count_cpu_from_now()  # the real-time factor counts synthesis, not loading
        yield
        if workers is not None:
            workers.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="reader-engine", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings, app.state.pool, app.state.metrics = settings, pool, metrics

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), code="not_found" if exc.status_code == 404 else None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, str(exc.errors()[0].get("msg", "invalid request")))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        logger.error("internal error: %s: %s", type(exc).__name__, exc)
        return error_response(500, "internal error: the reading failed", code="internal_error")

    app.add_middleware(AuthAndCount, api_key=settings.api_key, metrics=metrics)

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        index = STATIC / "index.html"
        if not index.is_file():
            raise APIError(404, "no read-along page is installed", code="not_found")
        return FileResponse(index, media_type="text/html")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "active_streams": streams.total(), "max_streams": settings.max_streams, "voices": pool.voices()}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "reader-engine"} for name in MODELS]}

    @app.get("/v1/audio/voices")
    async def voices() -> dict:
        return {"voices": pool.voices(), "default": pool.default_voice}

    @app.post("/v1/audio/speech")
    async def speech(request: Request) -> Response:
        arrived = time.monotonic()
        body = await read_body(request, settings.max_body_bytes, settings.body_timeout)
        speech = parse_speech_request(body, settings.max_input_chars)
        voice = pool.voice(speech.voice) if speech.voice else pool.default_voice
        if voice is None:
            raise APIError(400, f"unknown voice {speech.voice!r}: use one of {', '.join(pool.voices())}", param="voice", code="invalid_value")
        check_markup(speech.input)
        options = pause_options(speech)
        reader = await pool.get(voice, MODELS[speech.model])
        stream = speech_stream(reader, speech, options, arrived)
        try:
            first = await anext(stream)  # the first audio, or the request's error while nothing is sent yet
        except StopAsyncIteration:
            raise APIError(400, "nothing speakable in 'input'", param="input", code="empty_input") from None
        except ReaderError as exc:
            raise APIError(400, str(exc), param="input") from None
        media_type = "text/event-stream" if speech.stream_format == "sse" else MEDIA_TYPES[speech.response_format]
        return StreamingResponse(prepend(first, stream), media_type=media_type, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def speech_stream(reader: Reader, speech: SpeechRequest, options: dict, arrived: float) -> AsyncIterator[bytes]:
        """The response body: encoded audio (or SSE events) per chunk the Reader makes; first, a 503
        past max_streams."""
        if not streams.acquire(settings.max_streams):
            metrics.rejected.inc()
            raise APIError(503, f"the server is reading {settings.max_streams} streams, its limit: try again shortly", code="server_busy", headers={"Retry-After": str(settings.retry_after)})
        metrics.active_streams.inc()
        encoder = StreamEncoder(speech.response_format, reader.sample_rate)
        chunks: asyncio.Queue = asyncio.Queue(maxsize=1)
        pump = asyncio.create_task(pump_chunks(reader, speech.input, speech.speed, options, chunks, arrived))
        sse = speech.stream_format == "sse"
        audio_seconds = 0.0
        try:
            while (chunk := await chunks.get()) is not None:
                if isinstance(chunk, BaseException):
                    raise chunk
                data = encoder.encode(chunk.samples)
                if audio_seconds == 0.0:
                    metrics.first_audio.observe(time.monotonic() - arrived)
                seconds = len(chunk.samples) / chunk.sample_rate
                audio_seconds += seconds
                metrics.add_audio(seconds)
                if sse:
                    yield "".join(sse_event(event) for event in timing_events(chunk, speech.input)).encode() + (sse_event(audio_delta(data)).encode() if data else b"")
                elif data or audio_seconds == seconds:
                    yield data
            if audio_seconds == 0.0:
                return  # nothing speakable: the handler answers 400
            tail = encoder.finish()
            if sse:
                yield ((sse_event(audio_delta(tail)) if tail else "") + sse_event({"type": "speech.audio.done"})).encode()
            elif tail:
                yield tail
        finally:
            encoder.close()
            pump.cancel()
            with anyio.CancelScope(shield=True):  # the Reader stream's own cleanup must not be cancelled again
                await asyncio.gather(pump, return_exceptions=True)
            streams.release()
            metrics.active_streams.dec()

    async def pump_chunks(reader: Reader, text: str, speed: float, options: dict, chunks: asyncio.Queue, arrived: float) -> None:
        """Reads `text` into `chunks` (a queue of one: the Reader waits for the client), then None; an
        error goes into the queue for the response to raise. The Reader makes a chunk only when asked,
        so waiting here while the stream is `pace_seconds` of audio ahead of real time paces it."""
        listener = ListenerClock(arrived)
        CURRENT_STREAM.set(listener)  # this task's model calls are ordered by its listener's deadline
        try:
            async with contextlib.aclosing(reader.stream(text, speed=speed, executor=workers, **options)) as stream:
                async for chunk in stream:
                    await chunks.put(chunk)
                    listener.deliver(len(chunk.samples) / chunk.sample_rate)
                    ahead = listener.sent - (time.monotonic() - listener.started)
                    if ahead > settings.pace_seconds:
                        await asyncio.sleep(ahead - settings.pace_seconds)
        except Exception as exc:  # the response raises it (a 400 if nothing was sent yet)
            error = as_reader_error(exc)
            if error is None:
                logger.exception("reading failed")
            await chunks.put(error or exc)
            return
        await chunks.put(None)

    return app


class AuthAndCount:
    """Pure ASGI middleware (streams pass straight through): the Bearer key on /v1/, and requests by status."""

    def __init__(self, app, api_key: str | None, metrics: ServiceMetrics) -> None:
        self.app, self.api_key, self.metrics = app, api_key, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route = scope["path"] if scope["path"] in ROUTES else "other"
        status = [500]

        async def counted_send(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            headers = dict(scope["headers"])
            if self.api_key and scope["path"].startswith("/v1/") and not authorised(headers.get(b"authorization", b"").decode("latin-1"), self.api_key):
                response = error_response(401, "a valid API key is required: send it as 'Authorization: Bearer KEY'", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, counted_send)
            else:
                await self.app(scope, receive, counted_send)
        finally:
            self.metrics.requests.labels(route, str(status[0])).inc()


def authorised(header: str | None, key: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), key.encode())


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body, refused with 413 past `limit` bytes before any of it is parsed (by Content-Length, or
    while it arrives), and with 408 if it does not arrive in full within `timeout` seconds."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise APIError(413, f"the request body is over this server's limit of {limit} bytes", code="request_too_large")
    body = bytearray()

    async def receive() -> None:
        async for part in request.stream():
            body.extend(part)
            if len(body) > limit:
                raise APIError(413, f"the request body is over this server's limit of {limit} bytes", code="request_too_large")

    try:
        await asyncio.wait_for(receive(), timeout)
    except asyncio.TimeoutError:
        raise APIError(408, f"the request body did not arrive within {timeout:g} s", code="request_timeout") from None
    return bytes(body)


def pause_options(speech: SpeechRequest) -> dict:
    """This request's sentence_pause/paragraph_pause for Reader.stream (pydantic checked their range)."""
    return {name: value for name in ("sentence_pause", "paragraph_pause") if (value := getattr(speech, name)) is not None}


async def prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async with contextlib.aclosing(rest):
        yield first
        async for block in rest:
            yield block


def timing_events(chunk, text: str) -> list[dict]:
    """speech.sentence and speech.word events of the timings that start in `chunk` (seconds from the
    stream's start, character offsets into the request's input)."""

    def event(kind: str, field: str, timing) -> dict:
        source = text[timing.start_char : timing.end_char] if 0 <= timing.start_char <= timing.end_char else ""
        return {"type": kind, field: source, "start": round(timing.start, 3), "end": round(timing.end, 3), "start_char": timing.start_char, "end_char": timing.end_char}

    return [event("speech.sentence", "text", s) for s in chunk.sentences] + [event("speech.word", "word", w) for w in chunk.words]


def audio_delta(data: bytes) -> dict:
    return {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")}


def sse_event(payload: dict) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


__all__ = ["OUTPUT_RATE", "ServiceSettings", "create_app"]
