"""The exported ONNX file as an artifact: load/save, idlevit metadata, precision, keep inputs, TopK and selection outputs.

Everything that reads or writes an exported file builds on this package; it imports only models and the base modules.
"""
