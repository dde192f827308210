"""Export formats: names only, so the command line can list them without importing torch."""

#: export format -> what it writes
FORMATS = {"onnx": "ONNX Q/DQ (or FP32)", "tflite": "INT8 TFLite (litert-torch)", "engine": "TensorRT engine"}
