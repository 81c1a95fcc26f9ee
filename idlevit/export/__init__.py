"""ONNX export of IdleViT: exporter, graph simplification, TensorRT op checks, metadata and selection outputs.

The names below load on first use, so that importing a submodule (the CLI reads `simplify`'s
choices for its --help) does not load torch and onnx.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("GraphCheckReport", "check_tensorrt_compat"), ".graph_checks"),
    **dict.fromkeys(("ExportMetadata", "load_onnx", "read_metadata", "write_metadata"), ".metadata"),
    **dict.fromkeys(("ExportCheckError", "ExportReport", "export_model", "export_onnx", "forward_check",
                     "metadata_for"), ".onnx_export"),
    **dict.fromkeys(("add_selection_outputs", "is_selection_output", "selection_from_torch"), ".selection_outputs"),
    **dict.fromkeys(("SIMPLIFIERS", "simplify_onnx"), ".simplify"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
