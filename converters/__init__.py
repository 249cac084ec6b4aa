"""Model formats in and out. TensorFlow and ONNX are imported only inside these modules' functions."""
