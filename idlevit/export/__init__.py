"""ONNX export of IdleViT: exporter, graph simplification, TensorRT op checks and export metadata.

The exported file's own model (metadata, selection outputs, keep inputs) is `idlevit.onnx_file`; the export
with its forward check against PyTorch is `idlevit.workflows.export.export_model`. The names below load on
first use, so that importing a submodule (the CLI reads `simplify`'s choices for its --help) loads neither
torch nor onnx.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("GraphCheckReport", "check_tensorrt_compat"), ".graph_checks"),
    **dict.fromkeys(("ExportCheckError", "ExportReport", "export_onnx", "metadata_for"), ".onnx_export"),
    **dict.fromkeys(("SIMPLIFIERS", "simplify_onnx"), ".simplify"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
