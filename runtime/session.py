"""Loading ONNX models into onnxruntime sessions, once, with clear errors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from .errors import RuntimeModelError


@dataclass(frozen=True)
class SessionOptions:
    """How to run a model: execution device and thread counts (0 lets onnxruntime choose)."""

    device: str = "cpu"
    intra_op_threads: int = 0
    inter_op_threads: int = 0


def available_providers(device: str) -> list[str]:
    """Execution providers for `device` ('cpu' or 'cuda'), CPU always last as fallback."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeModelError(
                "device 'cuda' requested but this onnxruntime has no CUDA provider "
                "(install onnxruntime-gpu, or use --device cpu)"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise RuntimeModelError(f"unknown device {device!r}: use 'cpu' or 'cuda'")


def load_session(path: str | os.PathLike, options: SessionOptions = SessionOptions()) -> ort.InferenceSession:
    """Open an ONNX model; a missing, empty or corrupt file raises RuntimeModelError naming it."""
    path = Path(path)
    if not path.is_file():
        raise RuntimeModelError(f"model file not found: {path}")
    if path.stat().st_size == 0:
        raise RuntimeModelError(f"model file is empty: {path}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = options.intra_op_threads
    so.inter_op_num_threads = options.inter_op_threads
    so.log_severity_level = 3
    # Idle intra-op threads sleep instead of spinning: the acoustic model, the vocoder and the front end
    # take turns on few cores, and spinning workers starve the others (on 2 busy cores: time to first
    # audio 0.07-0.10 s with spinning, 0.02 s without; real-time factor 0.03 against 0.01).
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=so, providers=available_providers(options.device))
    except RuntimeModelError:
        raise
    except Exception as exc:  # onnxruntime raises its own exception types for corrupt protobufs
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RuntimeModelError(f"model file is corrupt or unreadable: {path} ({first_line[:200]})") from None


class OpenVINOSession:
    """An OpenVINO CPU compiled model behind onnxruntime's run(None, feeds) call (one graph input)."""

    def __init__(self, compiled) -> None:
        self.compiled = compiled

    def run(self, output_names, feeds: dict) -> list:
        # A request per call: calls from several threads (the service) never share buffers.
        result = self.compiled.create_infer_request().infer(list(feeds.values()))
        return [result[i] for i in range(len(self.compiled.outputs))]


def load_openvino_session(path: str | os.PathLike, options: SessionOptions = SessionOptions()) -> OpenVINOSession | None:
    """`path` compiled by OpenVINO's CPU runtime (float32, latency hint), or None where the optional
    `openvino` package is not installed or the device is not the CPU; a bad file raises RuntimeModelError."""
    if options.device != "cpu":
        return None
    try:
        import openvino
    except ImportError:
        return None
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    if options.intra_op_threads > 0:
        config["INFERENCE_NUM_THREADS"] = options.intra_op_threads
    try:
        return OpenVINOSession(openvino.Core().compile_model(str(path), "CPU", config))
    except Exception as exc:  # OpenVINO raises RuntimeError for unreadable models
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RuntimeModelError(f"model file is corrupt or unreadable: {path} ({first_line[:200]})") from None
