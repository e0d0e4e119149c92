"""Build and release tools: ONNX conversion of the served model (and, later, bundle builds)."""
