"""The shipped ONNX models and their manifests, as package data (found by reader.paths.models_dir)."""
