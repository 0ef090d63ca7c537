"""ONNX export: a trained model's graphs, their parity certificate, and the ONNX predictor used at inference."""
