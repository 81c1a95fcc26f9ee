"""Files timed or compared side by side must hold the same model: a baseline is the same weights at keep ratio 1.0,
a Q/DQ file is quantized from the fp32 file it is timed with."""
from __future__ import annotations

from ..errors import UserError
from ..onnx_file.metadata import ExportMetadata, read_metadata


def check_baseline_onnx(path: str, model_name: str, source, img_size: int, meta=None,
                        flag: str = "--baseline-onnx") -> None:
    """A --baseline-onnx must be the same weights at keep ratio 1.0."""
    meta = meta or read_metadata(path)
    problems = []
    if meta.model_name != model_name:
        problems.append(f"model {meta.model_name} (want {model_name})")
    if meta.img_size != img_size:
        problems.append(f"img size {meta.img_size} (want {img_size})")
    if any(k is not None for k in meta.keep_tokens):
        problems.append("idle blocks (want keep ratio 1.0)")
    if (meta.ckpt_sha256, meta.seed) != (source.ckpt_sha256, source.seed):
        problems.append("other weights (checkpoint sha256 / seed differ)")
    if problems:
        raise UserError(f"{flag} {path} is not the baseline of this model: {'; '.join(problems)}: "
                        "export it with idle-export --keep-ratio 1.0 and the same --model/--ckpt/--seed")


def check_baseline_engine(path: str, model_name: str, source, img_size: int) -> None:
    """A --baseline-engine must be the same weights at keep ratio 1.0 (its sidecar holds the ONNX metadata)."""
    from ..engines.sidecar import read_sidecar
    meta = ExportMetadata.from_props(read_sidecar(path).onnx_metadata, f"the sidecar of {path}")
    check_baseline_onnx(path, model_name, source, img_size, meta, flag="--baseline-engine")


def check_qdq_onnx(path: str, onnx_path: str) -> None:
    """A --qdq file must be quantized from the --onnx file (same schedule and weights in its metadata)."""
    q, f = read_metadata(path), read_metadata(onnx_path)
    if (q.model_name, q.keep_tokens, q.seed, q.ckpt_sha256) != (f.model_name, f.keep_tokens, f.seed, f.ckpt_sha256):
        raise UserError(f"--qdq {path} was not quantized from {onnx_path} (other model, keep ratios or weights): "
                        f"idle-calibrate --onnx {onnx_path} --images DIR --qdq-output {path}")
