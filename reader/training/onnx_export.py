"""Tracing a torch module into an ONNX graph, as every exported model of the project is made."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

OPSET = 17


def trace_to_onnx(
    module: nn.Module, example: tuple, path: Path, input_names: Sequence[str], output_names: Sequence[str], dynamic_axes: dict, opset: int = OPSET
) -> Path:
    """`module` traced on `example` into the ONNX graph at `path`, without gradients and with the exporter's
    warnings silenced. The TorchScript exporter (dynamo=False) on purpose: data-dependent sizes (the
    acoustic model's frame count, a sum of durations) trace into ONNX ops, where torch.export needs hints."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, example, str(path), input_names=list(input_names), output_names=list(output_names),
            dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False,
        )  # fmt: skip
    return Path(path)
