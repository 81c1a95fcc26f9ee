"""ONNX export of IdleViT: exporter, graph simplification, TensorRT op checks, metadata and selection outputs."""
from .graph_checks import GraphCheckReport, check_tensorrt_compat
from .metadata import ExportMetadata, load_onnx, read_metadata, write_metadata
from .onnx_export import ExportCheckError, ExportReport, export_model, export_onnx, forward_check, metadata_for
from .selection_outputs import add_selection_outputs, is_selection_output, selection_from_torch
from .simplify import SIMPLIFIERS, simplify_onnx

__all__ = [
    "ExportCheckError", "ExportMetadata", "ExportReport", "GraphCheckReport", "SIMPLIFIERS", "add_selection_outputs",
    "check_tensorrt_compat", "export_model", "export_onnx", "forward_check", "is_selection_output", "load_onnx", "metadata_for",
    "read_metadata", "selection_from_torch", "simplify_onnx", "write_metadata",
]
