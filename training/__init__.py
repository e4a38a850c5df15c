"""ICU mortality model: PhysioNet 2012 parsing, preprocessing, training, ONNX export."""
