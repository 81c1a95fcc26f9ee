"""ONNX `metadata_props` of an IdleViT export: enough to rebuild the PyTorch reference and its data transform."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Union

import onnx

from ..errors import UserError

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
    extra: Dict[str, str] = field(default_factory=dict)

    @property
    def num_topk(self) -> int:
        return sum(k is not None for k in self.keep_tokens)

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


def write_metadata(model: onnx.ModelProto, meta: ExportMetadata) -> onnx.ModelProto:
    """Replace the model's metadata_props with `meta` (other keys are kept)."""
    props = {p.key: p.value for p in model.metadata_props}
    props.update(meta.to_props())
    del model.metadata_props[:]
    for key in sorted(props):
        model.metadata_props.add(key=key, value=props[key])
    return model


def props_of(model: onnx.ModelProto) -> Dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def read_metadata(source: Union[str, onnx.ModelProto]) -> ExportMetadata:
    """Metadata of an ONNX path or ModelProto; UserError when absent or corrupt."""
    where = source if isinstance(source, str) else "the ONNX model"
    model = load_onnx(source, load_external_data=False) if isinstance(source, str) else source
    return ExportMetadata.from_props(props_of(model), where)


def load_onnx(path: str, load_external_data: bool = True) -> onnx.ModelProto:
    """onnx.load with one-line errors for a missing or unreadable file."""
    import os
    if not os.path.isfile(path):
        raise UserError(f"ONNX file {path} not found: pass the path of a file written by idle-export")
    try:
        return onnx.load(path, load_external_data=load_external_data)
    except Exception as e:  # protobuf DecodeError, external-data errors
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"{path} is not a readable ONNX model ({first[:120]}): re-export it with idle-export") from None
