"""Streaming ONNX engine. Knows nothing of torch: only numpy and onnxruntime."""
