"""agegender export: quantized TFLite and ONNX files, verified, with model cards."""
