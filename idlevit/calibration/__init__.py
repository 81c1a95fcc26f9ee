"""INT8 calibration: calibration sets (calib.npz) from image folders and Q/DQ ONNX quantization."""
