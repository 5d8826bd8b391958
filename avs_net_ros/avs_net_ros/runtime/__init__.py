"""ONNX Runtime sessions and the metric-depth pipeline (numpy + onnxruntime, no torch)."""
