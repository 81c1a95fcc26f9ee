"""TensorRT engines from exported ONNX: parse -> configure -> build -> save, FP16 ONNX and sidecars.

Nothing here imports tensorrt at import time; see `tensorrt_import.import_tensorrt`.
"""
