"""Acoustic model training: features and data (data.py), aligner (align.py), model (model.py),
training loop (train.py) and ONNX export (export.py)."""
