"""The text-to-mel graph cut before its frame decoder, so that a stream can decode a sentence's frames
in parts: the first chunk's frames first, the rest when they are due (a burst of streams starting
together then waits for less of each one's first sentence).

    text_to_frames.onnx   the text-to-mel inputs -> frame_features (1, frames, channels), durations, f0
    mel_decoder.onnx      frame_features, frame_mask (1, frames; ones) -> mel

Both are cut from text_to_mel.onnx (same weights, same outputs: exactly, tested), and the manifest's
`decoder` records the decoder's reach: the frames of context each side that make a decoded frame exact
(its convolutions' dilated half-widths, summed) and the text_to_mel they were cut from.

    python -m reader.training.acoustic.decoder_split [ACOUSTIC_MODEL_FOLDER]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import onnx
import onnx.utils
from reader_runtime.manifest import manifest_path, record_files

from reader.paths import models_dir

DECODER_SCOPE = "/decoder/"  # torch.onnx names the decoder module's nodes under its attribute name
FRAME_FEATURES, FRAME_MASK = "frame_features", "frame_mask"
FILES = {"text_to_frames": "text_to_frames.onnx", "mel_decoder": "mel_decoder.onnx"}


def decoder_boundary(graph: onnx.GraphProto) -> tuple[str, str]:
    """The decoder's two inputs from the rest of the graph: (frame features, frame mask)."""
    decoder = [node for node in graph.node if node.name.startswith(DECODER_SCOPE)]
    produced = {name for node in decoder for name in node.output}
    weights = {tensor.name for tensor in graph.initializer}
    inputs: dict[str, set[str]] = {}
    for node in decoder:
        for name in node.input:
            if name and name not in produced and name not in weights:
                inputs.setdefault(name, set()).add(node.op_type)
    masks = [name for name, ops in inputs.items() if ops == {"Unsqueeze"}]  # the mask is broadcast over channels
    features = [name for name in inputs if name not in masks]
    if len(masks) != 1 or len(features) != 1:
        raise ValueError(f"expected the decoder to take frame features and a frame mask, found {sorted(inputs)}")
    return features[0], masks[0]


def decoder_reach(graph: onnx.GraphProto) -> int:
    """Frames of context each side that a decoded frame depends on."""
    reach = 0
    for node in graph.node:
        if node.name.startswith(DECODER_SCOPE) and node.op_type == "Conv":
            attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            (kernel,), (dilation,) = attributes["kernel_shape"], attributes.get("dilations", [1])
            reach += dilation * (kernel - 1) // 2
    return reach


def _rename(model: onnx.ModelProto, names: dict[str, str]) -> None:
    graph = model.graph
    for value in (*graph.input, *graph.output):
        value.name = names.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [names.get(name, name) for name in node.input]
        node.output[:] = [names.get(name, name) for name in node.output]


def split(folder: Path) -> dict[str, Path]:
    """Write the two graphs beside text_to_mel.onnx and record them (and the reach) in the manifest."""
    manifest = json.loads(manifest_path(folder).read_text(encoding="utf-8"))
    source = folder / manifest["files"]["text_to_mel"]["file"]
    graph = onnx.load(str(source)).graph
    features, mask = decoder_boundary(graph)
    names = {features: FRAME_FEATURES, mask: FRAME_MASK}
    paths = {name: folder / file for name, file in FILES.items()}
    onnx.utils.extract_model(str(source), str(paths["text_to_frames"]), [i.name for i in graph.input], [features, "durations", "f0"])
    onnx.utils.extract_model(str(source), str(paths["mel_decoder"]), [features, mask], ["mel"])
    for path in paths.values():
        model = onnx.load(str(path))
        _rename(model, names)
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
    record_files(folder, FILES)
    manifest = json.loads(manifest_path(folder).read_text(encoding="utf-8"))
    manifest["decoder"] = {
        "module": "reader.training.acoustic.decoder_split",
        "what": f"text_to_mel cut before its frame decoder: text_to_frames -> {FRAME_FEATURES} (1, frames, channels); mel_decoder({FRAME_FEATURES}, {FRAME_MASK} ones (1, frames)) -> mel",
        "context_frames": decoder_reach(graph),
        "text_to_mel_sha256": manifest["files"]["text_to_mel"]["sha256"],  # the graph they were cut from
    }
    manifest_path(folder).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Cut an exported acoustic model's text_to_mel graph before its decoder")
    parser.add_argument("folder", nargs="?", type=Path, help="default: <models_dir>/acoustic")
    args = parser.parse_args(argv)
    for path in split(args.folder or models_dir() / "acoustic").values():
        print(path)


if __name__ == "__main__":
    main()
