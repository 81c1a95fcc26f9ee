"""ONNX export of IdleViT: exporter, graph simplification, TensorRT op checks and export metadata.

The exported file's own model (metadata, selection outputs, keep inputs) is `idlevit.onnx_file`; the export
with its forward check against PyTorch is `idlevit.workflows.export.export_model`.
"""
from .graph_checks import GraphCheckReport, check_tensorrt_compat
from .onnx_export import ExportCheckError, ExportReport, export_onnx, metadata_for
from .simplify import SIMPLIFIERS, simplify_onnx

__all__ = [
    "ExportCheckError", "ExportReport", "GraphCheckReport", "SIMPLIFIERS", "check_tensorrt_compat", "export_onnx",
    "metadata_for", "simplify_onnx",
]
