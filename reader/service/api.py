"""OpenAI's speech API as this service speaks it: the request, its checks, and errors in OpenAI's shape."""

from __future__ import annotations

import json
from typing import Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .encoders import RESPONSE_FORMATS

# OpenAI's model ids: tts-1 reads with the fast vocoder, tts-1-hd with the studio one.
MODELS = {"tts-1": "fast", "tts-1-hd": "studio"}
DEFAULT_MODEL = "tts-1"
SPEED_RANGE = (0.25, 4.0)
ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error", 408: "invalid_request_error",
               413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error", 503: "server_error"}  # fmt: skip


class APIError(Exception):
    """An error answered as {"error": {"message", "type", "param", "code"}} with its HTTP status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.headers = status, message, param, code, headers

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, self.param, self.code, self.headers)


def error_response(status: int, message: str, param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"), "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


class SpeechRequest(BaseModel):
    """The body of POST /v1/audio/speech (OpenAI's fields, plus our pauses)."""

    model_config = ConfigDict(extra="ignore")

    model: str = DEFAULT_MODEL
    input: str
    voice: str | None = None
    response_format: str = "mp3"
    speed: float = 1.0
    stream_format: Literal["audio", "sse"] = "audio"
    instructions: str | None = None  # OpenAI's gpt-4o-mini-tts field: accepted, not used
    sentence_pause: float | None = Field(default=None, ge=0.0, le=10.0)
    paragraph_pause: float | None = Field(default=None, ge=0.0, le=10.0)


def parse_speech_request(body: bytes, max_input_chars: int) -> SpeechRequest:
    """The request from the raw body, or APIError: 400 for a body that is not a JSON object or a value
    out of range, 422 for a field of the wrong type, 413 for an input over `max_input_chars`."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise APIError(400, "the request body must be a JSON object", code="invalid_json")
    if "input" not in payload:
        raise APIError(400, "'input' is required: the text to read", param="input", code="missing_required_parameter")
    try:
        request = SpeechRequest.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = ".".join(str(part) for part in error["loc"]) or None
        raise APIError(422, f"{param}: {error['msg']}", param=param, code="invalid_type") from None
    if not request.input.strip():
        raise APIError(400, "'input' is empty: give the text to read", param="input", code="empty_input")
    if len(request.input) > max_input_chars:
        raise APIError(413, f"'input' has {len(request.input)} characters; this server reads at most {max_input_chars}", param="input", code="input_too_long")
    if request.response_format not in RESPONSE_FORMATS:
        raise APIError(400, f"unknown response_format {request.response_format!r}: use one of {', '.join(RESPONSE_FORMATS)}", param="response_format", code="invalid_value")
    if not SPEED_RANGE[0] <= request.speed <= SPEED_RANGE[1]:
        raise APIError(400, f"speed {request.speed:g} is out of range: use a value between {SPEED_RANGE[0]:g} and {SPEED_RANGE[1]:g}", param="speed", code="invalid_value")
    if request.model not in MODELS:
        raise APIError(404, f"unknown model {request.model!r}: use one of {', '.join(MODELS)}", param="model", code="model_not_found")
    return request


def check_markup(text: str) -> None:
    """SSML input is parsed by the engine; here it is refused before that if it declares a DTD or
    entities (the billion-laughs bomb and external entities), which no reading needs."""
    import defusedxml.ElementTree
    from defusedxml import DefusedXmlException

    if not text.lstrip()[:9].lower().startswith(("<?xml", "<!doctype", "<speak")):
        return
    try:
        defusedxml.ElementTree.fromstring(text, forbid_dtd=True)
    except DefusedXmlException:
        raise APIError(400, "SSML input with a DTD or entity declarations is not accepted", param="input", code="invalid_ssml") from None
    except defusedxml.ElementTree.ParseError as exc:
        raise APIError(400, f"SSML input is not well-formed XML: {exc}", param="input", code="invalid_ssml") from None
