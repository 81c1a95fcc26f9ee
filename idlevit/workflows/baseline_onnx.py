"""The plain-ViT ONNX file IdleViT is timed against: the fastest form we make, or any plain ViT file a user brings."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import onnx

from ..errors import UserError
from ..onnx_file.metadata import MARKER, ExportMetadata, props_of
from ..onnx_file.selection_path import topk_positions

# Measured on ONNX Runtime CPU (benchmarks/cpu_efficiency.py): the TorchScript exporter's graph of the plain
# backbone, with our simplifier and fusion-friendly passes, is the fastest plain DeiT-S file we can make.
BASELINE_EXPORTER = "torchscript"


@dataclass
class BaselineFile:
    """Which file a benchmark timed as its baseline, and how it was made."""
    path: str
    exporter: str
    made_by: str

    def describe(self) -> str:
        return f"baseline {self.path}: {self.made_by} ({self.exporter} exporter)"

    def to_json(self) -> dict:
        return asdict(self)


def export_baseline(baseline_model, model_name: str, source, path: str) -> BaselineFile:
    """Export the keep-ratio-1.0 model (the plain backbone, same weights) in the fastest form we know."""
    from .export import export_model
    export_model(baseline_model, model_name, source, path, exporter=BASELINE_EXPORTER, check_forward=False)
    return describe_baseline(path)


def describe_baseline(path: str) -> BaselineFile:
    """What made `path`: our metadata when idle-export wrote it, else the producer the file names."""
    model = onnx.load(path, load_external_data=False)
    props = props_of(model)
    if MARKER in props:
        meta = ExportMetadata.from_props(props, path)
        return BaselineFile(path, meta.exporter, f"idle-export --keep-ratio 1.0 of {meta.model_name}, opset "
                                                 f"{meta.opset}, simplifier {meta.simplifier}")
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p) or "an unnamed producer"
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), "?")
    return BaselineFile(path, "unknown", f"a plain ONNX file without idlevit metadata, from {producer}, "
                                         f"opset {opset}")


def _static_dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


def check_plain_vit_onnx(path: str, img_size: int, num_classes: int, flag: str = "--baseline-onnx") -> None:
    """A baseline file without our metadata must at least look like the same plain ViT: one image input of this
    size, one logits output of this width, and no token selection (no TopK)."""
    model = onnx.load(path, load_external_data=False)
    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    problems = []
    if len(inputs) != 1 or _static_dims(inputs[0])[1:] != [3, img_size, img_size]:
        problems.append(f"its input is not one (batch, 3, {img_size}, {img_size}) image tensor")
    if len(model.graph.output) < 1 or _static_dims(model.graph.output[0])[1:] != [num_classes]:
        problems.append(f"its first output is not (batch, {num_classes}) logits")
    if topk_positions(model):
        problems.append("it selects tokens (TopK)")
    if problems:
        raise UserError(f"{flag} {path} is not a plain ViT of this model: {'; '.join(problems)}: pass the plain "
                        "backbone's ONNX (or idle-export --keep-ratio 1.0 of the same model)")


def has_idlevit_metadata(path: str) -> bool:
    return MARKER in props_of(onnx.load(path, load_external_data=False))


def resolve_baseline(path: Optional[str], *, export_to: str, baseline_model, model_name: str, source,
                     img_size: int, check_same=None) -> BaselineFile:
    """The baseline a bench or sweep times: `path` checked (ours: same weights; any other plain ViT file: same input
    and output shapes) or, without one, the fastest form exported to `export_to`."""
    if path is None:
        return export_baseline(baseline_model, model_name, source, export_to)
    if has_idlevit_metadata(path):
        if check_same is not None:
            check_same(path)
    else:
        check_plain_vit_onnx(path, img_size, int(baseline_model.num_classes))
    return describe_baseline(path)
