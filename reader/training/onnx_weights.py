"""Weights read back from graphs exported with torch's TorchScript ONNX exporter: some shipped models'
torch checkpoints are lost, and their fine-tunes start from the exported graphs."""

from __future__ import annotations

from pathlib import Path

import torch


def weights_from_graph(path: Path, prefix: str = "model.") -> dict[str, torch.Tensor]:
    """The parameters and buffers a graph holds, named as in the wrapped module's state dict.

    The exporter keeps convolution, norm and embedding parameters, buffers, and the weights of Linear
    layers that it turns into a Gemm (2-D inputs) as initializers under their state-dict names in the
    exported wrapper (`<prefix><path>`, prefix being the wrapper's attribute holding the module). A
    Linear layer applied to a 3-D input becomes a MatMul whose weight is an anonymous, transposed
    initializer (`onnx::MatMul_NNN`); the node's output name, `/<module path>/MatMul_output_0`, says
    whose it is. That path starts with the prefix's scope (`/model/...`) only where the wrapper called
    the module's forward, not one of its methods, so the prefix is stripped from it where present.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    weights = {name.removeprefix(prefix): torch.from_numpy(array.copy()) for name, array in initializers.items() if name.startswith(prefix)}
    scope = prefix.replace(".", "/")
    for node in graph.node:
        weight = node.input[1] if node.op_type == "MatMul" else None
        if weight in initializers and not weight.startswith(prefix):
            module = node.output[0].removesuffix("/MatMul_output_0").removeprefix("/").removeprefix(scope)
            weights[f"{module.replace('/', '.')}.weight"] = torch.from_numpy(initializers[weight].T.copy())
    return weights
