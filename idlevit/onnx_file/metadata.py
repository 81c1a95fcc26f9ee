"""ONNX `metadata_props` of an IdleViT export: enough to rebuild the PyTorch reference and its data transform."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Mapping, Optional, Union

import onnx

from ..errors import UserError
from .io import load_onnx

# metadata_props key that marks a file as an idlevit export; the others are the ExportMetadata fields
MARKER = "idlevit_version"
# fields without a default: an idle-export file always has them
REQUIRED = ("model_name", "keep_ratios", "keep_tokens", "img_size", "num_classes", "mean", "std", "data_config",
            "exporter", "torch_version", "opset", "idlevit_version")


@dataclass
class ExportMetadata:
    """What built an ONNX file. Stored as string metadata_props (lists and dicts as JSON)."""
    model_name: str
    keep_ratios: List[float]                 # one per block, 1.0 = plain block
    keep_tokens: List[Optional[int]]         # K per block (None = plain block)
    img_size: int
    num_classes: int
    mean: List[float]
    std: List[float]
    data_config: Dict                        # timm eval data config (input_size, crop_pct, interpolation, ...)
    exporter: str                            # "dynamo" or "torchscript"
    torch_version: str
    opset: int
    idlevit_version: str
    keep_ratio: Optional[float] = None       # base r when the schedule is the four-stage one, else None
    ckpt_sha256: Optional[str] = None        # sha256 of the source checkpoint, or
    seed: Optional[int] = None               # the seed of the random weights (exactly one is set)
    timm_version: str = ""
    simplifier: str = "none"
    precision: str = "fp32"                  # converted files (fp16/int8) overwrite this
    elastic: bool = False                    # K per idle stage is the length of input keep_tokens.<s>
    keep_token_range: Optional[List[int]] = None   # elastic: [min K, max K] each keep input accepts
    method: str = "idlevit"                  # "idlevit" (token idling) or "gtp" (GTP-ViT token propagation)
    model_kwargs: Optional[Dict] = None      # extra timm.create_model arguments the model was built with
    gtp: Optional[Dict] = None               # GTP-ViT settings: num_prop (per block), num_neighbours, alpha,
                                             # graph_type, token_scale, sparsity
    extra: Dict[str, str] = field(default_factory=dict)

    @property
    def num_topk(self) -> int:
        """TopK nodes the graph holds: one per idle block; for GTP-ViT one per block that propagates tokens,
        plus the semantic graph's neighbour threshold."""
        if self.method == "gtp":
            return sum(p > 0 for p in self.gtp["num_prop"]) + (self.gtp["graph_type"] != "spatial")
        return sum(k is not None for k in self.keep_tokens)

    @property
    def reports_selection(self) -> bool:
        """Whether runners can return per-block selections to compare (IdleViT's TopK indices; GTP-ViT: not yet)."""
        return self.method != "gtp" and self.num_topk > 0

    def to_props(self) -> Dict[str, str]:
        props = dict(self.extra)
        for key, value in asdict(self).items():
            if key != "extra" and value is not None:  # an unset optional field is simply absent
                props[key] = value if _is_text(key) else json.dumps(value)
        return props

    @classmethod
    def from_props(cls, props: Dict[str, str], where: str = "the ONNX file") -> "ExportMetadata":
        if MARKER not in props:
            raise UserError(f"{where} has no idlevit metadata (not written by idle-export): "
                            "export it with idle-export, or pass --model/--keep-ratio/--img-size explicitly")
        known = set(cls.__dataclass_fields__) - {"extra"}
        values = {}
        try:
            for key in known & set(props):
                values[key] = props[key] if _is_text(key) else json.loads(props[key])
        except json.JSONDecodeError as e:
            raise UserError(f"{where} has corrupt idlevit metadata ({e}): re-export it with idle-export") from None
        missing = [k for k in REQUIRED if k not in values]
        if missing:
            raise UserError(f"{where} lacks idlevit metadata {', '.join(missing)}: re-export it with idle-export")
        values["extra"] = {k: v for k, v in props.items() if k not in known}
        return cls(**values)


def _is_text(key: str) -> bool:
    """String fields are stored as they are (readable in Netron); everything else as JSON."""
    return ExportMetadata.__dataclass_fields__[key].type in ("str", "Optional[str]", str)


def props_of(model: onnx.ModelProto) -> Dict[str, str]:
    """The model's metadata_props as a dict."""
    return {p.key: p.value for p in model.metadata_props}


def write_props(model: onnx.ModelProto, props: Mapping[str, object]) -> onnx.ModelProto:
    """Replace the model's metadata_props with `props` (values as strings, keys sorted)."""
    del model.metadata_props[:]
    for key in sorted(props):
        model.metadata_props.add(key=key, value=str(props[key]))
    return model


def write_metadata(model: onnx.ModelProto, meta: ExportMetadata) -> onnx.ModelProto:
    """Replace the model's idlevit metadata with `meta` (other keys are kept)."""
    return write_props(model, {**props_of(model), **meta.to_props()})


def read_metadata(source: Union[str, onnx.ModelProto]) -> ExportMetadata:
    """Metadata of an ONNX path or ModelProto; UserError when absent or corrupt."""
    where = source if isinstance(source, str) else "the ONNX model"
    model = load_onnx(source, load_external_data=False) if isinstance(source, str) else source
    return ExportMetadata.from_props(props_of(model), where)


def metadata_value(meta: Mapping[str, str], *keys: str):
    """First of `keys` in ONNX metadata_props, JSON-decoded when it is JSON; None when absent.

    The lenient reading, for files that need not come from idle-export (converted or foreign ONNX);
    `ExportMetadata.from_props` is the strict one.
    """
    for key in keys:
        if key in meta:
            try:
                return json.loads(meta[key])
            except (ValueError, TypeError):
                return meta[key]
    return None


def expected_topk(meta: Mapping[str, str]) -> Optional[int]:
    """TopK nodes an idle-export file holds by its metadata_props (lenient: converted files too), or None
    when the file has no idle-export metadata."""
    keep_tokens = metadata_list(meta, "keep_tokens")
    if keep_tokens is None:
        return None
    gtp = metadata_value(meta, "gtp")
    if metadata_value(meta, "method") == "gtp" and isinstance(gtp, dict):
        return sum(int(p) > 0 for p in gtp["num_prop"]) + (gtp["graph_type"] != "spatial")
    return sum(str(k) not in ("None", "null", "") for k in keep_tokens)


def metadata_list(meta: Mapping[str, str], *keys: str) -> Optional[list]:
    """A list-valued metadata entry written as JSON ("[0.7, 0.49]") or comma-separated."""
    value = metadata_value(meta, *keys)
    if value is None or isinstance(value, list):
        return value
    if isinstance(value, (int, float)):
        return [value]
    return [v.strip() for v in str(value).strip("[]()").split(",") if v.strip()]
