"""What the FP16 conversion keeps in fp32 and which converters exist (without loading onnx, for --help)."""

# LayerNorm's variance over C=384..768 channels overflows/loses precision in fp16 (TensorRT
# warns about it too); Softmax is fine in fp16 and stays there unless asked.
KEEP_FP32_OPS = ("LayerNormalization",)
BACKENDS = ("auto", "modelopt", "onnxconverter")
